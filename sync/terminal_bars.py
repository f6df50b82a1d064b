"""Live progress bars on a terminal, drawn with rich (see sync.progress: the interface)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from rich import progress as bars
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.text import Text

from sync.progress import Progress


class _Count(bars.ProgressColumn):
    """`1,234/20,000`, or `1,234/?` while the total is not known."""

    def render(self, task: bars.Task) -> Text:
        total = f"{int(task.total):,}" if task.total is not None else "?"
        return Text(f"{int(task.completed):,}/{total}", style="progress.download")


class _Bar(bars.BarColumn):
    """A bar that shows a finished step as full even when it had nothing to do (0/0)."""

    def render(self, task: bars.Task) -> ProgressBar:
        bar = super().render(task)
        if task.finished and not task.total:
            bar.update(completed=1, total=1)
        return bar


class TerminalProgress(Progress):
    """Live bars on `console` (a terminal), with log lines printed above them."""

    def __init__(self, console: Console | None = None):
        console = console or Console(stderr=True, force_terminal=True)
        self.bars = bars.Progress(
            bars.TextColumn("{task.description:<12}"),
            _Bar(),
            _Count(),
            bars.TimeRemainingColumn(elapsed_when_finished=True),
            bars.TextColumn("{task.fields[note]}"),
            console=console,
            redirect_stdout=False,  # stdout is the summary's, maybe a file: leave it alone
        )
        self._tasks: dict[str, bars.TaskID] = {}
        self._moved: list[tuple[logging.StreamHandler, Any]] = []

    def update(self, name: str, done: int, total: int | None = None, note: str = "") -> None:
        task = self._tasks.get(name)
        if task is None:
            self._tasks[name] = self.bars.add_task(name, total=total, completed=done, note=note)
        else:
            self.bars.update(task, completed=done, total=total, note=note)

    def __enter__(self) -> TerminalProgress:
        terminal = sys.stderr
        self.bars.start()  # from here on sys.stderr prints above the bars
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is terminal:
                self._moved.append((handler, handler.setStream(sys.stderr)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bars.stop()  # the last state of the bars stays on the screen
        for handler, stream in self._moved:
            handler.setStream(stream)
        self._moved.clear()
