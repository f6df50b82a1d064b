"""`authz-sync status`: the recent runs of the ledger, as a table or as JSON."""

from __future__ import annotations

import click
from sqlalchemy import Connection, select

from sync.cli.common import config_option, reports_errors
from sync.cli.status_text import Run, format_json, format_table
from sync.sql import readonly, schema


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
@reports_errors
def status(config_path: str | None, limit: int, as_json: bool) -> None:
    """Show the most recent runs, newest first: when, outcome, duration, changes, API retries
    and 429s, and the first line of the error of a run that failed."""
    with readonly.snapshot(readonly.open_engine(config_path)) as connection:
        runs = recent_runs(connection, limit)
    text = format_json(runs) if as_json else format_table(runs)
    # UTF-8 whatever the locale: errors may quote names with emoji; JSON is UTF-8 by definition.
    stdout = click.get_binary_stream("stdout")
    stdout.write(text.encode("utf-8"))
    stdout.flush()


def recent_runs(connection: Connection, limit: int) -> list[Run]:
    runs = schema.sync_runs
    query = select(runs).order_by(runs.c.run_id.desc()).limit(limit)
    return [dict(row) for row in connection.execute(query).mappings()]
