"""Progress on a terminal: a live bar per step with its counts and ETA; nothing at all in cron.

The library sees one method, `update(name, done, total)`: the first call with a name adds its
bar, `total=None` means "not known yet" (a pulsing bar: a request in flight), `done == total`
completes it, and `note` says what the step is on now. `Progress` itself reports nothing — what
cron, `--quiet` and `--log-format json` get — so library code can call it unconditionally.
`sync.terminal_bars.TerminalProgress` draws the bars with rich on stderr; while they are live,
log lines are printed above them instead of through them. It is imported only when there is a
terminal to draw on: rich takes a tenth of a second to import, and cron has no use for it.
"""

from __future__ import annotations

import os
import sys


class Progress:
    """Reports nothing: the default, and what runs without a terminal get."""

    def update(self, name: str, done: int, total: int | None = None, note: str = "") -> None:
        """`name` has `done` of `total` (None: not known yet); `note`: what it is on now."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


NO_PROGRESS = Progress()


def on_stderr(allowed: bool = True) -> Progress:
    """Bars when stderr is a terminal (and the command line allows them), else nothing."""
    if allowed and sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        from sync.terminal_bars import TerminalProgress  # only with a terminal: see above

        return TerminalProgress()
    return NO_PROGRESS
