"""The bookkeeping of backfills (authz_backfills) and the profiles they store (authz_user_details).

Progress is committed every checkpoint in the same transaction as the profiles it counts, so a
killed backfill resumes with the first user it had not committed. What is still to do is always
asked of the database (synced users without a profile of this backfill), never remembered: the
per-user path walks that list in id order, the export path asks it of each slice of the file,
so a resume skips what was committed whatever order the file came in.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update

from sync.sql import schema
from sync.sql.bulk import upsert_statement
from sync.sql.ledger import utcnow

USER_DETAILS = "user-details"


def start(engine: Engine, kind: str, restart: bool) -> tuple[int, bool]:
    """The unfinished backfill of `kind` to resume, or a new one; (id, resumed)."""
    table = schema.backfills
    with engine.begin() as connection:
        unfinished = connection.scalar(
            select(table.c.backfill_id)
            .where(table.c.kind == kind, table.c.status == "running")
            .order_by(table.c.backfill_id.desc())
        )
        if unfinished is not None and not restart:
            return unfinished, True
        if unfinished is not None:
            connection.execute(
                update(table).where(table.c.backfill_id == unfinished).values(status="abandoned")
            )
        created = connection.execute(
            insert(table).values(kind=kind, started_at=utcnow(), status="running")
        )
        return created.inserted_primary_key[0], False


def users_without_profile(engine: Engine, backfill_id: int) -> list[str]:
    """The synced users this backfill has not stored a profile of yet, in id order."""
    done = select(schema.user_details.c.user_id).where(
        schema.user_details.c.backfill_id == backfill_id
    )
    query = (
        select(schema.users.c.user_id)
        .where(schema.users.c.user_id.not_in(done))
        .order_by(schema.users.c.user_id)
    )
    with engine.connect() as connection:
        return list(connection.scalars(query))


def _without_profile(backfill_id: int):
    """Synced users without a profile of this backfill: an anti-join on the details' key."""
    users, details = schema.users, schema.user_details
    joined = users.outerjoin(
        details,
        and_(details.c.user_id == users.c.user_id, details.c.backfill_id == backfill_id),
    )
    return joined, details.c.user_id.is_(None)


def count_without_profile(engine: Engine, backfill_id: int) -> int:
    """How many synced users this backfill has not stored a profile of yet."""
    joined, lacking = _without_profile(backfill_id)
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(joined).where(lacking))


def without_profile_among(engine: Engine, backfill_id: int, user_ids: Collection[str]) -> set[str]:
    """Which of `user_ids` (one slice of an export: ≤ 1000) are synced users this backfill
    has not stored a profile of: an id the last sync did not see is left out, as is one a
    killed backfill had committed."""
    joined, lacking = _without_profile(backfill_id)
    query = (
        select(schema.users.c.user_id)
        .select_from(joined)
        .where(lacking, schema.users.c.user_id.in_(list(user_ids)))
    )
    with engine.connect() as connection:
        return set(connection.scalars(query))


def save_profiles(
    engine: Engine, backfill_id: int, profiles: dict[str, Any], still_to_do: int
) -> None:
    """Store profiles and the checkpoint together; `still_to_do`: users not handled yet."""
    details, table = schema.user_details, schema.backfills
    rows = [
        {"user_id": user_id, "profile": profile, "fetched_at": utcnow(), "backfill_id": backfill_id}
        for user_id, profile in profiles.items()
    ]
    with engine.begin() as connection:
        if rows:
            connection.execute(upsert_statement(connection, details, ("user_id",)), rows)
        fetched = connection.scalar(
            select(func.count()).select_from(details).where(details.c.backfill_id == backfill_id)
        )
        connection.execute(
            update(table)
            .where(table.c.backfill_id == backfill_id)
            .values(users_fetched=fetched, users_total=fetched + still_to_do)
        )


def finish(engine: Engine, backfill_id: int) -> None:
    table = schema.backfills
    with engine.begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.backfill_id == backfill_id)
            .values(status="finished", finished_at=utcnow())
        )
