"""`authz-sync check`: the setup, step by step, as a ✓/✗ table."""

from __future__ import annotations

import sys

import click

from sync.cli.common import config_option, logging_options, reports_errors
from sync.errors import EXIT_CHECK_FAILED
from sync.runner.check import run_checks


@click.command()
@config_option
@logging_options
@reports_errors
def check(config_path: str | None) -> None:
    """Check the setup: settings, token, granted scopes, each endpoint, database and schema.

    Prints one ✓ or ✗ line per step, with what to do about each ✗; writes nothing. Exit 0 when
    every step passed, 1 otherwise. Run it after installing and after changing the grant.
    """
    checks = run_checks(config_path)
    width = max(len(c.name) for c in checks)
    for item in checks:
        click.echo(f"{'✓' if item.ok else '✗'} {item.name:<{width}}  {item.detail}")
    if not all(item.ok for item in checks):
        sys.exit(EXIT_CHECK_FAILED)
