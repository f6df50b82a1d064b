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

from sync import logs, progress
from sync.cli.report import dry_run_text, summary_json, summary_line
from sync.errors import (
    EXIT_CHANGES_PENDING,
    EXIT_DELETE_GUARD,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_TIME_LIMIT,
    Interrupted,
    RunLockedError,
    SyncError,
    exit_code_of,
)
from sync.model import DryRun, RunReport
from sync.redact import redact

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


def logging_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """-v, -q and --log-format after the command too (`authz-sync run -v`), as sqlite-utils
    and dlt take them: they add to what stood before the command."""

    @click.option("-v", "--verbose", "more_verbose", count=True, help="More detail on stderr.")
    @click.option("-q", "--quiet", "quieter", is_flag=True, help="Only errors on stderr.")
    @click.option(
        "--log-format", "other_format", type=click.Choice(["text", "json"]), help="text or json."
    )
    @functools.wraps(command)
    def wrapper(*args: Any, more_verbose: int, quieter: bool, other_format: str | None, **kw):
        if more_verbose or quieter or other_format:
            root = click.get_current_context().find_root().params
            root["verbose"] = root.get("verbose", 0) + more_verbose
            root["quiet"] = root.get("quiet") or quieter
            root["log_format"] = other_format or root.get("log_format", "text")
            setup_logging(root["verbose"], root["quiet"], root["log_format"])
        return command(*args, **kw)

    return wrapper


def as_json() -> bool:
    """--log-format json: every line on stdout and stderr is JSON."""
    return click.get_current_context().find_root().params.get("log_format") == "json"


def progress_bars() -> progress.Progress:
    """Bars on stderr when it is a terminal, unless --quiet or --log-format json say otherwise."""
    options = click.get_current_context().find_root().params
    return progress.on_stderr(not options.get("quiet") and options.get("log_format") != "json")


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, Kubernetes, `kill`) stops a run like Ctrl-C does: roll back, record."""

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted("SIGTERM", EXIT_TERMINATED)

    signal.signal(signal.SIGTERM, raise_interrupted)


def stop_after(seconds: float | None) -> None:
    """run.max_seconds: a run still going after `seconds` stops like Ctrl-C does (rolled back,
    `aborted`), with exit 124. Every wait inside a run is bounded too (retries, lock waits):
    this bounds their sum."""
    if not seconds:
        return

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted(f"run.max_seconds ({seconds:g} s)", EXIT_TIME_LIMIT)

    signal.signal(signal.SIGALRM, raise_interrupted)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception into `Error: …` lines on stderr and its exit code; never a traceback.

    A run skipped because another holds the database (75) is no failure: a warning line, which
    --quiet silences, so that cron mails nothing for it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click prints its own usage errors, with its exit code 2
        except RunLockedError as error:  # skipped, not failed: a warning --quiet silences
            log.warning(redact(str(error)))
            sys.exit(error.exit_code)
        except (Exception, KeyboardInterrupt) as error:
            if not isinstance(error, (SyncError, KeyboardInterrupt)):  # a bug: -vv shows it
                log.debug("unexpected error", exc_info=True)
            for line in message_of(error):
                _error(line, getattr(error, "run_id", None))
            sys.exit(exit_code_of(error))

    return wrapper


def message_of(error: BaseException) -> list[str]:
    """What the operator reads about an error, one line each, secrets masked."""
    if isinstance(error, SyncError):
        return redact(str(error)).splitlines()
    if isinstance(error, KeyboardInterrupt):
        return [f"interrupted by {Interrupted.of(error).signal_name}; nothing was written"]
    return [
        f"internal error ({type(error).__name__}); rerun with -vv for details and please report it"
    ]


def _error(line: str, run_id: int | None = None) -> None:
    if logs.as_json():
        log.error(line, extra={"run_id": run_id})  # the run is in the ledger: say which
    else:
        click.echo(f"Error: {line}", err=True)


def print_summary(report: RunReport, json_document: bool = False) -> None:
    """The one line cron sees; the run's warnings (dangling references and the like) only with
    -v: they come back every night until someone mends the extension, and cron mails stderr.
    With --log-format json or `--json`, the run's result as one JSON object."""
    for warning in report.warnings:
        log.info(warning, extra={"run_id": report.run_id})
    click.echo(summary_json(report) if json_document or as_json() else summary_line(report))


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
