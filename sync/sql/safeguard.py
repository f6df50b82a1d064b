"""The accidental-delete safeguard: a run that would delete too much stops before writing.

An API hiccup that answers an empty list looks exactly like "everything was deleted". Like
Microsoft Entra Connect (which stops at 500 deletes) and Grouper (30%), a run refuses to delete
more than `max_deletes` rows of a table, or more than `max_delete_percent` of its rows (once at
least MIN_DELETES_FOR_PERCENT rows go: 4 of 10 groups is an ordinary Tuesday). An entity table
(users, groups, roles, permissions) that the source answers empty while the database has rows is
always refused. `--allow-deletes` (or `safeguard.allow_deletes`) accepts the deletes knowingly.
The limits are settings (config.Safeguard).
"""

from __future__ import annotations

from collections.abc import Mapping

from sync import model
from sync.config import DeleteLimit, Safeguard
from sync.errors import DeleteGuardError
from sync.sql.twins import Plan

MIN_DELETES_FOR_PERCENT = 10
SAMPLE = 5  # keys shown per table in the message
ENTITY_TABLES = (model.USERS, model.GROUPS, model.ROLES, model.PERMISSIONS)


def check_deletes(plans: Mapping[str, Plan], safeguard: Safeguard) -> None:
    """Raise DeleteGuardError naming every table that would lose too much."""
    if safeguard.allow_deletes:
        return
    problems = [
        problem
        for name, plan in plans.items()
        if (problem := _problem(name, plan, safeguard.limit(name)))
    ]
    if problems:
        problems.append(
            "nothing was written; if these deletes are intended, rerun with --allow-deletes "
            "(or raise the limits in [safeguard])"
        )
        raise DeleteGuardError("\n".join(problems))


def _problem(name: str, plan: Plan, limit: DeleteLimit) -> str | None:
    deleting, before = plan.count.deleted, plan.rows_before
    if not deleting:
        return None
    percent = 100.0 * deleting / before
    if name in ENTITY_TABLES and plan.count.fetched == 0:
        reason = "the extension answered none at all"
    elif deleting > limit.max_deletes:
        reason = f"more than max_deletes = {limit.max_deletes}"
    elif deleting >= MIN_DELETES_FOR_PERCENT and percent > limit.max_delete_percent:
        reason = f"more than max_delete_percent = {limit.max_delete_percent:g}%"
    else:
        return None
    return (
        f"refusing to delete {deleting} of {before} rows ({percent:.0f}%) of {name}: {reason}; "
        f"e.g. {_sample(plan)}"
    )


def _sample(plan: Plan) -> str:
    rows = plan.deleted_rows(SAMPLE)  # the first in key order
    keys = sorted(" / ".join(str(row[k]) for k in plan.keys) for row in rows)
    more = plan.count.deleted - len(keys)
    return ", ".join(keys) + (f" and {more} more" if more > 0 else "")
