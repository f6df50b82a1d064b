"""Settings: file + environment, normalization, and every problem reported at once."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from sync.config import DatabaseSettings, Secret, load_database_settings, load_settings
from sync.errors import ConfigError

GOOD_ENV = {
    "AUTHZ_SYNC_AUTH0_DOMAIN": "acme.eu.auth0.com",
    "AUTHZ_SYNC_CLIENT_ID": "client-1",
    "AUTHZ_SYNC_CLIENT_SECRET": "s3cr3t-value",
    "AUTHZ_SYNC_EXTENSION_URL": "https://acme.eu.webtask.io/adf6e2f2b84784b57522e3b19dfc9201/api/",
}


def problems(config_path=None, **env) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_path, env)
    return caught.value.problems


def test_environment_alone_is_enough_and_is_normalized():
    settings = load_settings(None, GOOD_ENV)
    assert settings.auth0.url == "https://acme.eu.auth0.com"
    assert settings.extension.url.endswith("/adf6e2f2b84784b57522e3b19dfc9201/api")
    assert settings.extension.base_url.endswith("/adf6e2f2b84784b57522e3b19dfc9201")
    assert settings.auth0.audience == "urn:auth0-authz-api"
    assert settings.database.url == "sqlite:///authz-sync.db"
    assert settings.auth0.client_secret.reveal() == "s3cr3t-value"


def test_the_secret_never_shows_in_repr():
    settings = load_settings(None, GOOD_ENV)
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(Secret("s3cr3t-value"))


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "authz.toml"
    path.write_text(
        '[auth0]\ndomain = "file.auth0.com"\nclient_id = "from-file"\n'
        '[extension]\nurl = "https://x.example/api"\nread_timeout = 5\n'
        "[retry]\nmax_attempts = 3\n"
    )
    os.chmod(path, 0o600)
    env = {"AUTHZ_SYNC_CLIENT_ID": "from-env", "AUTHZ_SYNC_CLIENT_SECRET": "x"}
    settings = load_settings(path, env | {"AUTHZ_SYNC_RETRY_MAX_ATTEMPTS": "4"})
    assert settings.auth0.client_id == "from-env"
    assert settings.auth0.url == "https://file.auth0.com"
    assert settings.extension.read_timeout == 5.0
    assert settings.retry.max_attempts == 4
    assert settings.warnings == ()


def test_config_path_from_environment(tmp_path):
    path = tmp_path / "authz.toml"
    path.write_text('[auth0]\nclient_id = "from-file"\n')
    settings = load_settings(None, GOOD_ENV | {"AUTHZ_SYNC_CONFIG": str(path)}, required=())
    assert settings.auth0.client_id == "client-1"  # the environment still wins


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[auth0]\ndomain = "http://evil.example.com"\ncolour = "red"\n'
        '[extension]\nurl = "https://x.example/"\nusers_per_page = 500\nread_timeout = "soon"\n'
        "[nonsense]\nx = 1\n"
        '[database]\nurl = "not a url"\n'
    )
    found = problems(path, AUTHZ_SYNC_TYPO="1")
    text = "\n".join(found)
    assert "plain http:// is refused for evil.example.com" in text
    assert "unknown setting auth0.colour" in text
    assert "unknown section [nonsense]" in text
    assert "extension.url must end in /api" in text
    assert "extension.users_per_page must be between 1 and 100" in text
    assert "extension.read_timeout must be a number" in text
    assert "database.url is not a SQLAlchemy URL" in text
    assert "unknown variable AUTHZ_SYNC_TYPO" in text
    assert "auth0.client_id is not set" in text
    assert "auth0.client_secret is not set" in text
    assert len(found) == 10, found
    assert all("\n" not in line for line in found)


def test_plain_http_to_loopback_is_accepted():
    env = GOOD_ENV | {
        "AUTHZ_SYNC_AUTH0_DOMAIN": "http://127.0.0.1:8080",
        "AUTHZ_SYNC_EXTENSION_URL": "http://localhost:9/api",
    }
    settings = load_settings(None, env)
    assert settings.auth0.url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "domain", ["acme.auth0.com/oauth/token", "ftp://acme.auth0.com", "http://10.0.0.1"]
)
def test_bad_domains(domain):
    assert any(
        "auth0.domain" in p for p in problems(**GOOD_ENV | {"AUTHZ_SYNC_AUTH0_DOMAIN": domain})
    )


def test_secret_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file-secret\n")
    env = {k: v for k, v in GOOD_ENV.items() if k != "AUTHZ_SYNC_CLIENT_SECRET"}
    settings = load_settings(None, env | {"AUTHZ_SYNC_CLIENT_SECRET_FILE": str(secret_file)})
    assert settings.auth0.client_secret.reveal() == "from-file-secret"
    both = env | {
        "AUTHZ_SYNC_CLIENT_SECRET_FILE": str(secret_file),
        "AUTHZ_SYNC_CLIENT_SECRET": "x",
    }
    assert any("both set" in p for p in problems(**both))
    missing = env | {"AUTHZ_SYNC_CLIENT_SECRET_FILE": str(tmp_path / "nope")}
    assert any("cannot be read" in p for p in problems(**missing))


def test_warns_when_a_file_with_the_secret_is_readable_by_others(tmp_path):
    path = tmp_path / "authz.toml"
    path.write_text('[auth0]\nclient_secret = "in-file"\n')
    os.chmod(path, 0o644)
    env = {k: v for k, v in GOOD_ENV.items() if k != "AUTHZ_SYNC_CLIENT_SECRET"}
    settings = load_settings(path, env)
    assert "readable by others" in settings.warnings[0]
    assert "in-file" not in settings.warnings[0]


def test_database_urls_get_the_installed_drivers():
    env = GOOD_ENV | {"AUTHZ_SYNC_DATABASE_URL": "postgresql://u:pw@db.example/authz"}
    assert load_settings(None, env).database.url.startswith("postgresql+psycopg://")
    env = GOOD_ENV | {"AUTHZ_SYNC_DATABASE_URL": "mysql://u@db.example/authz"}
    url = load_settings(None, env).database.url
    assert url.startswith("mysql+pymysql://")
    assert url.endswith("?charset=utf8mb4")
    env = GOOD_ENV | {"AUTHZ_SYNC_DATABASE_URL": "oracle2://u@x/y"}
    assert any("unknown database kind" in p for p in problems(**env))


def test_missing_file_and_invalid_toml(tmp_path):
    assert "does not exist" in problems(tmp_path / "missing.toml")[0]
    broken = tmp_path / "broken.toml"
    broken.write_text("[auth0\n")
    assert "is not valid TOML" in problems(broken)[0]


def test_cli_reports_config_errors_one_per_line_with_exit_2(tmp_path, monkeypatch):
    from sync.cli import main

    for name in list(os.environ):
        if name.startswith("AUTHZ_SYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run"], env={"AUTHZ_SYNC_CLIENT_SECRET": "hunter2"})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "Error: auth0.domain is not set: add it to the config file or set AUTHZ_SYNC_AUTH0_DOMAIN",
        "Error: auth0.client_id is not set: add it to the config file or set AUTHZ_SYNC_CLIENT_ID",
        "Error: extension.url is not set: add it to the config file or set "
        "AUTHZ_SYNC_EXTENSION_URL",
    ]
    assert not list(tmp_path.iterdir()), "a config error must not create a database"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUTHZ_SYNC_SAFEGUARD_MAX_DELETES", "abc", "safeguard.max_deletes must be a whole number"),
        ("AUTHZ_SYNC_SAFEGUARD_ALLOW_DELETES", "maybe", "must be true or false"),
        ("AUTHZ_SYNC_SAFEGUARD_MAX_DELETE_PERCENT", "200", "must be between 0 and 100"),
    ],
)
def test_bad_safeguard_settings_are_config_errors(variable, value, message):
    assert any(message in p for p in problems(**GOOD_ENV | {variable: value}))


def test_per_table_limits_are_checked(tmp_path):
    path = tmp_path / "limits.toml"
    path.write_text(
        "[safeguard.tables.authz_users]\nmax_deletes = -1\n"
        "[safeguard.tables.authz_nope]\nmax_deletes = 5\n"
    )
    found = "\n".join(problems(path, **GOOD_ENV))
    assert "safeguard.tables.authz_users: max_deletes must be a whole number" in found
    assert "safeguard.tables.authz_nope: unknown table" in found
    path.write_text("[safeguard.tables.authz_users]\nmax_deletes = 5000\n")
    limits = load_settings(path, GOOD_ENV).safeguard
    assert limits.limit("authz_users").max_deletes == 5000
    assert limits.limit("authz_groups").max_deletes == 500


def test_an_empty_or_binary_secret_file_and_a_bad_ca_bundle(tmp_path):
    env = {k: v for k, v in GOOD_ENV.items() if k != "AUTHZ_SYNC_CLIENT_SECRET"}
    empty, binary, bundle = tmp_path / "empty", tmp_path / "binary", tmp_path / "ca.pem"
    empty.write_text("\n")
    binary.write_bytes(b"\xff\xfe\x00")
    bundle.write_text("not a certificate")
    assert any(
        "is empty" in p for p in problems(**env | {"AUTHZ_SYNC_CLIENT_SECRET_FILE": str(empty)})
    )
    assert any(
        "not UTF-8" in p for p in problems(**env | {"AUTHZ_SYNC_CLIENT_SECRET_FILE": str(binary)})
    )
    assert any(
        "holds no PEM certificate" in p
        for p in problems(**GOOD_ENV | {"AUTHZ_SYNC_EXTENSION_CA_BUNDLE": str(bundle)})
    )


def test_database_schema_from_the_file_or_the_environment(tmp_path):
    postgresql = GOOD_ENV | {"AUTHZ_SYNC_DATABASE_URL": "postgresql://u@db.example/authz"}
    assert load_settings(None, postgresql).database.schema is None
    env = postgresql | {"AUTHZ_SYNC_DATABASE_SCHEMA": "tenant_prod"}
    assert load_settings(None, env).database.schema == "tenant_prod"
    path = tmp_path / "authz.toml"
    path.write_text('[database]\nurl = "postgresql://u@db.example/authz"\nschema = "eu_2"\n')
    assert load_settings(path, GOOD_ENV).database.schema == "eu_2"
    assert load_database_settings(path, {}) == DatabaseSettings(
        load_settings(path, GOOD_ENV).database.url, "eu_2"
    )


@pytest.mark.parametrize("name", ["Tenant", "tenant-prod", "1st", "pg_tenant", "a" * 64, ""])
def test_a_database_schema_must_be_a_plain_postgresql_name(tmp_path, name):
    path = tmp_path / "authz.toml"
    path.write_text(f'[database]\nurl = "postgresql://u@db.example/authz"\nschema = "{name}"\n')
    (problem,) = problems(path, **GOOD_ENV)
    assert problem.startswith("database.schema must be a PostgreSQL schema name of lowercase")


def test_a_database_schema_is_refused_outside_postgresql():
    sqlite = GOOD_ENV | {"AUTHZ_SYNC_DATABASE_SCHEMA": "tenant_prod"}
    (problem,) = problems(**sqlite)
    assert problem.startswith("database.schema is for PostgreSQL only: SQLite has no schemas")
    mysql = sqlite | {"AUTHZ_SYNC_DATABASE_URL": "mysql://u@db.example/authz"}
    (problem,) = problems(**mysql)
    assert "in MySQL/MariaDB a schema is a database" in problem
    assert "database.url" in problem
    with pytest.raises(ConfigError, match="for PostgreSQL only"):
        load_database_settings(None, {"AUTHZ_SYNC_DATABASE_SCHEMA": "tenant_prod"})


def test_warns_when_the_secret_file_is_readable_by_others(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file-secret\n")
    env = {k: v for k, v in GOOD_ENV.items() if k != "AUTHZ_SYNC_CLIENT_SECRET"}
    env["AUTHZ_SYNC_CLIENT_SECRET_FILE"] = str(secret_file)
    os.chmod(secret_file, 0o644)
    (warning,) = load_settings(None, env).warnings
    assert f"auth0.client_secret_file {secret_file} is readable by others" in warning
    assert "chmod 600" in warning and "from-file-secret" not in warning
    os.chmod(secret_file, 0o640)
    assert len(load_settings(None, env).warnings) == 1  # the group counts as others
    os.chmod(secret_file, 0o600)
    assert load_settings(None, env).warnings == ()
