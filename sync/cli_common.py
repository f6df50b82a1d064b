"""What commands share: the --config option, logging, errors → messages + exit codes, and how
`run` and `import` print a run's outcome or a dry run."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from . import logs, progress
from .errors import (
    EXIT_CHANGES_PENDING,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_TERMINATED,
    Interrupted,
    SyncError,
)
from .lock import RunLockedError
from .redact import redact
from .report import dry_run_text, summary_line
from .runner import DryRun, RunReport
from .safeguard import EXIT_DELETE_GUARD

log = logging.getLogger("sync")

config_option = click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="AUTHZ_SYNC_CONFIG",
    help="TOML settings file (default: $AUTHZ_SYNC_CONFIG). AUTHZ_SYNC_* variables override it.",
)

allow_deletes_option = click.option(
    "--allow-deletes",
    is_flag=True,
    help="Accept deletes beyond the safeguard limits (and an empty source) for this run.",
)


def setup_logging(verbose: int, quiet: bool, log_format: str = "text") -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logs.setup(logging.ERROR if quiet else level, log_format)


def progress_bars() -> progress.Progress:
    """Bars on stderr when it is a terminal, unless --quiet or --log-format json say otherwise."""
    options = click.get_current_context().find_root().params
    return progress.on_stderr(not options.get("quiet") and options.get("log_format") != "json")


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, Kubernetes, `kill`) stops a run like Ctrl-C does: roll back, record."""

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted("SIGTERM", EXIT_TERMINATED)

    signal.signal(signal.SIGTERM, raise_interrupted)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a SyncError into `Error: …` lines on stderr and its exit code; never a traceback.

    A run skipped because another holds the database (75) is no failure: a warning line, which
    --quiet silences, so that cron mails nothing for it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RunLockedError as error:
            log.warning(redact(str(error)))
            sys.exit(error.exit_code)
        except SyncError as error:
            for line in redact(str(error)).splitlines():
                _error(line)
            sys.exit(error.exit_code)
        except KeyboardInterrupt as interrupt:
            stop = Interrupted.of(interrupt)
            _error(f"interrupted by {stop.signal_name}; nothing was written")
            sys.exit(stop.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click prints its own usage errors, with its exit code 2
        except Exception as error:  # a bug: the type is enough to report it, -vv shows the rest
            log.debug("unexpected error", exc_info=True)
            click.echo(
                f"Error: internal error ({type(error).__name__}); rerun with -vv for details "
                f"and please report it",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)

    return wrapper


def _error(line: str) -> None:
    if logs.as_json():
        log.error(line)
    else:
        click.echo(f"Error: {line}", err=True)


def print_summary(report: RunReport) -> None:
    """The one line cron sees; the run's warnings only with -v."""
    for warning in report.warnings:
        log.info(warning)
    click.echo(summary_line(report))


def show_dry_run(result: DryRun) -> NoReturn:
    """Print what a run would change; exit 0 (nothing), 4 (changes pending) or 3 (refused)."""
    for warning in result.warnings:
        log.info(warning)
    click.echo(dry_run_text(result))
    if result.refusal:
        for line in result.refusal.splitlines():
            click.echo(f"a run would stop: {line}", err=True)
        sys.exit(EXIT_DELETE_GUARD)
    sys.exit(EXIT_CHANGES_PENDING if result.changed else EXIT_OK)
