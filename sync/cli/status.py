"""`authz-sync status`: the recent runs of the ledger, as a table or as JSON.

The formatting is pure (rows in, text out): the table answers "did last night's run work, and
if not, why" at a glance; `--json` carries every column unshortened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from sync.cli.common import config_option, logging_options, reports_errors
from sync.config import load_database_settings
from sync.sql import queries

Run = Mapping[str, Any]

ERROR_WIDTH = 60
NO_RUNS = "no runs yet"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Column:
    header: str
    right: bool  # numbers align right, words left


COLUMNS = (
    Column("run", True),
    Column("started (UTC)", False),
    Column("status", False),
    Column("duration", True),
    Column("ins/upd/del", True),
    Column("requests", True),
    Column("retries", True),
    Column("429s", True),
    Column("error", False),
)


def started(run: Run) -> str:
    """To the second: enough to tell runs apart, short enough to scan."""
    value = run.get("started_at")
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def duration(run: Run) -> str:
    """The recorded wall time, else finish minus start; `-` while running or unknown."""
    seconds = run.get("duration_seconds")
    if seconds is None and run.get("started_at") and run.get("finished_at"):
        seconds = (run["finished_at"] - run["started_at"]).total_seconds()
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def changes(run: Run) -> str:
    values = [run.get(f"rows_{kind}") for kind in ("inserted", "updated", "deleted")]
    if all(value is None for value in values):
        return "-"
    return "/".join(_number(value) for value in values)


def short_error(error: str | None, width: int = ERROR_WIDTH) -> str:
    """The first non-blank line, fitted to `width`; `…` says there is more (see --json)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    first = _CONTROL.sub("?", lines[0])  # no terminal escape sequences from stored text
    if len(first) > width:
        return fit_error(first, width)
    return first + " …" if len(lines) > 1 else first


# A URL in a message: a database's (with driver, user, port and query) or the extension's.
_URL = re.compile(r"\b([a-z][a-z0-9.+-]*)://([^\s'\"]+)")


def fit_error(line: str, width: int) -> str:
    """Shorten the URLs first, and keep the cause: messages read `what failed: why`, and the
    why is what the table is for."""
    compact = _URL.sub(_compact_url, line)
    if len(compact) <= width:
        return compact
    line = _URL.sub("…", line)
    if len(line) <= width:
        return line
    context, colon, cause = line.partition(": ")
    if colon and len(cause) <= width - 15:  # room for the start of the context too
        return context[: width - len(cause) - 3] + "…: " + cause
    return line[: width - 1] + "…"


def _compact_url(match: re.Match) -> str:
    """`scheme://host/…/last`: no driver, credentials, port, query or middle of the path."""
    address, trailing = match.group(2), ""
    while address and address[-1] in ").,;:":  # punctuation after the URL
        address, trailing = address[:-1], address[-1] + trailing
    authority, _, path = address.split("?")[0].partition("/")
    host = re.sub(r":\d+$", "", authority.rpartition("@")[2])
    segments = [segment for segment in path.split("/") if segment]
    shown = f"{match.group(1).split('+')[0]}://{host}"
    if len(segments) > 1:
        shown += "/…"
    return shown + (f"/{segments[-1]}" if segments else "") + trailing


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def table_row(run: Run) -> list[str]:
    return [
        _number(run.get("run_id")),
        started(run),
        _CONTROL.sub("?", str(run.get("status") or "-")),
        duration(run),
        changes(run),
        _number(run.get("api_requests")),
        _number(run.get("api_retries")),
        _number(run.get("api_rate_limited")),
        short_error(run.get("error")) or _alive(run),
    ]


def _alive(run: Run) -> str:
    """A running run's last heartbeat: one long past is a run that died (kill -9) and that
    the next run will mark abandoned."""
    beat = run.get("heartbeat_at")
    if run.get("status") != "running" or beat is None:
        return ""
    return f"last heartbeat {beat:%Y-%m-%d %H:%M:%S}"


def format_table(runs: Sequence[Run]) -> str:
    """An aligned table, one run per line in the order given; `no runs yet` for none."""
    if not runs:
        return NO_RUNS + "\n"
    rows = [[column.header for column in COLUMNS], *(table_row(run) for run in runs)]
    widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column.right else cell.ljust(width)
            for cell, width, column in zip(row, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def json_value(value: Any) -> Any:
    """Timestamps (naive UTC in the database) as ISO 8601 with a Z; everything else as is."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    return value


def format_json(runs: Sequence[Run]) -> str:
    """A JSON array of objects with every column, in the order given."""
    objects = [{key: json_value(value) for key, value in run.items()} for run in runs]
    return json.dumps(objects, ensure_ascii=False, indent=2) + "\n"


@click.command()
@config_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    metavar="N",
    help="Show the N most recent runs.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="A JSON array with every column (timestamps ISO 8601 UTC with Z), for scripts.",
)
@logging_options
@reports_errors
def status(config_path: str | None, limit: int, as_json: bool) -> None:
    """Show the most recent runs, newest first: when, outcome, duration, changes, API retries
    and 429s, and the first line of the error of a run that failed."""
    with queries.snapshot(load_database_settings(config_path)) as connection:
        runs = queries.recent_runs(connection, limit)
    text = format_json(runs) if as_json else format_table(runs)
    # UTF-8 whatever the locale: errors may quote names with emoji; JSON is UTF-8 by definition.
    stdout = click.get_binary_stream("stdout")
    stdout.write(text.encode("utf-8"))
    stdout.flush()
