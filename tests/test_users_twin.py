"""The users' twin: slices go in as they are (COPY on PostgreSQL), and a user that arrives in
two slices anyway (an API answering inconsistently) fails the run with exit 65, writing
nothing, instead of surfacing as a database crash, on every database."""

from __future__ import annotations

import pytest
from e2e import api_settings, ledger, read_tables

from sync.errors import ApiDataError
from sync.model import Fetched, Snapshot
from sync.runner.run import sync_snapshot
from sync.transform import user_row


def api_user(number: int) -> dict:
    return {
        "user_id": f"auth0|{number:04d}",
        "email": f"user{number}@example.com",
        "name": f"User {number}",
        "identities": [{"connection": "Username-Password-Authentication", "isSocial": False}],
        "logins_count": number,
    }


class SlicedSource:
    """A source yielding the given slices of users, and empty groups, roles, permissions."""

    label = "https://slices.example/api"

    def __init__(self, *slices: list[int]):
        self.slices = slices

    def read(self, previous_windows, stats):
        for numbers in self.slices:
            yield [user_row(api_user(number)) for number in numbers]
        return Fetched(Snapshot([], [], []), has_users=True)


@pytest.fixture
def settings(database_url):
    return api_settings(database_url, secret="twin-secret", extension_url=SlicedSource.label)


def test_slices_of_distinct_users_are_all_stored(settings, database_url):
    report = sync_snapshot(SlicedSource([1, 2, 3], [4, 5], [6]), settings)
    assert report.counts["authz_users"].inserted == 6
    stored = [row["user_id"] for row in read_tables(database_url)["authz_users"]]
    assert sorted(stored) == [f"auth0|{n:04d}" for n in range(1, 7)]


def test_a_user_in_two_slices_fails_the_run_and_writes_nothing(settings, database_url):
    sync_snapshot(SlicedSource([1, 2], [3]), settings)
    before = read_tables(database_url)["authz_users"]

    with pytest.raises(ApiDataError) as failure:
        sync_snapshot(SlicedSource([1, 2, 4], [5, 2, 6]), settings)

    message = str(failure.value)
    assert "'auth0|0002' twice" in message and "nothing was written" in message
    assert failure.value.exit_code == 65
    run = ledger(database_url)[-1]
    assert (run["status"], run["exit_code"]) == ("failed", 65)
    assert read_tables(database_url)["authz_users"] == before
