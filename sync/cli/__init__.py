"""The `authz-sync` command: one module per command (group), each a thin shell over the runner
and the wings. This package is the only place where errors become messages and exit codes
(common.py)."""

from __future__ import annotations

import click

from sync import __version__
from sync.cli.backfill import backfill
from sync.cli.check import check
from sync.cli.common import setup_logging, stop_on_sigterm
from sync.cli.config import config_command
from sync.cli.db import db
from sync.cli.demo import demo, simulate
from sync.cli.graph import graph
from sync.cli.import_file import import_file
from sync.cli.run import run
from sync.cli.status import status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="authz-sync")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debugging).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="AUTHZ_SYNC_LOG_FORMAT",
    show_default=True,
    help="Log lines as text, or as JSON lines for log shippers; each carries the run id.",
)
def main(verbose: int, quiet: bool, log_format: str) -> None:
    """Copy the Auth0 Authorization Extension (users, groups, roles, permissions) into SQL.

    Try it with `authz-sync demo`; schedule `authz-sync run`. Exit codes are in the README.
    """
    setup_logging(verbose, quiet, log_format)
    stop_on_sigterm()


for command in (
    run,
    db,
    demo,
    simulate,
    graph,
    status,
    backfill,
    check,
    import_file,
    config_command,
):
    main.add_command(command)
