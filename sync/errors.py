"""Every error authz-sync reports, grouped by what the operator has to do about it.

    SyncError                      one line for the operator, an exit code for cron
    ├── ConfigError            2   fix the configuration (every problem listed at once)
    ├── AuthError             77   grant something in Auth0 (secret, client grant, scope)
    │   └── ExportNotGranted       no grant (or no read:users) on the Management API: the
    │                              export job cannot be used, the user windows can
    ├── ApiError              69   the extension could not be read (gave up after retries, or
    │                              answered a request we cannot fix by retrying)
    │   ├── RetryableApiError      internal: a 429/5xx/transport failure worth another try
    │   └── ExportJobFailed        the export job failed or expired twice, its file stayed
    │                              broken, its deadline passed or its location was unsafe:
    │                              the users can still be read through the extension
    ├── ApiDataError          65   the extension answered data we cannot store faithfully
    │   └── IncompleteReadError    the user list could not be read completely
    │                              (an export file that is not one is an ApiDataError too)
    ├── InputFileError        66   `import`: the export file cannot be read
    ├── DatabaseError         74   the database refused or lost the connection
    │   └── SchemaError       78   the database schema is not the one this version expects
    ├── DeleteGuardError       3   the run would delete more than the safeguard allows
    └── RunLockedError        75   another run holds this database (sql/lock.py)

    Interrupted (a KeyboardInterrupt): SIGINT → 130, SIGTERM → 143, run.max_seconds → 124;
    the run is `aborted`.
    Any other exception is a bug: 70.

Exit codes that are outcomes, not errors: 1 (`check` found a problem), 4 (`run --dry-run`:
changes pending). `exit_code_of` is the one mapping from an exception to its exit code: the CLI
exits with it and the metrics file records it.

Exit codes follow sysexits.h where one fits; the README's table is the reference.
Messages never contain secrets: they are built from our own words and redacted URLs.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug; the traceback goes to the log
EXIT_CONFIG = 2  # same code click uses for a wrong command line
EXIT_DATA = 65  # EX_DATAERR
EXIT_NOINPUT = 66  # EX_NOINPUT: an input file does not exist or cannot be read
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_IO = 74  # EX_IOERR
EXIT_NOPERM = 77  # EX_NOPERM
EXIT_SCHEMA = 78  # EX_CONFIG
EXIT_CHECK_FAILED = 1  # `check`: a step failed
EXIT_DELETE_GUARD = 3
EXIT_CHANGES_PENDING = 4  # `run --dry-run`: the database differs from the extension
EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # … and by SIGTERM
EXIT_TIME_LIMIT = 124  # run.max_seconds ran out (the code timeout(1) uses)


class SyncError(Exception):
    """An error with a message meant for the operator and the exit code that reports it."""

    exit_code = EXIT_INTERNAL


class ConfigError(SyncError):
    """The settings are wrong; `problems` holds one line per problem."""

    exit_code = EXIT_CONFIG

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class AuthError(SyncError):
    """Auth0 refused the client, the audience, or the extension refused a scope."""

    exit_code = EXIT_NOPERM


class ApiError(SyncError):
    """The extension API failed in a way retrying did not (or cannot) fix.

    `status` is the HTTP status of the answer, when there was one.
    """

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableApiError(ApiError):
    """A failure worth retrying: 429, 5xx, timeout, dropped connection, garbled body.

    `wait_hint` is how long the server asked us to wait (Retry-After / X-RateLimit-Reset);
    `max_tries` caps the tries of a failure that retrying rarely mends (no such host).
    """

    def __init__(self, message: str, wait_hint: float | None = None, max_tries: int | None = None):
        super().__init__(message)
        self.wait_hint = wait_hint
        self.max_tries = max_tries


class ExportNotGranted(AuthError):
    """The application may not use the Management API's export job (no client grant on its
    audience, or no read:users scope)."""


class ExportJobFailed(ApiError):
    """The bulk user export job did not deliver a whole file; reading the users through the
    extension instead is the way out (the caller decides)."""


class ApiDataError(SyncError):
    """The extension answered something we cannot store faithfully."""

    exit_code = EXIT_DATA


class IncompleteReadError(ApiDataError):
    """Not every user could be read; storing the rest would pass a partial copy off as whole."""


class InputFileError(SyncError):
    """`authz-sync import`: the export file is missing or unreadable; nothing was touched."""

    exit_code = EXIT_NOINPUT


class DatabaseError(SyncError):
    exit_code = EXIT_IO


class SchemaError(DatabaseError):
    exit_code = EXIT_SCHEMA


class DeleteGuardError(SyncError):
    """The run would delete more than the safeguard allows; nothing was written."""

    exit_code = EXIT_DELETE_GUARD


class RunLockedError(SyncError):
    """Another run holds the database's run lock; this one did nothing."""

    exit_code = EXIT_LOCKED


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: stop now, roll back, record the run as aborted."""

    def __init__(self, signal_name: str = "SIGINT", exit_code: int = EXIT_INTERRUPTED):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code

    @classmethod
    def of(cls, error: KeyboardInterrupt) -> Interrupted:
        """A plain KeyboardInterrupt is Ctrl-C (SIGINT)."""
        return error if isinstance(error, Interrupted) else cls()


def exit_code_of(error: BaseException) -> int:
    """The exit code that reports `error`: its own for ours, 130/143 for a signal, 70 for a bug."""
    if isinstance(error, SyncError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return Interrupted.of(error).exit_code
    return EXIT_INTERNAL
