"""One run's writes, in the caller's transaction: plan → safeguard → change log → history → rows.

`plan_run` writes only temporary tables (or, inside a run, empty tables), so a dry run shares
it; `apply_run` writes what a plan says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection, Table, func, literal, select

from . import schema
from .effective import stage_effective
from .fingerprint import UNKNOWN, Fingerprints
from .history import write_changes, write_history
from .ledger import LastSuccess, last_success, utcnow
from .progress import NO_PROGRESS, Progress
from .safeguard import Safeguard, check_deletes
from .staging import StagedTable, UnchangedPlan
from .transform import TableRows

log = logging.getLogger(__name__)

# What effective.py derives the effective tables from.
EFFECTIVE_INPUTS = (
    schema.group_members.name,
    schema.group_nesting.name,
    schema.group_roles.name,
    schema.role_permissions.name,
    schema.role_users.name,
)


def plan_run(
    connection: Connection,
    rows: TableRows,
    users: StagedTable | UnchangedPlan,
    *,
    writing: bool = False,
    fingerprints: Fingerprints = UNKNOWN,
) -> dict:
    """Every synced and effective table's plan: staged, flagged and compared in SQL.

    `users` is the run's staged users, or (an import of groups and roles only) an
    UnchangedPlan: the users stay as stored, and members are flagged against them.
    Tables that `fingerprints` show unchanged since the last successful run are neither
    staged nor compared (fingerprint.py); pass none to compare everything.
    Writes temporary tables only, unless `writing` (inside the run's write transaction): then
    a table that is empty is loaded directly, as there is nothing to compare it with.
    """

    def stage(name: str, keys: tuple[str, ...]) -> StagedTable:
        table = schema.metadata.tables[name]
        direct = writing and _is_empty(connection, table)
        return StagedTable(connection, table, keys, into_empty_table=direct)

    last = last_success(connection)
    unchanged = _unchanged_tables(connection, last, fingerprints) if last else {}
    if unchanged:
        log.info(
            "%d of %d tables not compared: read exactly as at the last successful run, and "
            "holding as many rows as it left (run --compare-all compares them anyway)",
            len(unchanged),
            len(schema.SYNCED_TABLES),
        )
    staged = {
        name: stage(name, keys)
        for name, keys in schema.SYNCED_TABLES.items()
        if name != schema.users.name and name not in unchanged
    }
    for name, table in staged.items():
        # Distinct by construction: build_rows refuses or collapses every repeated key.
        table.add_all(rows.rows(name), distinct=True)
    users_table = users.twin if isinstance(users, StagedTable) else schema.users
    for name in (schema.group_members.name, schema.role_users.name):
        if name in staged:
            staged[name].mark_orphans(users_table)
    plans = {}
    for name in schema.SYNCED_TABLES:
        if name in unchanged:
            plans[name] = unchanged[name]
        elif name in staged:
            plans[name] = staged[name].plan()
        else:  # the users, staged as they were read (or kept as stored)
            plans[name] = users.plan() if isinstance(users, StagedTable) else users
    # The effective tables are a function of the link tables alone (user details and names do
    # not matter), written with them in one transaction: when no link changed and they still
    # hold what the last successful run wrote (not so right after an upgrade created them, or
    # after hands touched them), nothing changed here. Skipping their derivation and comparison
    # makes a no-op run, or a nightly run where only logins moved, several times cheaper.
    if last and not any(plans[name].changed for name in EFFECTIVE_INPUTS):
        stored = _counts(connection, schema.EFFECTIVE_TABLES)
        if all(last.counts.get(name) == count for name, count in stored.items()):
            return plans | {name: _unchanged(name, count) for name, count in stored.items()}
    role_permissions = staged.get(schema.role_permissions.name)
    if role_permissions is None:  # not compared, but the effective tables need its twin
        name = schema.role_permissions.name
        role_permissions = stage(name, schema.SYNCED_TABLES[name])
        role_permissions.add_all(rows.rows(name), distinct=True)
    effective = stage_effective(rows, role_permissions, stage)
    return plans | {name: table.plan() for name, table in effective.items()}


def _unchanged_tables(
    connection: Connection, last: LastSuccess, fingerprints: Fingerprints
) -> dict[str, UnchangedPlan]:
    """The synced tables that need no comparison: what they are made of was read exactly as
    the last successful run read it, and the table still holds as many rows as that run left."""
    names = _same_source(last, fingerprints)
    return {
        name: _unchanged(name, count)
        for name, count in _counts(connection, names).items()
        if count == last.counts.get(name)
    }


def _same_source(last: LastSuccess, fingerprints: Fingerprints) -> list[str]:
    """The synced tables whose source was read exactly as the last successful run read it."""
    previous = last.fingerprints
    same_authz = fingerprints.same_authz(previous)
    same = {
        schema.users.name: fingerprints.same_users(previous),
        # A member's is_orphan flag also depends on which users exist.
        schema.group_members.name: same_authz and fingerprints.same_user_ids(previous),
        schema.role_users.name: same_authz and fingerprints.same_user_ids(previous),
    }
    return [name for name in schema.SYNCED_TABLES if same.get(name, same_authz)]


def repaired_tables(connection: Connection, fingerprints: Fingerprints) -> set[str]:
    """The tables in which any change is a repair: their source answered exactly as at the
    last successful run, which left them equal to it, so what differs now was changed by hand
    (found by --compare-all, or by a row count that no longer matches)."""
    last = last_success(connection)
    return set(_same_source(last, fingerprints)) if last else set()


def _is_empty(connection: Connection, table: Table) -> bool:
    return connection.scalar(select(literal(1)).select_from(table).limit(1)) is None


def _counts(connection: Connection, names: Iterable[str]) -> dict[str, int]:
    return {
        name: connection.scalar(select(func.count()).select_from(schema.metadata.tables[name]))
        for name in names
    }


def _unchanged(name: str, rows: int) -> UnchangedPlan:
    keys = schema.SYNCED_TABLES.get(name) or schema.EFFECTIVE_TABLES[name]
    return UnchangedPlan.holding(schema.metadata.tables[name], keys, rows)


def apply_run(
    connection: Connection,
    plans: dict,
    safeguard: Safeguard,
    run_id: int,
    progress: Progress = NO_PROGRESS,
    fingerprints: Fingerprints = UNKNOWN,
) -> int:
    """Write the plans (after the safeguard agrees); returns the number of changes logged.

    `fingerprints` (what this run read) tell which changes are repairs of hand edits rather
    than changes of the tenant (authz_changes.cause). The "write" progress counts rows written
    out of the rows to write, table by table.
    """
    check_deletes({name: plans[name] for name in schema.SYNCED_TABLES}, safeguard)
    repairs = repaired_tables(connection, fingerprints)
    now = utcnow()
    total, done = sum(_writes(plan) for plan in plans.values()), 0
    progress.update("write", done, total, "change log and history")
    # The change log and the history read the difference, so they come before the writes.
    logged = write_changes(connection, plans, run_id, now, repairs)
    write_history(connection, plans, run_id, now)
    for name, plan in plans.items():
        progress.update("write", done, total, name)
        plan.write(connection, now)
        done += _writes(plan)
    # The summary line counts the copied tables only: name both parts of the bar's count.
    copied = sum(_writes(plans[name]) for name in schema.SYNCED_TABLES)
    progress.update(
        "write", done, total, f"{copied:,} copied + {total - copied:,} effective access"
    )
    return logged


def _writes(plan) -> int:
    return plan.count.inserted + plan.count.updated + plan.count.deleted
