"""Planning a run: every table's new rows staged and compared with the table, in SQL.

`plan_run` writes only temporary tables (or, inside a run's write transaction, tables that are
empty), so a dry run plans exactly like a run. Tables whose source answered exactly as at the
last successful run, and which still hold as many rows as it left, are neither staged nor
compared (fingerprint.py). The plans say what apply.py will write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, literal, select

from sync import model
from sync.model import UNKNOWN, Fingerprints, LastSuccess
from sync.sql import schema
from sync.sql.effective import EffectiveLinks, stage_effective_sql
from sync.sql.twins import Plan, StagedTable, UnchangedPlan
from sync.transform import TableRows

log = logging.getLogger(__name__)

# What effective.py derives the effective tables from.
EFFECTIVE_INPUTS = (
    model.GROUP_MEMBERS,
    model.GROUP_NESTING,
    model.GROUP_ROLES,
    model.ROLE_PERMISSIONS,
    model.ROLE_USERS,
)
MEMBER_TABLES = (model.GROUP_MEMBERS, model.ROLE_USERS)  # flagged is_orphan against the users

Stage = Callable[[str], StagedTable]


@dataclass(frozen=True)
class RunUsers:
    """This run's users: staged in a twin as they were read, or — a source without users, such
    as an export file — the stored ones, kept as they are."""

    staged: StagedTable | None

    @property
    def table(self) -> Table:
        """Where they are, for flagging orphan members."""
        return self.staged.twin if self.staged else schema.users

    def plan(self, connection: Connection) -> Plan:
        if self.staged:
            return self.staged.plan()
        return unchanged_plan(model.USERS, _count(connection, schema.users))


def plan_run(
    connection: Connection,
    rows: TableRows,
    users: RunUsers,
    last: LastSuccess | None,
    *,
    fingerprints: Fingerprints = UNKNOWN,
    writing: bool = False,
) -> dict[str, Plan]:
    """Every synced and effective table's plan, by name. `writing`: inside the run's write
    transaction, a table that is empty is loaded directly, as there is nothing to compare."""
    stage = _stager(connection, writing)
    unchanged = _unchanged_tables(connection, last, fingerprints)
    staged = {
        name: _staged_rows(stage, rows, name)
        for name in model.SYNCED_TABLES
        if name != model.USERS and name not in unchanged
    }
    for name in MEMBER_TABLES:
        if name in staged:
            staged[name].mark_orphans(users.table)
    planned = unchanged | {name: table.plan() for name, table in staged.items()}
    if model.USERS not in planned:
        planned[model.USERS] = users.plan(connection)
    plans = {name: planned[name] for name in model.SYNCED_TABLES}  # in the order they apply
    return plans | _effective_plans(connection, plans, staged, last, stage)


def _stager(connection: Connection, writing: bool) -> Stage:
    def stage(name: str) -> StagedTable:
        table = schema.metadata.tables[name]
        direct = writing and _is_empty(connection, table)
        return StagedTable(connection, table, model.keys_of(name), into_empty_table=direct)

    return stage


def _staged_rows(stage: Stage, rows: TableRows, name: str) -> StagedTable:
    staged = stage(name)
    # Distinct by construction: build_rows refuses or collapses every repeated key.
    staged.add_all(rows.rows(name), distinct=True)
    return staged


def _unchanged_tables(
    connection: Connection, last: LastSuccess | None, fingerprints: Fingerprints
) -> dict[str, UnchangedPlan]:
    """The synced tables that need no comparison: what they are made of was read exactly as
    the last successful run read it, and the table still holds as many rows as that run left."""
    if last is None:
        return {}
    unchanged = {
        name: unchanged_plan(name, count)
        for name, count in _counts(connection, _same_source(last, fingerprints)).items()
        if count == last.counts.get(name)
    }
    if unchanged:
        log.info(
            "%d of %d tables not compared: read exactly as at the last successful run, and "
            "holding as many rows as it left (run --compare-all compares them anyway)",
            len(unchanged),
            len(model.SYNCED_TABLES),
        )
    return unchanged


def _same_source(last: LastSuccess, fingerprints: Fingerprints) -> list[str]:
    """The synced tables whose source was read exactly as the last successful run read it."""
    previous = last.fingerprints
    same_authz = fingerprints.same_authz(previous)
    # A member's is_orphan flag also depends on which users exist.
    same_members = same_authz and fingerprints.same_user_ids(previous)
    same = {model.USERS: fingerprints.same_users(previous)}
    same |= {name: same_members for name in MEMBER_TABLES}
    return [name for name in model.SYNCED_TABLES if same.get(name, same_authz)]


def repaired_tables(last: LastSuccess | None, fingerprints: Fingerprints) -> set[str]:
    """The tables in which any change is a repair: their source answered exactly as at the
    last successful run, which left them equal to it, so what differs now was changed by hand
    (found by --compare-all, or by a row count that no longer matches)."""
    return set(_same_source(last, fingerprints)) if last else set()


def _effective_plans(connection, plans, staged, last, stage: Stage) -> dict[str, Plan]:
    """The effective tables are a function of the link tables alone (user details and names do
    not matter), written with them in one transaction: when no link changed and they still
    hold what the last successful run wrote (not so right after an upgrade created them, or
    after hands touched them), nothing changed here. Skipping their derivation and comparison
    makes a no-op run, or a nightly run where only logins moved, several times cheaper."""
    if last and not any(plans[name].changed for name in EFFECTIVE_INPUTS):
        stored = _counts(connection, model.EFFECTIVE_TABLES)
        if all(last.counts.get(name) == count for name, count in stored.items()):
            return {name: unchanged_plan(name, count) for name, count in stored.items()}
    # Derived in SQL from the tables that hold this run's links: the staged twins, or, for a
    # table read unchanged, the table itself (it holds exactly what was read).
    links = EffectiveLinks.of({name: table.twin for name, table in staged.items()})
    effective = stage_effective_sql(connection, links, lambda name, _keys: stage(name))
    return {name: table.plan() for name, table in effective.items()}


def unchanged_plan(name: str, rows: int) -> UnchangedPlan:
    return UnchangedPlan.holding(schema.metadata.tables[name], model.keys_of(name), rows)


def _is_empty(connection: Connection, table: Table) -> bool:
    return connection.scalar(select(literal(1)).select_from(table).limit(1)) is None


def _count(connection: Connection, table: Table) -> int:
    return connection.scalar(select(func.count()).select_from(table))


def _counts(connection: Connection, names: Iterable[str]) -> dict[str, int]:
    return {name: _count(connection, schema.metadata.tables[name]) for name in names}
