"""The `authz-sync` command: one module per command (group), each a thin shell over the runner
and the wings. This package is the only place where errors become messages and exit codes
(common.py).

A command's module is imported when that command runs, not before: the demo brings the
simulator, the backfill its own chain, `db` all of Alembic, and every run from cron (and every
test's child process) would pay for all of them at start-up.
"""

from __future__ import annotations

import importlib

import click

from sync import __version__
from sync.cli.common import setup_logging, stop_on_sigterm

# name on the command line -> "module:attribute" of its click command
COMMANDS = {
    "run": "sync.cli.run:run",
    "db": "sync.cli.db:db",
    "demo": "sync.cli.demo:demo",
    "simulate": "sync.cli.demo:simulate",
    "graph": "sync.cli.graph:graph",
    "status": "sync.cli.status:status",
    "backfill": "sync.cli.backfill:backfill",
    "check": "sync.cli.check:check",
    "import": "sync.cli.import_file:import_file",
    "config": "sync.cli.config:config_command",
}


class LazyGroup(click.Group):
    """A group whose commands are imported the first time they are asked for (see above)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
