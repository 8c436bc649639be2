"""The connection pool, over the embedded server or ``SIMTUI_DATABASE_URL``."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from simcore.config import Settings
from simcore.errors import ConfigError, DatabaseUnavailable
from simcore.store import embedded

MIN_SERVER_VERSION = 140000


def validate_url(url: str) -> dict[str, Any]:
    """Parse a libpq URL or key=value string; ConfigError naming the variable if it is bad."""
    if "://" in url and not url.startswith(("postgresql://", "postgres://")):
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"SIMTUI_DATABASE_URL: unsupported scheme {scheme!r} (expected postgresql://)"
        )
    try:
        return conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(
            f"SIMTUI_DATABASE_URL: not a valid connection string ({detail})"
        ) from None


def describe_target(url: str) -> str:
    """host:port/dbname without the password, for messages."""
    params = conninfo.conninfo_to_dict(url)
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    db = str(params.get("dbname") or params.get("user") or "")
    return f"{host}:{port}/{db}" if not host.startswith("/") else f"{host}/{db}"


def _connect_error(url: str, exc: Exception, source: str) -> DatabaseUnavailable:
    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    # libpq prefixes every line with the address; keep the last, most specific, line.
    detail = detail.split(": ", 1)[-1] if detail.startswith("connection to server") else detail
    return DatabaseUnavailable(f"{source}: cannot connect to {describe_target(url)}: {detail}")


def check_if_disturbed(conn: psycopg.Connection[Any]) -> None:
    """The pool's check on checkout: a round trip (``ConnectionPool.check_connection``) only if
    the idle connection is readable, else none.

    An idle connection has nothing to read unless something happened to it: a server that
    shut down or restarted sent it an error and closed it (readable: end of file), and so
    does a backend terminated by an administrator. A round trip on every checkout cost a
    one-statement request as much as its statement. What this does not see (a peer gone
    without a word, e.g. a network cut) a round trip would only have seen after a timeout; the
    request then fails and the pool replaces the connection.
    """
    poller = select.poll()  # not select.select(): a busy server's descriptors pass 1023
    poller.register(conn.pgconn.socket, select.POLLIN)
    if poller.poll(0):  # readable, hung up or in error
        ConnectionPool.check_connection(conn)


class Database:
    """Resolves the URL (starting the embedded server if needed) and owns a psycopg pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._url: str | None = None
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return self.settings.database_url is None

    @property
    def source(self) -> str:
        return "embedded database" if self.embedded else "SIMTUI_DATABASE_URL"

    @property
    def url(self) -> str:
        """The libpq URL in use; starts the embedded server on first use."""
        if self._url is None:
            if self.settings.database_url is not None:
                validate_url(self.settings.database_url)
                self._url = self.settings.database_url
            else:
                self._url = embedded.start(Path(self.settings.data_dir))
        return self._url

    def connect(self, **kwargs: Any) -> psycopg.Connection[dict[str, Any]]:
        """A dedicated connection (for LISTEN, advisory locks, migrations)."""
        url = self.url
        kwargs.setdefault("connect_timeout", self.settings.db_connect_timeout_s)
        try:
            return psycopg.connect(url, row_factory=dict_row, **kwargs)
        except psycopg.OperationalError as exc:
            raise _connect_error(url, exc, self.source) from None

    def check(self) -> int:
        """Connect once and return the server version; refuse servers older than 14."""
        with self.connect() as conn:
            version = conn.info.server_version
        if version < MIN_SERVER_VERSION:
            raise DatabaseUnavailable(
                f"{self.source}: PostgreSQL {version // 10000} is too old (14 or newer is needed)"
            )
        return version

    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[dict[str, Any]]]:
        with self._lock:
            if self._pool is None:
                self.check()
                pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.settings.db_pool_max,
                    kwargs={
                        "row_factory": dict_row,
                        "connect_timeout": self.settings.db_connect_timeout_s,
                    },
                    open=False,
                    name="simcore",
                    # A restarted server leaves dead connections in the pool; check on checkout,
                    # with a round trip only when the idle connection has something to read.
                    check=check_if_disturbed,
                    reconnect_timeout=60.0,
                )
                pool.open(wait=True, timeout=float(self.settings.db_connect_timeout_s))
                self._pool = pool
            return self._pool

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection inside one transaction (committed on success)."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"{self.source}: no database connection available ({exc})"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
