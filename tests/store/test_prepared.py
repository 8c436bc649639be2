"""``simcore.store.prepared``: the queue's statement on libpq's prepared-statement calls.

It must answer what a cursor answers, raise what a cursor raises, and survive whatever drops
its prepared statements on the server (psycopg's DEALLOCATE ALL after a rollback, a
DISCARD ALL) or the connection itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import pq

from simcore.store import prepared

QUERY = (
    "SELECT %(n)s::int + 1 AS next, %(who)s::text AS who, %(id)s::uuid AS id, "
    "%(n)s::int * 2 AS twice"
)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True, prepare_threshold=0) as connection:
        yield connection


def _server_statements(conn: psycopg.Connection[Any]) -> list[str]:
    with psycopg.ClientCursor(conn) as cur:  # not prepared: it must not count itself
        cur.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'simtui_%'")
        return [r[0] for r in cur.fetchall()]


def test_it_answers_what_a_cursor_answers(conn: psycopg.Connection[Any]) -> None:
    run_id = uuid.uuid4()
    params = {"n": 41, "who": "ops:7 ünïcode", "id": run_id}
    row, columns = prepared.fetch_one(conn, QUERY, params)
    cursor_row = conn.execute(QUERY, params).fetchone()
    assert columns == ("next", "who", "id", "twice")
    assert row == (42, "ops:7 ünïcode", run_id, 82)
    assert cursor_row is not None and tuple(cursor_row) == row
    # Prepared once, then only executed.
    assert len(_server_statements(conn)) == 1
    assert prepared.fetch_one(conn, QUERY, {**params, "n": 1})[0] == (2, params["who"], run_id, 2)
    assert len(_server_statements(conn)) == 1


def test_no_row_and_nulls(conn: psycopg.Connection[Any]) -> None:
    row, columns = prepared.fetch_one(
        conn, "SELECT 1 AS one WHERE %(x)s::text IS NOT NULL", {"x": None}
    )
    assert row is None and columns == ("one",)
    # Another parameter type than the first time (NULL, now text) gets its own statement.
    assert prepared.fetch_one(
        conn, "SELECT 1 AS one WHERE %(x)s::text IS NOT NULL", {"x": "set"}
    ) == ((1,), ("one",))


@pytest.mark.parametrize("dropper", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_a_statement_dropped_on_the_server_is_prepared_again(
    conn: psycopg.Connection[Any], dropper: str
) -> None:
    params = {"n": 1, "who": "w", "id": uuid.uuid4()}
    prepared.fetch_one(conn, QUERY, params)
    conn.execute(dropper)
    assert _server_statements(conn) == []
    assert prepared.fetch_one(conn, QUERY, params)[0] == (2, "w", params["id"], 2)
    assert len(_server_statements(conn)) == 1


def test_after_psycopgs_own_deallocation_on_rollback(db_url: str) -> None:
    # psycopg deallocates every statement of a connection once it has prepared some of its
    # own and sees a ROLLBACK: ours go with them.
    with psycopg.connect(db_url, prepare_threshold=0) as conn:
        conn.execute("SELECT 1")
        conn.rollback()
        conn.autocommit = True
        params = {"n": 5, "who": "w", "id": uuid.uuid4()}
        assert prepared.fetch_one(conn, QUERY, params)[0] == (6, "w", params["id"], 10)
        conn.autocommit = False
        conn.execute("SELECT 2")
        conn.rollback()
        conn.execute("SELECT 3")  # psycopg sends its DEALLOCATE ALL here
        conn.rollback()
        conn.autocommit = True
        assert prepared.fetch_one(conn, QUERY, params)[0] == (6, "w", params["id"], 10)


def test_inside_a_transaction_it_goes_through_a_cursor(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT 1")
        assert conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS
        params = {"n": 2, "who": "w", "id": uuid.uuid4()}
        assert prepared.fetch_one(conn, QUERY, params)[0] == (3, "w", params["id"], 4)
        assert _server_statements(conn) == []
        conn.rollback()


def test_errors_are_psycopgs_and_the_connection_stays_usable(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        prepared.fetch_one(conn, "SELECT 1 / %(zero)s::int AS x", {"zero": 0})
    with pytest.raises(psycopg.errors.UndefinedTable):
        prepared.fetch_one(conn, "SELECT * FROM no_such_table WHERE %(a)s::int = 1", {"a": 1})
    assert prepared.fetch_one(conn, "SELECT %(a)s::int AS a", {"a": 7}) == ((7,), ("a",))


def test_a_lost_connection_is_an_operational_error_the_pool_recognises(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    params = {"n": 1, "who": "w", "id": uuid.uuid4()}
    prepared.fetch_one(conn, QUERY, params)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        prepared.fetch_one(conn, QUERY, params)
    # What psycopg_pool checks before it takes a connection back.
    assert conn.pgconn.transaction_status == pq.TransactionStatus.UNKNOWN


def test_only_named_placeholders() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        prepared.fetch_one(None, "SELECT %s", {})  # type: ignore[arg-type]
