"""Pure functions: what the API answered → the rows each table must hold. No HTTP, no SQL.

Rules the README documents (the simulator's ground truth follows them too):
- A member (group `members`, role `users`) whose user is not in /api/users is kept and flagged
  `is_orphan` (in the database, where the users are: sql/twins.py): the extension keeps such
  entries, and access reviews want to see them.
- A link to a group, role or permission that no longer exists (`nested`, group `roles`, role
  `permissions`) is left out of the link tables and counted in the run's warnings: it grants
  nothing in the extension, and keeping it would make every join lie.
- Duplicate entries of a list collapse into one row.
A record we cannot store faithfully (missing id, wrong type, non-GUID id) raises ApiDataError
naming the entity, the id and the field, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NoReturn

from sync import model
from sync.errors import ApiDataError
from sync.model import Row, Snapshot

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class TableRows:
    """The new rows of every synced table but users (which a run streams separately).

    Members, the tables that grow with the users, are kept as the id lists the API sent
    (de-duplicated), not as rows: `rows()` makes their rows on the way to the database.
    """

    tables: dict[str, list[Row]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # group id → user ids
    role_users: dict[str, list[str]] = field(default_factory=dict)  # role id → user ids
    warnings: list[str] = field(default_factory=list)

    def rows(self, name: str) -> Iterator[Row]:
        """The rows of one table. `is_orphan` is False here: whether a member's user exists is
        decided in the database, against the users read (sql/twins.StagedTable.mark_orphans)."""
        if name == model.GROUP_MEMBERS:
            for group_id, user_ids in self.members.items():
                for user_id in user_ids:
                    yield {"group_id": group_id, "user_id": user_id, "is_orphan": False}
        elif name == model.ROLE_USERS:
            for role_id, user_ids in self.role_users.items():
                for user_id in user_ids:
                    yield {"role_id": role_id, "user_id": user_id, "is_orphan": False}
        else:
            yield from self.tables[name]


class _Record:
    """Typed access to one API record; every failure names entity, id and field."""

    def __init__(self, entity: str, data: Any, id_field: str, guid: bool):
        if not isinstance(data, dict):
            raise ApiDataError(f"{entity}: expected an object, got {type(data).__name__}")
        self.entity, self.data = entity, data
        self.id = "?"
        self.id = self.text(id_field, required=True)
        if guid and not GUID.match(self.id):
            self.fail(id_field, "is not a GUID")

    def fail(self, name: str, problem: str) -> NoReturn:
        raise ApiDataError(f"{self.entity} {self.id!r}: field {name!r} {problem}")

    def text(self, name: str, required: bool = False, limit: int = 255) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, "is missing")
            return None
        if not isinstance(value, str) or (required and not value):
            self.fail(name, "must be a non-empty string" if required else "must be a string")
        if len(value) > limit:
            self.fail(name, f"is longer than {limit} characters")
        return value

    def id_list(self, name: str) -> list[str]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(name, "must be a list of ids")
        return list(dict.fromkeys(value))  # de-duplicated, first occurrence order

    def typed(self, name: str, kind: type | tuple[type, ...]) -> Any:
        value = self.data.get(name)
        if value is None:
            return None
        # JSON true is a Python int too, but it is no count.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(name, f"has the wrong type {type(value).__name__}")
        return value


def parse_time(value: str | None) -> datetime | None:
    """Auth0 timestamps ("2024-05-01T10:00:00.123Z") as naive UTC, as every table stores them."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


PLACEHOLDER_NAME = "<Error:"  # what the extension answers for a user it could not load


def user_row(data: Any) -> Row:
    """The row of one /api/users (or export) user. Nearly every user is well-formed, and a run
    checks a million of them: `_plain_user_row` takes those in a few comparisons; any doubt
    goes to `_checked_user_row`, which decides and names the problem."""
    return _plain_user_row(data) or _checked_user_row(data)


def _is_text(value: Any, limit: int) -> bool:
    return value is None or (type(value) is str and len(value) <= limit)


def _plain_user_row(data: Any) -> Row | None:
    """The row of a user whose every field has its plain type (exact `str`, `int`, `bool`,
    `list`), else None: it accepts only what _checked_user_row accepts, with the same row."""
    if type(data) is not dict:
        return None
    get = data.get
    user_id, name, email, picture = get("user_id"), get("name"), get("email"), get("picture")
    last_login, logins, blocked = get("last_login"), get("logins_count"), get("blocked")
    multifactor, identities = get("multifactor"), get("identities")
    plain = (
        type(user_id) is str
        and 0 < len(user_id) <= 255
        and _is_text(name, 255)
        and not (name and name.startswith(PLACEHOLDER_NAME))
        and _is_text(email, 320)
        and _is_text(picture, 2048)
        and (logins is None or type(logins) is int)
        and (blocked is None or blocked is True or blocked is False)
        and (multifactor is None or type(multifactor) is list)
        and (identities is None or type(identities) is list)
        and _is_text(last_login, 255)
    )
    if not plain:
        return None
    first = identities[0] if identities and isinstance(identities[0], dict) else {}
    connection = first.get("connection")
    try:
        login_time = parse_time(last_login)
    except ValueError:
        return None
    return {
        "user_id": user_id,
        "email": email,
        "name": name,
        "connection": connection if isinstance(connection, str) else None,
        "picture": picture,
        "last_login": login_time,
        "logins_count": logins,
        "blocked": blocked,
        "multifactor": multifactor,
        "identities": identities,
    }


def _checked_user_row(data: Any) -> Row:
    user = _Record("user", data, "user_id", guid=False)
    if (user.text("name") or "").startswith(PLACEHOLDER_NAME):
        user.fail("name", "is an error placeholder of the extension, not a real user")
    identities = user.typed("identities", list)
    first = identities[0] if identities else None
    connection = first.get("connection") if isinstance(first, dict) else None
    last_login = user.text("last_login")
    try:
        login_time = parse_time(last_login)
    except ValueError:
        user.fail("last_login", "is not an ISO 8601 timestamp")
    return {
        "user_id": user.id,
        "email": user.text("email", limit=320),
        "name": user.text("name"),
        "connection": connection if isinstance(connection, str) else None,
        "picture": user.text("picture", limit=2048),
        "last_login": login_time,
        "logins_count": user.typed("logins_count", int),
        "blocked": user.typed("blocked", bool),
        "multifactor": user.typed("multifactor", list),
        "identities": identities,
    }


def _named_row(record: _Record, id_column: str) -> Row:
    return {
        id_column: record.id,
        "name": record.text("name", required=True),
        "description": record.text("description", limit=65535),
    }


def _application_columns(record: _Record) -> Row:
    return {
        "application_type": record.text("applicationType", limit=32),
        "application_id": record.text("applicationId"),
    }


def _records(entity: str, items: Iterable[Any], guid: bool = True) -> list[_Record]:
    records, seen = [], set()
    for item in items:
        record = _Record(entity, item, "_id", guid)
        if record.id in seen:
            raise ApiDataError(f"{entity} {record.id!r} appears twice in the list")
        seen.add(record.id)
        records.append(record)
    return records


MEMBER_TABLES = (model.USERS, model.GROUP_MEMBERS, model.ROLE_USERS)


def build_rows(snapshot: Snapshot) -> TableRows:
    """The rows of every synced table but users, for one snapshot. Raises ApiDataError before
    anything is written."""
    out = TableRows({name: [] for name in model.SYNCED_TABLES if name not in MEMBER_TABLES})
    t = out.tables
    groups = _records("group", snapshot.groups)
    roles = _records("role", snapshot.roles)
    permissions = _records("permission", snapshot.permissions)
    group_ids = {g.id for g in groups}
    role_ids = {r.id for r in roles}
    permission_ids = {p.id for p in permissions}

    for group in groups:
        t[model.GROUPS].append(_named_row(group, "group_id"))
        out.members[group.id] = group.id_list("members")
        for child in _existing(out, group, "nested", group_ids, "group"):
            t[model.GROUP_NESTING].append({"parent_group_id": group.id, "child_group_id": child})
        for role_id in _existing(out, group, "roles", role_ids, "role"):
            t[model.GROUP_ROLES].append({"group_id": group.id, "role_id": role_id})
        t[model.GROUP_MAPPINGS].extend(_mapping_rows(group))

    for role in roles:
        t[model.ROLES].append(_named_row(role, "role_id") | _application_columns(role))
        for permission_id in _existing(out, role, "permissions", permission_ids, "permission"):
            t[model.ROLE_PERMISSIONS].append({"role_id": role.id, "permission_id": permission_id})
        out.role_users[role.id] = role.id_list("users")

    for permission in permissions:
        t[model.PERMISSIONS].append(
            _named_row(permission, "permission_id") | _application_columns(permission)
        )
    _check_unique_mappings(t[model.GROUP_MAPPINGS])
    return out


def _existing(out: TableRows, record: _Record, name: str, known: set[str], kind: str) -> list[str]:
    ids = record.id_list(name)
    dangling = [item for item in ids if item not in known]
    for item in dangling:
        out.warnings.append(
            f"{record.entity} {record.id} lists {kind} {item} in {name!r}, but that {kind} "
            f"does not exist: link left out"
        )
    return [item for item in ids if item in known]


def _mapping_rows(group: _Record) -> list[Row]:
    mappings = group.typed("mappings", list) or []
    rows = []
    for item in mappings:
        mapping = _Record(f"mapping of group {group.id}", item, "_id", guid=False)
        rows.append(
            {
                "mapping_id": mapping.id,
                "group_id": group.id,
                "group_name": mapping.text("groupName", required=True),
                "connection_name": mapping.text("connectionName", required=True),
            }
        )
    return rows


def _check_unique_mappings(rows: list[Row]) -> None:
    first_group: dict[str, str] = {}
    for row in rows:
        if row["mapping_id"] in first_group:
            raise ApiDataError(
                f"mapping {row['mapping_id']!r} appears twice (groups "
                f"{first_group[row['mapping_id']]} and {row['group_id']})"
            )
        first_group[row["mapping_id"]] = row["group_id"]
