"""`authz-sync import FILE`: an export file of the extension through the same path as `run`."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import click

from sync.cli.common import (
    allow_deletes_option,
    config_option,
    logging_options,
    print_summary,
    reports_errors,
    show_dry_run,
)
from sync.config import load_import_settings
from sync.runner.run import plan_snapshot, sync_snapshot
from sync.source.export_file import ExportFileSource

log = logging.getLogger("sync")


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@config_option
@allow_deletes_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read the file and compare, print what would change, write nothing. "
    "Exit 0: no changes; 4: changes pending; 3: an import would be refused by the safeguard.",
)
@logging_options
@reports_errors
def import_file(file: Path, config_path: str | None, allow_deletes: bool, dry_run: bool) -> None:
    """Load an export file of the extension: its groups, roles, permissions and their links.

    For backfills where the API is out of reach: FILE is what the extension's Export button
    saves (or GET /api/configuration/export answers). It goes through the same checks,
    safeguard, history and change log as `run`, in one transaction, and is recorded in the
    ledger as `file:NAME sha256:…`. The export holds no users: authz_users is kept as it is,
    and orphan members are flagged against it. Needs only the database settings, no Auth0 ones.
    Exit 66 when FILE cannot be read, 65 when it is not an export.
    """
    settings = load_import_settings(config_path)
    for warning in settings.warnings:
        log.warning(warning)
    if allow_deletes:
        settings = replace(settings, safeguard=replace(settings.safeguard, allow_deletes=True))
    source = ExportFileSource(file)  # a missing file fails here, before the database is touched
    if dry_run:
        show_dry_run(plan_snapshot(source, settings))
    print_summary(sync_snapshot(source, settings))
