"""The delete safeguard's rules, table by table."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Table

from sync.config import DeleteLimit, Safeguard
from sync.errors import DeleteGuardError
from sync.model import TableCount
from sync.sql import schema
from sync.sql.safeguard import check_deletes


@dataclass
class Plan:
    """What the safeguard reads of a plan (staging.StagedPlan has the same)."""

    table: Table
    keys: tuple[str, ...]
    deletes: list[dict]
    count: TableCount
    rows_before: int

    def deleted_rows(self, limit: int | None = None) -> list[dict]:
        return self.deletes[:limit]


def plan(table: str, before: int, deleted: int, fetched: int | None = None) -> Plan:
    keys = schema.SYNCED_TABLES[table]
    deletes = [{k: f"{k}-{i:03d}" for k in keys} for i in range(deleted)]
    fetched = before - deleted if fetched is None else fetched
    count = TableCount(fetched=fetched, deleted=deleted)
    return Plan(schema.metadata.tables[table], keys, deletes, count, rows_before=before)


def check(*plans: Plan, **options) -> None:
    check_deletes({p.table.name: p for p in plans}, Safeguard(**options))


@pytest.mark.parametrize(
    ("before", "deleted", "refused"),
    [
        (10_000, 500, False),  # at the count limit
        (10_000, 501, True),  # past it
        (100, 30, False),  # 30% is allowed
        (100, 31, True),  # 31% is not
        (20, 9, False),  # 45%, but fewer than 10 rows: ordinary churn
        (20, 10, True),  # 50% and 10 rows
        (0, 0, False),
    ],
)
def test_count_and_percentage_limits(before, deleted, refused):
    subject = plan("authz_group_members", before, deleted)
    if refused:
        with pytest.raises(DeleteGuardError, match="refusing to delete"):
            check(subject)
    else:
        check(subject)


def test_an_empty_entity_table_is_refused_even_when_tiny():
    with pytest.raises(DeleteGuardError, match="the extension answered none at all") as caught:
        check(plan("authz_roles", before=2, deleted=2, fetched=0))
    assert caught.value.exit_code == 3
    assert "rerun with --allow-deletes" in str(caught.value)


def test_allow_deletes_and_per_table_limits():
    check(plan("authz_users", 1000, 1000, fetched=0), allow_deletes=True)
    roomy = {"authz_users": DeleteLimit(max_deletes=5000, max_delete_percent=100)}
    check(plan("authz_users", 10_000, 4000), per_table=roomy)
    with pytest.raises(DeleteGuardError, match="authz_group_members"):
        check(plan("authz_users", 10_000, 4000), plan("authz_group_members", 10_000, 600),
              per_table=roomy)  # fmt: skip


def test_every_refused_table_is_listed_with_a_sorted_sample():
    with pytest.raises(DeleteGuardError) as caught:
        check(plan("authz_groups", 1000, 600), plan("authz_roles", 100, 50))
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert (
        "e.g. group_id-000, group_id-001, group_id-002, group_id-003, group_id-004 and 595 more"
        in lines[0]
    )
