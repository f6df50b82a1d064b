"""`authz-sync import FILE` on SQLite, PostgreSQL and MariaDB: an export fetched from the simulator
over HTTP (`GET /api/configuration/export`, as an operator would) and saved to a file goes through
the same path as `run`. Groups, roles, permissions and links must equal the simulator's ground
truth, the users must stay exactly as they were, and bad files, mass deletes and a held run lock
must be refused with the documented exit code and one line."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import httpx
import pytest
from e2e import (
    assert_synced,
    assert_tables_equal,
    authz_sync,
    command_env,
    ledger,
    read_tables,
    sorted_truth,
)
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import make_url

from sync.simulator import Simulator, ground_truth
from sync.sql import schema
from sync.sql.engine import open_engine, redacted
from sync.sql.lock import run_lock

SIZE = {"users": 300, "groups": 30, "memberships": 700, "roles": 8, "permissions": 16}
SUMMARY = re.compile(
    r"run (\d+) succeeded in [\d.]+ s: (\d+) users, (\d+) groups, \d+ memberships; "
    r"(\d+) inserted, (\d+) updated, (\d+) deleted; 0 API requests"
    r"(; \d+ warnings \(-v lists them\))?\n"
)
HOW_TO_GET_ONE = "give the file the extension's Export button saves"
pytestmark = pytest.mark.tenant(**SIZE)


def save_export(sim: Simulator, path: Path) -> Path:
    """The extension's export, fetched with a client-credentials token and saved as answered."""
    grant = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "audience": "urn:auth0-authz-api",
    }
    token = httpx.post(f"{sim.url}/oauth/token", json=grant).raise_for_status().json()
    answer = httpx.get(
        f"{sim.api_url}/configuration/export",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    ).raise_for_status()
    path.write_bytes(answer.content)
    return path


def import_env(database_url, **overrides: str) -> dict[str, str]:
    """Only the database: an import needs no Auth0 or extension settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_SYNC_")}
    return env | {"AUTHZ_SYNC_DATABASE_URL": database_url.render_as_string(False)} | overrides


def import_file(path: Path, database_url, *options: str, **env: str):
    return authz_sync("import", *options, str(path), env=import_env(database_url, **env))


def edit(path: Path, change) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def all_rows(database_url, *names: str) -> dict[str, list]:
    """Whole rows, bookkeeping (changed_at, valid_from) included, sorted."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                name: sorted(map(repr, connection.execute(select(schema.metadata.tables[name]))))
                for name in names
            }
    finally:
        engine.dispose()


def changes_of_run(database_url, run_id: int) -> list[dict]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(schema.changes).where(schema.changes.c.run_id == run_id)
            return [dict(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()


def test_import_loads_the_export_and_keeps_the_users(sim, tenant, database_url, tmp_path):
    assert authz_sync("run", env=command_env(sim, database_url)).exit_code == 0
    users_before = all_rows(database_url, schema.users.name)

    # The extension changes after the run; its users (never in an export) do not.
    tenant.groups[0]["description"] = "Imported 📦 from a file"
    tenant.groups.pop(7)
    tenant.groups[1]["members"] = [*tenant.groups[1]["members"], "auth0|only-in-the-export"]
    new_permission = {"_id": str(uuid.uuid4()), "name": "export:read", "description": "Ŝ"}
    tenant.permissions.append(new_permission | {"applicationType": "client"})
    tenant.roles[0]["permissions"] = [
        *tenant.roles[0].get("permissions", []),
        new_permission["_id"],
    ]
    export = save_export(sim, tmp_path / "export.json")
    requests_before = len(sim.requests)

    result = import_file(export, database_url)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    summary = SUMMARY.fullmatch(result.stdout)
    assert summary, result.stdout
    assert summary.group(1, 2, 3) == ("2", "300", "29")
    assert len(sim.requests) == requests_before  # the file, not the API

    # Orphans are judged against the stored users: the new member is one, the others are not.
    assert_synced(database_url, tenant)
    assert all_rows(database_url, schema.users.name) == users_before

    last = ledger(database_url)[-1]
    digest = hashlib.sha256(export.read_bytes()).hexdigest()[:16]
    assert last["source"] == f"file:export.json sha256:{digest}"
    assert (last["status"], last["exit_code"], last["api_requests"]) == ("succeeded", 0, 0)
    assert last["counts"][schema.users.name] == {
        "fetched": 300,
        "inserted": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 300,
    }
    assert last["rows_inserted"] > 0 and last["rows_deleted"] > 0
    assert {c["entity"] for c in changes_of_run(database_url, last["run_id"])} == {
        "group",
        "permission",
    }

    # The derived tables are what `run` derives from the same tenant.
    reference = make_url(f"sqlite:///{tmp_path / 'reference.db'}")
    assert authz_sync("run", env=command_env(sim, reference)).exit_code == 0
    effective = [name for name in schema.EFFECTIVE_TABLES]
    assert all_rows(database_url, *effective) == all_rows(reference, *effective)


def test_a_second_import_and_a_run_after_it_change_nothing(sim, database_url, tmp_path):
    env = command_env(sim, database_url)
    assert authz_sync("run", env=env).exit_code == 0
    export = save_export(sim, tmp_path / "export.json")
    for _ in range(2):  # the export is what the run wrote: nothing to change, twice
        result = import_file(export, database_url)
        assert result.exit_code == 0, result.output
        assert SUMMARY.fullmatch(result.stdout).group(4, 5, 6) == ("0", "0", "0")
    after = authz_sync("run", env=env)
    assert after.exit_code == 0, after.output
    assert "0 inserted, 0 updated, 0 deleted" in after.stdout
    runs = ledger(database_url)
    assert [run["status"] for run in runs] == ["succeeded"] * 4
    assert all(
        run["rows_inserted"] + run["rows_updated"] + run["rows_deleted"] == 0 for run in runs[1:]
    )
    assert not any(changes_of_run(database_url, run["run_id"]) for run in runs[1:])


def test_a_changed_file_is_recorded_in_the_change_log_and_history(sim, database_url, tmp_path):
    assert authz_sync("run", env=command_env(sim, database_url)).exit_code == 0
    export = save_export(sim, tmp_path / "export.json")
    assert import_file(export, database_url).exit_code == 0
    document = json.loads(export.read_text(encoding="utf-8"))
    group = next(g for g in document["groups"] if len(g["members"]) >= 2)
    left, role = group["members"][0], document["roles"][0]
    user = next(u for u in sim.tenant.users if u not in role.get("users", []))

    def change(doc):
        found = next(g for g in doc["groups"] if g["_id"] == group["_id"])
        found["name"] = "Renamed in the file ✍️"
        found["members"] = [m for m in found["members"] if m != left]
        doc["roles"][0]["users"] = [*doc["roles"][0].get("users", []), user]

    edit(export, change)
    result = import_file(export, database_url)
    assert result.exit_code == 0, result.output
    assert SUMMARY.fullmatch(result.stdout).group(4, 5, 6) == ("1", "1", "1")
    run_id = ledger(database_url)[-1]["run_id"]

    (logged,) = changes_of_run(database_url, run_id)
    assert (logged["entity"], logged["entity_id"], logged["operation"]) == (
        "group",
        group["_id"],
        "update",
    )
    assert logged["old_values"] == {"name": group["name"]}
    assert logged["new_values"] == {"name": "Renamed in the file ✍️"}

    engine = create_engine(database_url)
    with engine.connect() as connection:
        members = schema.HISTORY_TABLES[schema.group_members.name]
        closed = connection.execute(
            select(members.c.group_id, members.c.user_id).where(members.c.valid_to_run_id == run_id)
        ).all()
        role_users = schema.HISTORY_TABLES[schema.role_users.name]
        opened = connection.execute(
            select(role_users.c.role_id, role_users.c.user_id).where(
                role_users.c.valid_from_run_id == run_id, role_users.c.valid_to.is_(None)
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in closed] == [(group["_id"], left)]
    assert [tuple(row) for row in opened] == [(role["_id"], user)]


def test_an_import_into_an_empty_database_flags_every_member_orphan(sim, tenant, tmp_path):
    url = make_url(f"sqlite:///{tmp_path / 'empty.db'}")
    export = save_export(sim, tmp_path / "export.json")
    result = import_file(export, url)
    assert result.exit_code == 0, result.output
    assert SUMMARY.fullmatch(result.stdout).group(2) == "0"
    tables = read_tables(url)
    truth = sorted_truth(ground_truth(tenant))
    for name in (schema.groups.name, schema.roles.name, schema.group_roles.name):
        assert tables[name] == truth[name]
    assert tables[schema.users.name] == []
    members = tables[schema.group_members.name]
    assert len(members) == len(truth[schema.group_members.name]) > 0
    assert all(row["is_orphan"] for row in members)


def test_dry_run_import_prints_the_diff_and_writes_nothing(sim, tenant, sqlite_url, tmp_path):
    assert authz_sync("run", env=command_env(sim, sqlite_url)).exit_code == 0
    export = save_export(sim, tmp_path / "export.json")
    unchanged = import_file(export, sqlite_url, "--dry-run")
    assert unchanged.exit_code == 0, unchanged.output
    assert "authz_users: 0 to insert, 0 to update, 0 to delete, 300 unchanged" in unchanged.stdout
    assert "dry run: no changes" in unchanged.stdout

    edit(export, lambda doc: doc["groups"][3].update(description="Dry 🏜️"))
    database = Path(sqlite_url.database)
    before = database.read_bytes()
    pending = import_file(export, sqlite_url, "--dry-run")
    assert pending.exit_code == 4, pending.output
    assert f"  ~ {tenant.groups[3]['_id']}: description: " in pending.stdout
    assert "dry run: changes pending" in pending.stdout
    assert database.read_bytes() == before
    assert len(ledger(sqlite_url)) == 1


def test_the_safeguard_refuses_a_file_that_would_delete_most_groups(sim, database_url, tmp_path):
    assert authz_sync("run", env=command_env(sim, database_url)).exit_code == 0
    before = read_tables(database_url)
    export = save_export(sim, tmp_path / "export.json")
    edit(export, lambda doc: doc.update(groups=doc["groups"][:5]))

    would = import_file(export, database_url, "--dry-run")
    assert would.exit_code == 3, would.output
    assert (
        "a run would stop: refusing to delete 25 of 30 rows (83%) of authz_groups" in would.stderr
    )

    refused = import_file(export, database_url)
    assert refused.exit_code == 3, refused.output
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("Error: refusing to delete 25 of 30 rows (83%) of authz_groups")
    assert all(line.startswith("Error: ") for line in lines)
    assert "rerun with --allow-deletes" in lines[-1]
    assert read_tables(database_url) == before
    assert (ledger(database_url)[-1]["status"], ledger(database_url)[-1]["exit_code"]) == (
        "failed",
        3,
    )

    allowed = import_file(export, database_url, "--allow-deletes")
    assert allowed.exit_code == 0, allowed.output
    assert len(read_tables(database_url)[schema.groups.name]) == 5


def _not_an_export(path: Path) -> None:
    path.write_text('{"groups": [], "total": 0}')  # what GET /api/groups answers


HINT = True  # the message ends with how to get a real export
BAD_FILES = {
    "missing": (None, 66, "cannot read the export file {path}: No such file or directory", False),
    "a directory": (lambda p: p.mkdir(), 66, "export file {path} is a directory: ", HINT),
    "empty": (lambda p: p.write_bytes(b""), 65, "{path} is empty: ", HINT),
    "not JSON": (
        lambda p: p.write_text('{"groups": ['),
        65,
        "{path} is not JSON (Expecting value at line 1, column 13): ",
        HINT,
    ),
    "not UTF-8": (
        lambda p: p.write_bytes(b'{"groups": "\xff"}'),
        65,
        "{path} is not UTF-8 JSON: ",
        HINT,
    ),
    "an array": (
        lambda p: p.write_text("[]"),
        65,
        "{path} holds a JSON array, not an export",
        HINT,
    ),
    "a list endpoint's answer": (
        _not_an_export,
        65,
        '{path} has no "roles" and "permissions" lists, so it is not a whole export',
        HINT,
    ),
    "groups not a list": (
        lambda p: p.write_text('{"groups": {}, "roles": [], "permissions": []}'),
        65,
        "{path}: 'groups' is a JSON object, not a list: ",
        HINT,
    ),
    "a non-GUID group id": (  # the records are checked by the rules of a run
        lambda p: p.write_text(
            '{"groups": [{"_id": "g1", "name": "G"}], "roles": [], "permissions": []}'
        ),
        65,
        "group 'g1': field '_id' is not a GUID",
        False,
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_is_refused_with_one_line_and_changes_nothing(case, sim, sqlite_url, tmp_path):
    make, code, message, hint = BAD_FILES[case]
    good = save_export(sim, tmp_path / "good.json")
    assert import_file(good, sqlite_url).exit_code == 0
    before = read_tables(sqlite_url)
    bad = tmp_path / "bad.json"
    if make:
        make(bad)
    result = import_file(bad, sqlite_url)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: " + message.format(path=bad)), lines
    assert (HOW_TO_GET_ONE in lines[0]) == hint
    assert read_tables(sqlite_url) == before
    runs = ledger(sqlite_url)
    if code == 66:  # refused before the database was touched: no ledger row
        assert len(runs) == 1
    else:  # bad data, recorded like a run's
        assert (len(runs), runs[-1]["status"], runs[-1]["exit_code"]) == (2, "failed", 65)
        assert runs[-1]["error"] == lines[0].removeprefix("Error: ")


def test_bad_settings_exit_2_before_the_file_or_the_database(tmp_path):
    url = make_url(f"sqlite:///{tmp_path / 'never.db'}")
    result = import_file(tmp_path / "missing.json", url, AUTHZ_SYNC_SAFEGUARD_MAX_DELETES="many")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: safeguard.max_deletes")
    assert not Path(url.database).exists()


def test_an_import_while_a_run_holds_the_database_exits_75(sim, database_url, tmp_path):
    export = save_export(sim, tmp_path / "export.json")
    engine = open_engine(database_url)
    try:
        with run_lock(engine, redacted(engine.url)):
            result = import_file(export, database_url)
    finally:
        engine.dispose()
    assert result.exit_code == 75, result.output
    assert result.stderr.startswith("WARNING sync: another authz-sync run is using ")
    assert import_file(export, database_url).exit_code == 0  # the lock went with its holder


def test_an_import_writes_into_the_configured_postgresql_schema(
    sim, tenant, postgresql_url, tmp_path
):
    env = command_env(sim, postgresql_url, AUTHZ_SYNC_DATABASE_SCHEMA="tenant_a")
    assert authz_sync("run", env=env).exit_code == 0
    users_before = read_tables(postgresql_url, "tenant_a")[schema.users.name]
    tenant.groups[0]["name"] = "Imported into tenant_a"
    export = save_export(sim, tmp_path / "export.json")

    result = import_file(export, postgresql_url, AUTHZ_SYNC_DATABASE_SCHEMA="tenant_a")
    assert result.exit_code == 0, result.output
    assert SUMMARY.fullmatch(result.stdout).group(4, 5, 6) == ("0", "1", "0")
    tables = read_tables(postgresql_url, "tenant_a")
    assert_tables_equal(tables, sorted_truth(ground_truth(tenant)))
    assert tables[schema.users.name] == users_before
    assert ledger(postgresql_url, "tenant_a")[-1]["source"].startswith("file:export.json ")
    engine = create_engine(postgresql_url)
    with engine.connect() as connection:  # nothing landed in the default schema
        assert not [n for n in inspect(connection).get_table_names() if n.startswith("authz_")]
    engine.dispose()
