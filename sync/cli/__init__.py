"""The `authz-sync` command. Each subcommand is a thin shell over the library."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import click

from sync import __version__
from sync.cli.backfill import backfill
from sync.cli.check import check
from sync.cli.common import (
    allow_deletes_option,
    config_option,
    print_summary,
    progress_bars,
    reports_errors,
    setup_logging,
    show_dry_run,
    stop_on_sigterm,
)
from sync.cli.db import db
from sync.cli.demo import demo, simulate
from sync.cli.graph import graph
from sync.cli.import_file import import_file
from sync.cli.metrics import RunMetrics, previous_last_success, render, write_atomically
from sync.cli.status import status
from sync.config import load_settings
from sync.errors import EXIT_INTERNAL, EXIT_OK, Interrupted, SyncError
from sync.redact import register_secret
from sync.runner.run import RunReport, run_sync
from sync.runner.run import dry_run as plan_sync

log = logging.getLogger("sync")


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


@main.command()
@config_option
@allow_deletes_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Fetch and compare, print what would change, write nothing. "
    "Exit 0: no changes; 4: changes pending; 3: a run would be refused by the safeguard.",
)
@click.option(
    "--compare-all",
    is_flag=True,
    help="Compare every table row by row, also those whose source answered exactly as at the "
    "last successful run (which are otherwise skipped): puts right tables changed by hand.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AUTHZ_SYNC_METRICS_FILE",
    help="Write the run's metrics here in Prometheus text format (node_exporter's textfile "
    "collector), atomically, also when the run fails. Default: $AUTHZ_SYNC_METRICS_FILE.",
)
@reports_errors
def run(
    config_path: str | None,
    allow_deletes: bool,
    dry_run: bool,
    compare_all: bool,
    metrics_file: Path | None,
) -> None:
    """Sync the extension into the database once (what cron runs).

    Reads every user, group, role and permission, checks them, then writes the changes in one
    transaction: the database holds either the new copy or the previous one, never a mix.
    Prints a one-line summary on success; errors go to stderr with a non-zero exit code.
    """
    if metrics_file is None or dry_run:
        return _run(config_path, allow_deletes, dry_run, compare_all)
    try:
        report = _run(config_path, allow_deletes, dry_run, compare_all)
    except SyncError as error:
        _write_metrics(metrics_file, error.exit_code, None)
        raise
    except KeyboardInterrupt as interrupt:
        _write_metrics(metrics_file, Interrupted.of(interrupt).exit_code, None)
        raise
    except Exception:
        _write_metrics(metrics_file, EXIT_INTERNAL, None)
        raise
    _write_metrics(metrics_file, EXIT_OK, report)


def _write_metrics(path: Path, exit_code: int, report: RunReport | None) -> None:
    now = time.time()
    last_success = now if report is not None else previous_last_success(path)
    try:
        write_atomically(path, render(RunMetrics(now, exit_code, last_success, report)))
    except OSError as error:
        log.error("could not write the metrics file %s: %s", path, error.strerror)


def _run(
    config_path: str | None, allow_deletes: bool, dry_run: bool, compare_all: bool
) -> RunReport:
    settings = load_settings(config_path)
    register_secret(settings.client_secret.reveal())
    if allow_deletes:
        settings = replace(settings, safeguard=replace(settings.safeguard, allow_deletes=True))
    for warning in settings.warnings:
        log.warning(warning)
    if dry_run:
        with progress_bars() as progress:
            result = plan_sync(settings, progress=progress, compare_all=compare_all)
        show_dry_run(result)
    with progress_bars() as progress:
        report = run_sync(settings, progress=progress, compare_all=compare_all)
    print_summary(report)
    return report


for command in (db, demo, simulate, graph, status, backfill, check, import_file):
    main.add_command(command)
