"""`authz-sync run`: one sync of the extension (what cron runs), or a dry run."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import click

from sync.cli.common import (
    allow_deletes_option,
    config_option,
    logging_options,
    print_summary,
    progress_bars,
    reports_errors,
    show_dry_run,
    stop_after,
)
from sync.cli.metrics import RunMetrics, previous_last_success, render, write_atomically
from sync.config import Settings, load_database_settings, load_settings
from sync.errors import EXIT_OK, SyncError, exit_code_of
from sync.model import RunReport
from sync.runner.run import dry_run as plan_sync
from sync.runner.run import last_success_time, run_sync

log = logging.getLogger("sync")


@click.command()
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
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Stop a run that takes longer (rolled back, recorded as aborted, exit 124); "
    "default: run.max_seconds, else no limit.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the run's result as one JSON document on stdout (counts per table, requests, "
    "retries, duration) instead of the summary line.",
)
@logging_options
@reports_errors
def run(
    config_path: str | None,
    allow_deletes: bool,
    dry_run: bool,
    compare_all: bool,
    metrics_file: Path | None,
    max_seconds: float | None,
    as_json: bool,
) -> None:
    """Sync the extension into the database once (what cron runs).

    Reads every user, group, role and permission, checks them, then writes the changes in one
    transaction: the database holds either the new copy or the previous one, never a mix.
    Prints a one-line summary on success; errors go to stderr with a non-zero exit code.
    """
    options = (config_path, allow_deletes, dry_run, compare_all, as_json, max_seconds)
    if metrics_file is None or dry_run:
        return _run(*options)
    try:
        report = _run(*options)
    except (Exception, KeyboardInterrupt) as error:
        _write_metrics(metrics_file, exit_code_of(error), None, config_path)
        raise
    _write_metrics(metrics_file, EXIT_OK, report, config_path)


def _write_metrics(
    path: Path, exit_code: int, report: RunReport | None, config_path: str | None
) -> None:
    now = time.time()
    last_success = _last_success(config_path, path)  # the ledger's, after a success too
    if report is not None:
        last_success = last_success or now
    try:
        write_atomically(path, render(RunMetrics(now, exit_code, last_success, report)))
    except OSError as error:
        log.error("could not write the metrics file %s: %s", path, error.strerror)


def _last_success(config_path: str | None, path: Path) -> float | None:
    """For a failed run: the last success as the ledger knows it, so the staleness alert works
    whatever file the metrics go to; the previous file's value when the database is what
    failed (or the settings)."""
    try:
        return last_success_time(load_database_settings(config_path)) or previous_last_success(path)
    except SyncError:
        return previous_last_success(path)


def _run(
    config_path: str | None,
    allow_deletes: bool,
    dry_run: bool,
    compare_all: bool,
    as_json: bool,
    max_seconds: float | None,
) -> RunReport:
    settings = _with_deletes(load_settings(config_path), allow_deletes)
    stop_after(max_seconds or settings.max_seconds)
    for warning in settings.warnings:
        log.warning(warning)
    if dry_run:
        with progress_bars() as progress:
            result = plan_sync(settings, progress=progress, compare_all=compare_all)
        show_dry_run(result)
    with progress_bars() as progress:
        report = run_sync(settings, progress=progress, compare_all=compare_all)
    print_summary(report, json_document=as_json)
    return report


def _with_deletes(settings: Settings, allow_deletes: bool) -> Settings:
    if not allow_deletes:
        return settings
    return replace(settings, safeguard=replace(settings.safeguard, allow_deletes=True))
