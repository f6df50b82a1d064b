"""Settings: a TOML file, overridden by AUTHZ_SYNC_* environment variables, checked all at once.

Every setting has one row in `FIELDS`: its TOML section and key, its type, its default and the
environment variables that override it. `load_settings` merges file and environment, converts and
checks every value, and raises one ConfigError listing every problem, one line each. The result
is frozen and nested like the file: `settings.auth0.client_id`, `settings.retry.max_attempts`.
The client secret is a `Secret`, registered for redaction as soon as it is read.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import ssl
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sync.errors import ConfigError
from sync.model import SYNCED_TABLES
from sync.redact import MASK, register_secret

SYNCED_TABLE_NAMES = set(SYNCED_TABLES)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "AUTHZ_SYNC_"
CONFIG_ENV = "AUTHZ_SYNC_CONFIG"
# Read by the command line itself, not settings: --config and --metrics-file.
COMMAND_ENV = {CONFIG_ENV, "AUTHZ_SYNC_METRICS_FILE", "AUTHZ_SYNC_LOG_FORMAT"}
TEST_ENV = "AUTHZ_SYNC_TEST_"  # the test suite's server URLs
DEFAULT_AUDIENCE = "urn:auth0-authz-api"
DEFAULT_DATABASE_URL = "sqlite:///authz-sync.db"


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Field:
    section: str
    key: str
    kind: type
    default: Any = None
    env: tuple[str, ...] = ()  # short names fixed by the operator interface, besides the long one
    check: Callable[[Any], str | None] | None = None  # returns a problem, or None

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env_names(self) -> tuple[str, ...]:
        long_name = f"{ENV_PREFIX}{self.section}_{self.key}".upper()
        return (*self.env, long_name) if long_name not in self.env else self.env


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


# Lowercase, so that analysts write tenant_prod.authz_users without quotes; pg_* is reserved.
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _schema_name(value: str) -> str | None:
    if SCHEMA_NAME.fullmatch(value) and not value.startswith("pg_"):
        return None
    return (
        "must be a PostgreSQL schema name of lowercase letters, digits and _, starting with a "
        "letter or _, at most 63 characters, not starting with pg_ (e.g. tenant_prod)"
    )


# Where a run reads users: Auth0's bulk export job, the extension's /api/users windows, or
# "auto": the export job when the application has a Management API grant with read:users.
USER_SOURCES = ("auto", "export", "extension")

FIELDS: tuple[Field, ...] = (
    Field("auth0", "domain", str, env=("AUTHZ_SYNC_AUTH0_DOMAIN",)),
    Field("auth0", "client_id", str, env=("AUTHZ_SYNC_CLIENT_ID",)),
    Field("auth0", "client_secret", str, env=("AUTHZ_SYNC_CLIENT_SECRET",)),
    Field("auth0", "client_secret_file", str, env=("AUTHZ_SYNC_CLIENT_SECRET_FILE",)),
    Field("auth0", "audience", str, DEFAULT_AUDIENCE, env=("AUTHZ_SYNC_AUDIENCE",)),
    Field("auth0", "management_audience", str),
    Field("extension", "url", str, env=("AUTHZ_SYNC_EXTENSION_URL",)),
    Field("extension", "connect_timeout", float, 10.0, check=_positive),
    Field("extension", "read_timeout", float, 60.0, check=_positive),
    Field("extension", "users_per_page", int, 100, check=_between(1, 100)),
    Field("extension", "concurrency", int, 1, check=_between(1, 16)),
    Field("extension", "ca_bundle", str),
    Field("users", "source", str, "auto", check=_one_of(*USER_SOURCES)),
    Field("users", "export_timeout", float, 1800.0, check=_between(10, 86400)),
    Field("users", "export_fallback", bool, True),
    Field("users", "export_tolerance", float, 0.5, check=_between(0, 100)),
    Field("users", "export_poll_interval", float, 1.0, check=_between(0.1, 600)),
    Field("retry", "max_attempts", int, 8, check=_between(1, 100)),
    Field("retry", "initial_wait", float, 1.0, check=_between(0, 3600)),
    Field("retry", "max_wait", float, 60.0, check=_between(0, 3600)),
    Field("retry", "max_total_wait", float, 600.0, check=_between(0, 86400)),
    Field("database", "url", str, DEFAULT_DATABASE_URL, env=("AUTHZ_SYNC_DATABASE_URL",)),
    Field("database", "schema", str, env=("AUTHZ_SYNC_DATABASE_SCHEMA",), check=_schema_name),
    Field("database", "lock_timeout", float, 60.0, check=_between(0.1, 86400)),
    Field("run", "max_seconds", float, check=_between(1, 7 * 86400)),
    Field("safeguard", "max_deletes", int, 500, check=_between(0, 10**9)),
    Field("safeguard", "max_delete_percent", float, 30.0, check=_between(0, 100)),
    Field("safeguard", "allow_deletes", bool, False),
    Field("safeguard", "tables", dict, {}),  # per-table limits; TOML only
)

REQUIRED_FOR_RUN = ("auth0.domain", "auth0.client_id", "extension.url")


@dataclass(frozen=True)
class DeleteLimit:
    max_deletes: int = 500
    max_delete_percent: float = 30.0


@dataclass(frozen=True)
class Safeguard:
    """How many deletes a run may make (sql/safeguard.py enforces it)."""

    default: DeleteLimit = DeleteLimit()
    per_table: Mapping[str, DeleteLimit] = field(default_factory=dict)
    allow_deletes: bool = False

    def limit(self, table: str) -> DeleteLimit:
        return self.per_table.get(table, self.default)


@dataclass(frozen=True)
class Auth0Settings:
    url: str  # base URL of the tenant, e.g. https://acme.eu.auth0.com
    client_id: str
    client_secret: Secret
    audience: str = DEFAULT_AUDIENCE
    # The Management API's audience; None: https://<domain>/api/v2/ (set it when the tenant's
    # custom domain differs from its canonical one).
    management_audience: str | None = None


@dataclass(frozen=True)
class UserSourceSettings:
    """How a run reads users (the [users] section)."""

    source: str = "auto"  # one of USER_SOURCES
    export_timeout: float = 1800.0  # seconds an export job may take, creation to last byte
    export_fallback: bool = True  # a failed export job: read through the extension instead
    # Percent by which the export's user count may differ from the extension's total (at
    # least EXPORT_TOLERANCE_USERS users: sign-ups during the job) before the run fails.
    export_tolerance: float = 0.5
    export_poll_interval: float = 1.0  # seconds before the first poll; pauses grow from there


EXPORT_TOLERANCE_USERS = 10


@dataclass(frozen=True)
class ExtensionSettings:
    url: str  # ends in /api, no trailing slash
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    users_per_page: int = 100
    concurrency: int = 1
    ca_bundle: str | None = None

    @property
    def base_url(self) -> str:
        """The part before /api: every API path in the reference is relative to it."""
        return self.url.removesuffix("/api")


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 8
    initial_wait: float = 1.0
    max_wait: float = 60.0
    max_total_wait: float = 600.0


@dataclass(frozen=True)
class DatabaseSettings:
    url: str  # a SQLAlchemy URL naming an installed driver (password included)
    schema: str | None = None  # PostgreSQL: the schema that holds every table
    # Seconds a statement waits for a lock another session holds before the run gives up
    # (exit 74): PostgreSQL lock_timeout, MariaDB/MySQL lock waits, SQLite busy_timeout.
    lock_timeout: float = 60.0


@dataclass(frozen=True)
class Settings:
    """Everything `run`, `check` and `backfill` need."""

    auth0: Auth0Settings
    extension: ExtensionSettings
    database: DatabaseSettings
    retry: RetrySettings = RetrySettings()
    safeguard: Safeguard = Safeguard()
    users: UserSourceSettings = UserSourceSettings()
    max_seconds: float | None = None  # run.max_seconds: a whole run's limit (None: none)
    warnings: tuple[str, ...] = field(default=(), compare=False)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_auth0_domain(value: str) -> str:
    """`acme.eu.auth0.com` means https; a base URL is accepted, plain http only to loopback."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be a domain such as acme.eu.auth0.com or an https:// base URL")
    if parts.path or parts.query:
        raise ValueError("must be the tenant domain only, without a path (no /oauth/token)")
    _require_host(parts, "give a domain such as acme.eu.auth0.com")
    _require_tls(parts.scheme, parts.hostname)
    return value


def normalize_extension_url(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be the extension's API URL, e.g. https://….webtask.io/…/api")
    if not parts.path.endswith("/api"):
        raise ValueError(
            "must end in /api: copy the API URL from the extension's settings (API section)"
        )
    _require_host(parts, "copy the API URL from the extension's settings (API section)")
    _require_tls(parts.scheme, parts.hostname)
    return value


def normalize_management_audience(value: str) -> str:
    """The Management API's identifier as the dashboard shows it: https://<domain>/api/v2/."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            "must be the Management API's identifier, e.g. https://acme.eu.auth0.com/api/v2/"
        )
    if parts.path.rstrip("/") != "/api/v2":
        raise ValueError(
            "must end in /api/v2/ (Dashboard → APIs → Auth0 Management API → Identifier)"
        )
    _require_host(parts, "copy the Identifier of the Auth0 Management API from the dashboard")
    _require_tls(parts.scheme, parts.hostname)
    return value if value.endswith("/") else value + "/"


HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
    re.I,
)


def _require_host(parts, example: str) -> None:
    """A host name or IP address, and a port that is a number: what a client can connect to."""
    host = parts.hostname or ""
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"has a port that is not a number: {example}") from None
    if not HOST_NAME.fullmatch(host) and not _is_ip(host):
        raise ValueError(f"names the host {host!r}, which is not a host name: {example}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _require_tls(scheme: str, host: str) -> None:
    if scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"plain http:// is refused for {host}: use https:// (http only to loopback)"
        )


# The databases authz-sync supports: a bare name picks the driver its optional extra installs.
DEFAULT_DRIVERS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
DRIVER_EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
# SQLAlchemy driver names whose Python module is named differently.
DRIVER_MODULES = {"pysqlite": "sqlite3", "mysqldb": "MySQLdb", "mysqlconnector": "mysql.connector"}
URL_SCHEME = re.compile(r"^([a-z][a-z0-9]*)(?:\+([a-z0-9_]+))?://", re.I)


def normalize_database_url(value: str) -> str:
    """A SQLAlchemy URL naming an installed driver (the SQL wing parses it; settings stay plain
    text so that loading them needs no database library)."""
    match = URL_SCHEME.match(value.strip())
    if not match:
        raise ValueError(
            "is not a SQLAlchemy URL, e.g. postgresql://user@host/db or sqlite:///authz-sync.db"
        )
    backend, driver = match.group(1).lower(), match.group(2)
    if backend not in DEFAULT_DRIVERS:
        known = ", ".join(DEFAULT_DRIVERS)
        raise ValueError(f"names an unknown database kind {backend!r} (supported: {known})")
    scheme = f"{backend}+{driver}" if driver else DEFAULT_DRIVERS[backend]
    url = scheme + value.strip()[match.end() - 3 :]
    driver_name = scheme.partition("+")[2] or "pysqlite"
    module = DRIVER_MODULES.get(driver_name, driver_name)
    if importlib.util.find_spec(module.split(".")[0]) is None:
        extra = DRIVER_EXTRAS.get(backend, backend)
        raise ValueError(f"needs the driver {driver_name!r}: pip install 'authz-sync[{extra}]'")
    if backend in ("mysql", "mariadb") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"  # emoji need 4-byte UTF-8
    return url


def backend_of(url: str) -> str:
    """`postgresql`, `mysql`, `mariadb` or `sqlite` (of a normalized URL)."""
    return url.partition(":")[0].partition("+")[0]


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            [f"config file {path} does not exist: check --config or {CONFIG_ENV}"]
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"config file {path} is not valid TOML: {error}"]) from None
    except OSError as error:
        raise ConfigError([f"config file {path} cannot be read: {error.strerror}"]) from None


def _from_file(
    document: dict[str, Any], problems: list[str], origins: dict[str, str], path: Path | None
) -> dict[str, Any]:
    known = {(f.section, f.key) for f in FIELDS}
    sections = {f.section for f in FIELDS}
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section not in sections or not isinstance(table, dict):
            problems.append(f"config file: unknown section [{section}] (known: {_names(sections)})")
            continue
        for key, value in table.items():
            if (section, key) not in known:
                problems.append(f"config file: unknown setting {section}.{key}")
            else:
                values[f"{section}.{key}"] = value
                origins[f"{section}.{key}"] = f"{path}, [{section}] {key}"
    return values


def _from_environment(
    environ: Mapping[str, str], problems: list[str], origins: dict[str, str]
) -> dict[str, Any]:
    by_env = {env: f for f in FIELDS for env in f.env_names}
    values: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in COMMAND_ENV or name.startswith(TEST_ENV):
            continue
        if name not in by_env:
            problems.append(
                f"environment: unknown variable {name} (`authz-sync config --example` lists them)"
            )
        elif value != "":  # an empty variable means "not set", as shells make it easy to blank
            values[by_env[name].name] = value
            origins[by_env[name].name] = f"environment variable {name}"
    return values


def _names(items: Any) -> str:
    return ", ".join(sorted(items))


TRUE_WORDS, FALSE_WORDS = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _convert(spec: Field, raw: Any) -> Any:
    if spec.kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in TRUE_WORDS | FALSE_WORDS:
            return raw.lower() in TRUE_WORDS
        raise ValueError("must be true or false")
    if spec.kind is dict:
        if not isinstance(raw, dict):
            raise ValueError("must be a TOML table (set it in the config file)")
        return raw
    if spec.kind is str:
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        return raw
    if isinstance(raw, bool):
        raise ValueError(f"must be a {'whole number' if spec.kind is int else 'number'}")
    try:
        value = spec.kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"must be a {'whole number' if spec.kind is int else 'number'}") from None
    if spec.kind is int and isinstance(raw, float) and raw != value:
        raise ValueError("must be a whole number")
    return value


def _typed_values(
    merged: dict[str, Any], problems: list[str], origins: dict[str, str]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in FIELDS:
        if spec.name not in merged:
            values[spec.name] = spec.default
            continue
        try:
            value = _convert(spec, merged[spec.name])
            problem = spec.check(value) if spec.check else None
        except ValueError as error:
            problem = str(error)
        if problem:
            problems.append(f"{spec.name} {problem} (from {origins[spec.name]})")
        else:
            values[spec.name] = value
    return values


def _read_secret(values: dict[str, Any], problems: list[str]) -> Secret | None:
    inline, path = values.get("auth0.client_secret"), values.get("auth0.client_secret_file")
    if inline and path:
        problems.append(
            "auth0.client_secret and auth0.client_secret_file are both set: keep one "
            "(AUTHZ_SYNC_CLIENT_SECRET or AUTHZ_SYNC_CLIENT_SECRET_FILE)"
        )
        return None
    if path:
        try:
            inline = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            problems.append(f"auth0.client_secret_file {path} cannot be read: {error.strerror}")
            return None
        except UnicodeDecodeError:
            problems.append(f"auth0.client_secret_file {path} is not UTF-8 text")
            return None
        if not inline:
            problems.append(f"auth0.client_secret_file {path} is empty: put the secret in it")
            return None
    if not inline:
        problems.append(
            "auth0.client_secret is not set: set AUTHZ_SYNC_CLIENT_SECRET, or "
            "auth0.client_secret_file / AUTHZ_SYNC_CLIENT_SECRET_FILE naming a file that holds it"
        )
        return None
    register_secret(inline)  # masked in every log line and message from now on
    return Secret(inline)


def _normalized(
    values: dict[str, Any], problems: list[str], origins: dict[str, str]
) -> dict[str, Any]:
    normalizers = {
        "auth0.domain": normalize_auth0_domain,
        "extension.url": normalize_extension_url,
        "database.url": normalize_database_url,
        "auth0.management_audience": normalize_management_audience,
    }
    for name, normalize in normalizers.items():
        if values.get(name) is None:
            continue
        try:
            values[name] = normalize(values[name])
        except ValueError as error:
            problems.append(f"{name} {error} (from {origins.get(name, 'the default')})")
    _check_schema_backend(values, problems)
    ca_bundle = values.get("extension.ca_bundle")
    if ca_bundle and not Path(ca_bundle).is_file():
        problems.append(f"extension.ca_bundle {ca_bundle} is not a file: give a PEM bundle path")
    elif ca_bundle:
        try:
            ssl.create_default_context(cafile=ca_bundle)
        except (ssl.SSLError, ValueError):
            problems.append(f"extension.ca_bundle {ca_bundle} holds no PEM certificate")
    return values


def _check_schema_backend(values: dict[str, Any], problems: list[str]) -> None:
    """database.schema only means something on PostgreSQL; elsewhere, say what to do instead."""
    url = values.get("database.url")
    if not values.get("database.schema") or not url:
        return
    backend = backend_of(url)
    if backend == "sqlite":
        problems.append(
            "database.schema is for PostgreSQL only: SQLite has no schemas, so give each tenant "
            "its own database file in database.url (e.g. sqlite:///authz-prod.db)"
        )
    elif backend != "postgresql":
        problems.append(
            "database.schema is for PostgreSQL only: in MySQL/MariaDB a schema is a database, "
            "so name one database per tenant in database.url (e.g. mysql://user@host/authz_prod)"
        )


def _file_warnings(path: Path | None, document: dict[str, Any]) -> tuple[str, ...]:
    if path is None or not document.get("auth0", {}).get("client_secret"):
        return ()
    if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"config file {path} holds the client secret and is readable by others: "
            f"chmod 600 it, or move the secret to auth0.client_secret_file",
        )
    return ()


def _secret_file_warnings(values: dict[str, Any]) -> tuple[str, ...]:
    path = values.get("auth0.client_secret_file")
    try:
        readable = bool(path) and Path(path).stat().st_mode & (stat.S_IRGRP | stat.S_IROTH)
    except OSError:  # reported as a problem by _read_secret
        return ()
    if readable:
        return (
            f"auth0.client_secret_file {path} is readable by others: chmod 600 it (in "
            f"Kubernetes, defaultMode: 0400 on the secret volume)",
        )
    return ()


def _safeguard(values: dict[str, Any], problems: list[str]) -> Safeguard:
    default = DeleteLimit(
        values.get("safeguard.max_deletes", 500), values.get("safeguard.max_delete_percent", 30.0)
    )
    per_table = {}
    for table, limits in (values.get("safeguard.tables") or {}).items():
        where = f"safeguard.tables.{table}"
        if table not in SYNCED_TABLE_NAMES:
            problems.append(f"{where}: unknown table (known: {_names(SYNCED_TABLE_NAMES)})")
            continue
        unknown = (
            set(limits) - {"max_deletes", "max_delete_percent"}
            if isinstance(limits, dict)
            else None
        )
        if unknown is None or unknown:
            problems.append(f"{where} may only set max_deletes and max_delete_percent")
            continue
        count = limits.get("max_deletes", default.max_deletes)
        percent = limits.get("max_delete_percent", default.max_delete_percent)
        if not _whole(count) or count < 0 or not _number(percent) or not 0 <= percent <= 100:
            problems.append(
                f"{where}: max_deletes must be a whole number ≥ 0 and max_delete_percent a "
                f"number from 0 to 100"
            )
            continue
        per_table[table] = DeleteLimit(count, float(percent))
    return Safeguard(default, per_table, values.get("safeguard.allow_deletes", False))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_values(
    config_path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None
) -> tuple[Path | None, dict[str, Any], dict[str, Any], list[str]]:
    """The config file's path and document, the checked values, and the problems found."""
    environ = os.environ if environ is None else environ
    path_text = config_path or environ.get(CONFIG_ENV) or None
    path = Path(path_text) if path_text else None
    document = read_config_file(path) if path else {}
    problems: list[str] = []
    origins: dict[str, str] = {}  # where each value that is not a default came from
    merged = _from_file(document, problems, origins, path)
    merged |= _from_environment(environ, problems, origins)
    values = _normalized(_typed_values(merged, problems, origins), problems, origins)
    return path, document, values, problems


def effective_settings(
    config_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(setting, value as shown, where it came from) for every setting: what `authz-sync
    config` prints. The secret is masked, a database password hidden."""
    environ = os.environ if environ is None else environ
    path_text = config_path or environ.get(CONFIG_ENV) or None
    path = Path(path_text) if path_text else None
    document = read_config_file(path) if path else {}
    problems: list[str] = []
    origins: dict[str, str] = {}
    merged = _from_file(document, problems, origins, path)
    merged |= _from_environment(environ, problems, origins)
    rows = []
    for spec in FIELDS:
        value = merged.get(spec.name, spec.default)
        rows.append((spec.name, _shown(spec.name, value), origins.get(spec.name, "default")))
    return rows


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(not set)"
    if name == "auth0.client_secret":
        return MASK
    if name == "database.url":
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", str(value))
    return str(value)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    required: tuple[str, ...] = REQUIRED_FOR_RUN,
) -> Settings:
    """Read the TOML file (if any) and the environment; raise ConfigError listing every problem."""
    path, document, values, problems = _read_values(config_path, environ)
    for name in required:
        if not values.get(name):
            spec = next(f for f in FIELDS if f.name == name)
            problems.append(
                f"{name} is not set: add it to the config file or set {spec.env_names[0]}"
            )
    secret = _read_secret(values, problems)
    safeguard = _safeguard(values, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(
        auth0=Auth0Settings(
            values["auth0.domain"],
            values["auth0.client_id"],
            secret,
            values["auth0.audience"],
            values["auth0.management_audience"],
        ),
        extension=ExtensionSettings(**_section(values, "extension")),
        database=_database(values),
        retry=RetrySettings(**_section(values, "retry")),
        safeguard=safeguard,
        users=UserSourceSettings(**_section(values, "users")),
        max_seconds=values["run.max_seconds"],
        warnings=_file_warnings(path, document) + _secret_file_warnings(values),
    )


def _section(values: dict[str, Any], section: str) -> dict[str, Any]:
    """The values of one TOML section, by key."""
    prefix = f"{section}."
    return {name.removeprefix(prefix): v for name, v in values.items() if name.startswith(prefix)}


def _database(values: dict[str, Any]) -> DatabaseSettings:
    return DatabaseSettings(
        values["database.url"], values["database.schema"], values["database.lock_timeout"]
    )


@dataclass(frozen=True)
class ImportSettings:
    """What `authz-sync import` needs: the database and the safeguard, no tenant."""

    database: DatabaseSettings
    safeguard: Safeguard = field(default_factory=Safeguard)
    warnings: tuple[str, ...] = field(default=(), compare=False)


def load_import_settings(
    config_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> ImportSettings:
    """The database and safeguard settings; the Auth0 and extension ones may stay unset."""
    path, document, values, problems = _read_values(config_path, environ)
    safeguard = _safeguard(values, problems)
    if problems:
        raise ConfigError(problems)
    return ImportSettings(_database(values), safeguard, _file_warnings(path, document))


def load_database_settings(
    config_path: str | None, environ: Mapping[str, str] | None = None
) -> DatabaseSettings:
    """Only the database settings, for commands that need no tenant (`db`, `status`, `graph`)."""
    _, _, values, problems = _read_values(config_path, environ)
    if problems:
        raise ConfigError(problems)
    return _database(values)
