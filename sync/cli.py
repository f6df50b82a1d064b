"""The `authz-sync` command. Each subcommand is a thin shell over the library."""

from __future__ import annotations

import logging
from dataclasses import replace

import click

from . import __version__
from .cli_common import config_option, reports_errors, setup_logging, stop_on_sigterm
from .cli_db import db
from .cli_demo import demo, simulate
from .cli_graph import graph
from .cli_status import status
from .config import load_settings
from .redact import register_secret
from .runner import RunReport, run_sync

log = logging.getLogger("sync")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="authz-sync")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debugging).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """Copy the Auth0 Authorization Extension (users, groups, roles, permissions) into SQL.

    Try it with `authz-sync demo`; schedule `authz-sync run`. Exit codes are in the README.
    """
    setup_logging(verbose, quiet)
    stop_on_sigterm()


@main.command()
@config_option
@click.option(
    "--allow-deletes",
    is_flag=True,
    help="Accept deletes beyond the safeguard limits (and an empty source) for this run.",
)
@reports_errors
def run(config_path: str | None, allow_deletes: bool) -> None:
    """Sync the extension into the database once (what cron runs).

    Reads every user, group, role and permission, checks them, then writes the changes in one
    transaction: the database holds either the new copy or the previous one, never a mix.
    Prints a one-line summary on success; errors go to stderr with a non-zero exit code.
    """
    settings = load_settings(config_path)
    register_secret(settings.client_secret.reveal())
    if allow_deletes:
        settings = replace(settings, safeguard=replace(settings.safeguard, allow_deletes=True))
    for warning in settings.warnings:
        log.warning(warning)
    report = run_sync(settings)
    for warning in report.warnings:
        log.info(warning)
    click.echo(summary_line(report))


def summary_line(report: RunReport) -> str:
    users = report.counts["authz_users"].fetched
    groups = report.counts["authz_groups"].fetched
    members = report.counts["authz_group_members"].fetched
    warnings = f"; {len(report.warnings)} warnings (-v lists them)" if report.warnings else ""
    return (
        f"run {report.run_id} succeeded in {report.seconds:.1f} s: {users} users, {groups} groups, "
        f"{members} memberships; {report.total('inserted')} inserted, "
        f"{report.total('updated')} updated, {report.total('deleted')} deleted; "
        f"{report.api_requests} API requests{warnings}"
    )


for command in (db, demo, simulate, graph, status):
    main.add_command(command)
