"""`authz-sync backfill`: one-off reads a nightly run does not need."""

from __future__ import annotations

from functools import partial

import click

from sync.cli.common import config_option, logging_options, progress_bars, reports_errors
from sync.config import load_settings
from sync.runner.backfill import backfill_user_details


@click.command()
@config_option
@click.option(
    "--user-details",
    is_flag=True,
    help="Fetch every user's full profile into authz_user_details: through one export job "
    "(users.source, as for a run), or one GET /api/users/{id} per user.",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming an unfinished one.")
@logging_options
@reports_errors
def backfill(config_path: str | None, user_details: bool, restart: bool) -> None:
    """Fetch what a run does not: every user's full profile, paced and resumable.

    Through Auth0's export job when the application may use it (users.source: a handful of
    requests, committed a slice of 1000 at a time), else one request per user, paced under the
    rate limit, committed every 50 users. A killed backfill resumes where it stopped (without
    storing again what it committed). It waits for no run: if a sync holds the database it
    exits with 75, like a second run.
    """
    if not user_details:
        raise click.UsageError("say what to backfill: --user-details")
    settings = load_settings(config_path)
    with progress_bars() as progress:
        on_progress = partial(progress.update, "profiles")
        report = backfill_user_details(settings, restart=restart, progress=on_progress)
    click.echo(summary(report))


def summary(report) -> str:
    """`backfill 3 finished: …`, or `backfill 3 resumed and finished: … fetched this time`."""
    gone = report.skipped_missing
    if report.resumed:
        done = f"resumed and finished: {report.fetched} profiles fetched this time"
    else:
        done = f"finished: {report.fetched} profiles fetched"
    users = "user" if gone == 1 else "users"
    line = f"backfill {report.backfill_id} {done}, {gone} {users} gone since the last sync"
    if report.export_job:
        line += f"; {report.requests} API requests (export job {report.export_job})"
    elif report.fallback:
        line += f"; the export job failed, so {report.requests} API requests, one per user"
    return line
