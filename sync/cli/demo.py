"""`authz-sync demo` and `authz-sync simulate`: the built-in simulator, for trying and testing."""

from __future__ import annotations

import sys
from typing import Any

import click

from sync.cli.common import logging_options, progress_bars, reports_errors
from sync.cli.report import summary_table
from sync.config import (
    USER_SOURCES,
    Auth0Settings,
    DatabaseSettings,
    ExtensionSettings,
    Safeguard,
    Secret,
    Settings,
    UserSourceSettings,
    normalize_database_url,
)
from sync.runner.run import run_sync
from sync.simulator import Simulator, generate_tenant
from sync.sql import queries
from sync.sql.engine import database_errors, engine_for, redacted
from sync.sql.revisions import upgrade

DEMO_DATABASE = "sqlite:///authz-sync-demo.db"


PORT, SECONDS = click.IntRange(0, 65535), click.FloatRange(min=0)
SIZE = {"type": click.IntRange(min=0), "show_default": True}  # a count: 0 or more


def tenant_options(command):
    for option in reversed(
        [
            click.option("--users", default=1500, **SIZE, help="Users in the tenant."),
            click.option("--groups", default=60, **SIZE, help="Groups."),
            click.option("--memberships", default=3000, **SIZE, help="Memberships."),
            click.option("--roles", default=12, **SIZE, help="Roles."),
            click.option("--permissions", default=30, **SIZE, help="Permissions."),
            click.option("--seed", default=0, show_default=True, help="Seed of the generator."),
        ]
    ):
        command = option(command)
    return command


def _tenant(users, groups, memberships, roles, permissions, seed):
    return generate_tenant(
        users=users,
        groups=groups,
        memberships=memberships,
        roles=roles,
        permissions=permissions,
        seed=seed,
    )


def simulator_settings(sim: Simulator, database_url: str, **options: Any) -> Settings:
    """Settings that point a run at a running simulator."""
    return Settings(
        auth0=Auth0Settings(sim.url, sim.client_id, Secret(sim.client_secret)),
        extension=ExtensionSettings(sim.api_url),
        database=DatabaseSettings(normalize_database_url(database_url)),
        **options,
    )


@click.command()
@click.option(
    "--database-url",
    default=DEMO_DATABASE,
    show_default=True,
    help="Where to write (a SQLAlchemy URL); the demo ignores AUTHZ_SYNC_DATABASE_URL on purpose.",
)
@click.option(
    "--users-source",
    type=click.Choice(USER_SOURCES),
    default="auto",
    show_default=True,
    help="How the run reads users: Auth0's export job (the simulator grants the Management "
    "API), the extension's /api/users windows, or auto (the export job when granted).",
)
@tenant_options
@logging_options
@reports_errors
def demo(database_url: str, users_source: str, **tenant_size: int) -> None:
    """Sync a simulated tenant into a local SQLite file and query it.

    Starts the built-in simulator on 127.0.0.1, runs a full sync against it over HTTP exactly as
    `authz-sync run` does against a real tenant, prints what was written and then answers, with
    SQL, the question this project exists for: one user's groups with their descriptions.
    """
    # The simulator grants the Management API only when the export job is asked for, so that
    # the default demo shows the windows the extension pages through.
    scopes = None if users_source != "export" else ("read:users",)
    with Simulator(_tenant(**tenant_size), management_scopes=scopes) as sim:
        # The demo's own file: another --users replaces the tenant, so deletes are expected.
        settings = simulator_settings(
            sim,
            database_url,
            safeguard=Safeguard(allow_deletes=True),
            users=UserSourceSettings(users_source, export_poll_interval=0.2),
        )
        click.echo(f"simulator: {tenant_size['users']} users on {sim.api_url}")
        _upgrade(settings)  # the demo's own file: migrate it rather than refuse it
        with progress_bars() as progress:
            report = run_sync(settings, progress=progress)
    click.echo(f"database: {redacted(settings.database.url)}\n")
    click.echo(summary_table(report))
    click.echo(
        f"\nrun {report.run_id}: {report.api_requests} API requests, {report.seconds:.1f} s, "
        f"{len(report.warnings)} dangling references left out; "
        f"{report.users_source.description if report.users_source else 'no users read'}"
    )
    click.echo(_user_groups(settings))


def _upgrade(settings: Settings) -> None:
    engine = engine_for(settings.database)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _user_groups(settings: Settings) -> str:
    engine = engine_for(settings.database)
    try:
        with database_errors(engine), engine.connect() as connection:
            busiest = queries.busiest_user_groups(connection)
    finally:
        engine.dispose()
    if busiest is None:  # a tenant without users or without members
        return "\nno user is in any group: no user's groups to show"
    user_id, name, rows = busiest
    lines = [f"\nThe groups of {name} ({user_id}), by SQL:\n", queries.USER_GROUPS_SQL, ""]
    for group_name, description in rows:
        lines.append(
            f"  {group_name} — {_short(description)}" if description else f"  {group_name}"
        )
    return "\n".join(lines)


def _short(description: str | None, width: int = 70) -> str:
    text_ = (description or "").replace("\n", " ")
    return text_ if len(text_) <= width else text_[: width - 1] + "…"


@click.command()
@click.option("--port", type=PORT, default=8080, help="Port on 127.0.0.1 (default 8080; 0: any).")
@click.option("--latency", type=SECONDS, default=0.0, help="Seconds added to each answer.")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second before 429s (default: none).",
)
@click.option("--client-id", default="authz-sync-demo", show_default=True)
@click.option("--client-secret", default="demo-secret", show_default=True)
@tenant_options
@logging_options
@reports_errors
def simulate(port, latency, rate_limit, client_id, client_secret, **tenant_size) -> None:
    """Serve a simulated extension and Auth0 token endpoint on 127.0.0.1 until Ctrl-C.

    It answers like the real API (paging quirks, the 1000-result cap, scopes, error bodies) and
    serves the rows a correct sync must produce at /_sim/truth.
    """
    sim = Simulator(
        _tenant(**tenant_size),
        client_id=client_id,
        client_secret=client_secret,
        latency=latency,
        rate_limit=rate_limit,
        port=port,
    )
    try:
        sim.start()
    except OSError as error:  # in use, or not ours to bind
        raise click.BadParameter(
            f"cannot serve on 127.0.0.1 port {port}: {error.strerror}; choose another port, "
            f"or --port 0 for any free one",
            param_hint="'--port'",
        ) from None
    click.echo(
        f"simulator: {tenant_size['users']} users on {sim.url}; point authz-sync at it:\n"
        f"  export AUTHZ_SYNC_AUTH0_DOMAIN={sim.url}\n"
        f"  export AUTHZ_SYNC_EXTENSION_URL={sim.api_url}\n"
        f"  export AUTHZ_SYNC_CLIENT_ID={client_id}\n"
        f"  export AUTHZ_SYNC_CLIENT_SECRET={client_secret}\n"
        f"ground truth: {sim.url}/_sim/truth — Ctrl-C stops"
    )
    sys.stdout.flush()  # a script reading our output must see the address now
    sim.serve_forever()
