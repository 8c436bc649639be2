"""The embedded PostgreSQL server (pgserver) used when no database URL is configured.

The server lives under ``<data_dir>/pgdata`` and listens on a Unix socket only. It is shared by
every simtui process of the user (dashboard, worker, API): pgserver serialises start-up with an
inter-process lock, so two processes starting together find one server. It keeps running after
the process that started it exits, like any local service, so that ``psql "$(simcore db url)"``
works from another shell; ``simcore db stop`` stops it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import warnings
from pathlib import Path

from simcore.errors import DatabaseUnavailable

DATABASE_NAME = "molam_connect"
"""The runbook's ``psql -d molam_connect`` names the database; the embedded one is named so."""
DATABASE_MARKER = ".simtui_database"
"""Written in ``pgdata`` once ``molam_connect`` exists, so it goes away with the server's files."""

_log = logging.getLogger(__name__)


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def _ensure_runtime_dir() -> None:
    # pgserver keeps its lock under the XDG runtime dir; over SSH or in CI that variable is
    # often unset and platformdirs warns on every start. Point it at a private folder instead.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        fallback = Path(f"/tmp/simtui-runtime-{os.getuid()}")
        fallback.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(fallback)


def start(data_dir: Path) -> str:
    """Start (or join) the embedded server and return a libpq URL of its ``molam_connect``."""
    pgdata = pgdata_dir(data_dir)
    # Most starts find the server up, which postmaster.pid tells without importing pgserver
    # (psutil, file locks) or walking its binaries' permissions as root; and the marker tells
    # that molam_connect exists, which otherwise takes a connection to ask.
    created = (pgdata / DATABASE_MARKER).is_file()
    url = _running_url(pgdata)
    if url is not None and created:
        return url
    _ensure_runtime_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"SIMTUI_DATA_DIR: cannot create {data_dir}: {exc.strerror}"
        ) from None
    # pgserver logs whole server logs at ERROR on a failed start; we say it in one line.
    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - a broken install
            raise DatabaseUnavailable(
                f"embedded database: pgserver is not installed ({exc})"
            ) from None
        try:
            getter = pgserver.get_server  # type: ignore[attr-defined]
            server = getter(pgdata, cleanup_mode=None)
        except (
            subprocess.CalledProcessError,
            subprocess.TimeoutExpired,
            OSError,
            AssertionError,
        ) as exc:
            log = pgdata / "log"
            raise DatabaseUnavailable(
                f"embedded database: PostgreSQL did not start under {pgdata} "
                f"({type(exc).__name__}); see {log}"
            ) from None
    if not created:
        _ensure_database(server, server.get_uri())
        with contextlib.suppress(OSError):  # without the marker, the next start checks again
            (pgdata / DATABASE_MARKER).write_text(DATABASE_NAME + "\n", encoding="utf-8")
    return str(server.get_uri(DATABASE_NAME))


def _running_url(pgdata: Path) -> str | None:
    """The URL of ``molam_connect`` on a server that runs and is ready in ``pgdata``, else None.

    Read from ``postmaster.pid`` as pgserver reads it (pid, port, socket folder, status), with
    the same checks: the file says "ready", its process exists, and so does the socket.
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        pid, port = int(lines[0]), int(lines[3])
    except ValueError:
        return None
    socket_dir = lines[4].strip()
    if not socket_dir or not (Path(socket_dir) / f".s.PGSQL.{port}").exists():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, as another user (pgserver runs the server as "pgserver" under root)
    return f"postgresql://postgres:@/{DATABASE_NAME}?host={socket_dir}"


def _ensure_database(server: object, base_uri: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if exists:
            return
        # Two processes may race here; the loser sees duplicate_database and carries on.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; return whether it was running."""
    _ensure_runtime_dir()
    pgdata = pgdata_dir(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
        from pgserver.postgres_server import PostgresServer

    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    # Forget any handle this process held so a later start() starts a fresh server, and its
    # exit hook with it: that hook deletes the handle from the same table (a KeyError at exit).
    server = PostgresServer._instances.pop(pgdata.resolve(), None)
    if server is not None:
        atexit.unregister(server._cleanup)
    return True
