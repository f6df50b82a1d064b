"""A signal that stops a statement invalidates the connection; the cleanup that follows fails on
it. The run must still end as interrupted (130/143, ledger `aborted`), not as a database
error (74): seen on PostgreSQL, where psycopg cancels the statement on Ctrl-C."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import PendingRollbackError

from sync.errors import DatabaseError, Interrupted
from sync.sql.engine import database_errors


def test_a_cleanup_failing_after_a_signal_gives_back_the_signal():
    engine = create_engine("sqlite://")
    with pytest.raises(Interrupted) as raised, database_errors(engine):
        try:
            raise Interrupted("SIGTERM", 143)
        finally:
            raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
    assert raised.value.signal_name == "SIGTERM"


def test_a_database_error_alone_is_still_a_database_error():
    engine = create_engine("sqlite://")
    with pytest.raises(DatabaseError), database_errors(engine):
        raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
