"""One statement, one row, on libpq's prepared-statement calls: the queue's hot path.

A worker runs one statement per run (``simcore.queue.step``). Through a psycopg cursor, much
of the worker's CPU for that statement went to the cursor's own bookkeeping (placeholder
conversion, the prepared-statement cache, the wait generators, the result selection), not
to the query. This module keeps what psycopg does well, its C dumpers and loaders
(``Transformer``), and talks to libpq directly for the rest: a step's client CPU fell from
446 to 355 µs (medians of 6 paired runs of 2,000 steps on the embedded server).
``exec_prepared`` releases the GIL while it waits, as the cursor does: the worker's other
threads run meanwhile.

Errors are psycopg's own exceptions (``psycopg.errors.error_from_result``), raised as a cursor
would; a connection lost meanwhile is left in the state the pool recognises and discards.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from psycopg.rows import tuple_row

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_MISSING_STATEMENT = b"26000"  # invalid_sql_statement_name: the server forgot the statement


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: bytes
    """The query with ``$n`` placeholders."""
    names: tuple[str, ...]
    """The parameter behind each ``$n``."""


_statements: dict[str, _Statement] = {}
_columns: dict[str, tuple[str, ...]] = {}
_names: dict[tuple[str, tuple[int, ...]], bytes] = {}
# Which statements each connection has prepared, by name (one per query and parameter types).
_prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[bytes]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def _statement(query: str) -> _Statement:
    statement = _statements.get(query)
    if statement is None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        if "%%" in query or re.search(r"%[^(]", query):
            raise ValueError("only %(name)s placeholders are supported here")
        sql = _PLACEHOLDER.sub(number, query)
        statement = _statements[query] = _Statement(sql.encode(), tuple(names))
    return statement


def _name(query: str, types: tuple[int, ...]) -> bytes:
    """The statement's name for these parameter types: a digest, as the server keeps only
    the first 63 bytes of a name."""
    name = _names.get((query, types))
    if name is None:
        digest = hashlib.sha1(f"{types}{query}".encode(), usedforsecurity=False).hexdigest()
        name = _names[query, types] = f"simtui_{digest[:32]}".encode()
    return name


def fetch_one(
    conn: psycopg.Connection[Any], query: str, params: Mapping[str, Any]
) -> tuple[tuple[Any, ...] | None, tuple[str, ...]]:
    """Run ``query`` (``%(name)s`` placeholders) with ``params``; its first row, or None, and
    the names of its columns. Raises what ``cursor.execute`` raises.

    On an autocommit connection, through libpq's prepared statements. Inside a transaction
    block, through a cursor: psycopg deallocates every prepared statement of a connection
    after a ROLLBACK (its own and these), and a statement found missing there could not be
    prepared again and retried, the transaction being aborted by then.
    """
    statement = _statement(query)
    if not conn.autocommit or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(query, params)
            return cur.fetchone(), tuple(d.name for d in cur.description or ())
    with conn.lock:
        transformer = Transformer(conn)
        values = [params[name] for name in statement.names]
        dumped = transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
        types = transformer.types or ()
        # A parameter's type is fixed when the statement is prepared: other types (a NULL
        # that was a uuid the first time) get a statement of their own, as in psycopg.
        name = _name(query, types)
        with _lock:
            known = _prepared.setdefault(conn, set())
        for attempt in (1, 2):
            if name not in known:
                _check(conn, conn.pgconn.prepare(name, statement.sql, types))
                known.add(name)
            # NULLs are None, as libpq takes them (psycopg's annotation leaves them out).
            result = conn.pgconn.exec_prepared(name, cast(list[bytes], dumped), transformer.formats)
            missing = result.error_field(pq.DiagnosticField.SQLSTATE) == _MISSING_STATEMENT
            if not missing or attempt == 2:
                break
            # Deallocated meanwhile (psycopg's DEALLOCATE ALL, a DISCARD ALL): nothing ran,
            # no transaction was open, so preparing it again and retrying is safe.
            known.clear()
        _check(conn, result)
        columns = _columns.get(query)
        if columns is None:
            columns = _columns[query] = tuple(
                (result.fname(i) or b"").decode() for i in range(result.nfields)
            )
        if result.ntuples == 0:
            return None, columns
        transformer.set_pgresult(result)
        return transformer.load_row(0, tuple), columns


def _check(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> None:
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return
    if conn.pgconn.status == pq.ConnStatus.BAD:
        # What a cursor raises when the server goes away (a restart): the worker retries.
        raise psycopg.OperationalError(pq.error_message(result, encoding=conn.info.encoding))
    raise error_from_result(result, encoding=conn.info.encoding)
