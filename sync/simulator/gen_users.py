"""Generated Auth0 users: ids, names and timestamps that break naive sync code.

The first users are fixed "specials" (ids with ``|``, ``@``, spaces, non-ASCII, ids differing only
by case, emoji and CJK names, a user without email) so every tenant of ~10 users or more contains
them; the rest are random but seeded. ``created_at`` comes in bulk-import bursts because that is
what makes slicing the user search by date hard.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from .timefmt import format_auth0

Json = dict[str, Any]

DB_CONNECTION = "Username-Password-Authentication"
SAML_CONNECTION = "Corp Dir"
WAAD_CONNECTION = "contoso-azure-ad"

# (user_id, name, email or None, connection, provider, isSocial)
SPECIAL_USERS: tuple[tuple[str, str, str | None, str, str, bool], ...] = (
    ("auth0|abc", "Zoë Ångström 🚀", "zoe.angstrom@example.com", DB_CONNECTION, "auth0", False),
    ("auth0|ABC", "山田 太郎", "taro.yamada@example.jp", DB_CONNECTION, "auth0", False),
    ("google-oauth2|1234", "José Müller", "jose.muller@gmail.com", "google-oauth2",
     "google-oauth2", True),
    ("samlp|Corp Dir|jane@example.com", "Jane O'Brien", "jane@example.com", SAML_CONNECTION,
     "samlp", False),
    ("waad|ünïcode user", "Ünïcödé Üser 🦄", "unicode.user@contoso.example", WAAD_CONNECTION,
     "waad", False),
    ("sms|5f1a2b3c4d5e6f7a8b9c0d1e", "+15551234567", None, "sms", "sms", False),
    ("auth0|rtl-user", "محمد علي", "mohammed.ali@example.com", DB_CONNECTION, "auth0", False),
)  # fmt: skip

FIRST_NAMES = (
    "Anna", "Björn", "Chloé", "Dmitri", "Émile", "Fatima", "György", "Hiroshi", "Ingrid", "José",
    "Katarzyna", "Lars", "Mårten", "Nguyễn", "Olga", "Priya", "Quentin", "Rosa", "Søren", "Tomás",
    "Uma", "Václav", "Wei", "Xóchitl", "Yusuf", "Zoë", "Ada", "Grace", "Linus", "Margaret",
)  # fmt: skip
LAST_NAMES = (
    "Ångström", "Brontë", "Çelik", "Dvořák", "Eriksson", "Fernández", "García", "Hernández",
    "Işık",  # noqa: RUF001
    "Jónsson", "Kowalski", "Łukasiewicz", "Müller", "Novák", "O'Brien", "Petrović",
    "Quiñones", "Rodríguez", "Schröder", "Tanaka", "Ünal", "Villeneuve", "Wójcik", "Xu",
    "Yılmaz",  # noqa: RUF001
    "Żukowski", "Smith", "Lovelace", "Hopper", "Torvalds",
)  # fmt: skip
CJK_NAMES = ("王 小明", "김 민준", "佐藤 花子", "陳 美玲", "李 娜")

# The generated data describes a tenant as seen on this day, so it never depends on the clock.
EPOCH_START = datetime(2021, 1, 1)
DATA_NOW = datetime(2024, 6, 30, 12, 0, 0)
SHARED_INSTANT = datetime(2023, 3, 15, 9, 0, 0)
MAX_BURST = 600  # users per bulk import: several hundred, always below the 1000-result cap


@lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    """Lower-case ASCII transliteration for e-mail local parts (drops what has no Latin form);
    cached because names come from short lists and 100k users must generate in seconds."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _user(
    rnd: random.Random,
    user_id: str,
    name: str,
    email: str | None,
    connection: str,
    provider: str,
    social: bool,
) -> Json:
    """One user object with exactly the fields the extension asks Auth0 for."""
    identity_id = user_id.split("|", 1)[1] if "|" in user_id else user_id
    user: Json = {"user_id": user_id, "name": name}
    if email is not None:
        user["email"] = email
    user["identities"] = [
        {"connection": connection, "provider": provider, "user_id": identity_id, "isSocial": social}
    ]
    initials = (_ascii(name)[:2] or "xx").ljust(2, "x")
    user["picture"] = (
        f"https://s.gravatar.com/avatar/{rnd.getrandbits(128):032x}?s=480&r=pg"
        f"&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png"
    )
    return user


def _random_identity(rnd: random.Random, index: int) -> tuple[str, str, str | None, str, str, bool]:
    """A random user's id, name, email and connection; ``index`` keeps e-mails unique."""
    if rnd.random() < 0.05:
        name = rnd.choice(CJK_NAMES)
        local = f"user{index}"
    else:
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        name = f"{first} {last}"
        local = f"{_ascii(first)}.{_ascii(last)}{index}"
    kind = rnd.random()
    if kind < 0.70:
        email = f"{local}@example.com"
        return f"auth0|{rnd.getrandbits(96):024x}", name, email, DB_CONNECTION, "auth0", False
    if kind < 0.85:
        email = f"{local}@gmail.com"
        uid = f"google-oauth2|{rnd.randrange(10**20, 10**21)}"
        return uid, name, email, "google-oauth2", "google-oauth2", True
    if kind < 0.95:
        email = f"{local}@corp.example.com"
        return f"samlp|{SAML_CONNECTION}|{email}", name, email, SAML_CONNECTION, "samlp", False
    email = f"{local}@contoso.example"
    return f"waad|{rnd.getrandbits(160):040x}", name, email, WAAD_CONNECTION, "waad", False


def _created_at_plan(rnd: random.Random, count: int, same_block: int) -> list[datetime]:
    """``count`` creation instants: a spread over three and a half years plus bulk-import bursts
    (hundreds of users within one hour, a handful sharing one millisecond), shuffled."""
    span_ms = int((DATA_NOW - EPOCH_START).total_seconds() * 1000)
    moments: list[datetime] = [SHARED_INSTANT] * min(same_block, count)
    in_bursts = int((count - len(moments)) * 0.3) if count >= 50 else 0
    burst = min(MAX_BURST, max(20, in_bursts // 2)) if in_bursts else 0
    while in_bursts > 0:
        size = min(burst, in_bursts)
        hour = EPOCH_START + timedelta(hours=rnd.randrange(span_ms // 3_600_000 - 1))
        same_ms = hour + timedelta(milliseconds=rnd.randrange(3_600_000))
        moments += [same_ms] * min(5, size)  # a bulk import writes some users in the same ms
        moments += [
            hour + timedelta(milliseconds=rnd.randrange(3_600_000)) for _ in range(size - 5)
        ]
        in_bursts -= size
    moments += [
        EPOCH_START + timedelta(milliseconds=rnd.randrange(span_ms))
        for _ in range(count - len(moments))
    ]
    rest = moments[min(same_block, count) :]
    rnd.shuffle(rest)
    return moments[: min(same_block, count)] + rest


def _activity(rnd: random.Random, user: Json, created: datetime) -> None:
    """last_login, logins_count, multifactor and blocked: each present on only some users."""
    if rnd.random() < 0.85:
        span_ms = max(1, int((DATA_NOW - created).total_seconds() * 1000))
        user["last_login"] = format_auth0(created + timedelta(milliseconds=rnd.randrange(span_ms)))
        user["logins_count"] = rnd.randint(1, 500)
    roll = rnd.random()
    if roll < 0.08:
        user["multifactor"] = ["guardian"]
    elif roll < 0.10:
        user["multifactor"] = ["google-authenticator"]
    roll = rnd.random()
    if roll < 0.04:
        user["blocked"] = True
    elif roll < 0.06:
        user["blocked"] = False


def generate_users(
    count: int, *, seed: int = 0, same_created_at_block: int = 0
) -> tuple[dict[str, Json], dict[str, str]]:
    """``count`` users keyed by user_id, and each user's ``created_at`` (Auth0 ISO format)."""
    rnd = random.Random(f"authz-sync-users-{seed}")
    plan = _created_at_plan(rnd, count, same_created_at_block)
    users: dict[str, Json] = {}
    created_at: dict[str, str] = {}
    for index in range(count):
        if index < len(SPECIAL_USERS):
            identity = SPECIAL_USERS[index]
        else:
            identity = _random_identity(rnd, index)
            while identity[0] in users:  # astronomically rare; keeps the count exact anyway
                identity = _random_identity(rnd, index)
        user = _user(rnd, *identity)
        _activity(rnd, user, plan[index])
        users[user["user_id"]] = user
        created_at[user["user_id"]] = format_auth0(plan[index])
    _special_activity(users)
    return users, created_at


def _special_activity(users: dict[str, Json]) -> None:
    """Pin a few specials: one never logged in, two share one last_login (ordering tie), one is
    blocked with MFA, so these cases exist whatever the random draws were."""
    if "auth0|ABC" in users:
        users["auth0|ABC"].pop("last_login", None)
        users["auth0|ABC"].pop("logins_count", None)
    tie = "2024-05-01T10:00:00.123Z"
    for user_id in ("google-oauth2|1234", "samlp|Corp Dir|jane@example.com"):
        if user_id in users:
            users[user_id]["last_login"] = tie
            users[user_id]["logins_count"] = 7
    if "auth0|abc" in users:
        users["auth0|abc"]["multifactor"] = ["guardian"]
        users["auth0|abc"]["blocked"] = True
