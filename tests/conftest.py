"""Shared fixtures: a real PostgreSQL server for the session, one fresh database per test.

The server is the embedded one (pgserver) in a temporary folder, unless
``SIMTUI_TEST_DATABASE_URL`` names an existing server to use instead (a superuser URL).
The schema is migrated once into a template database; each test gets a copy of it
(``CREATE DATABASE ... TEMPLATE``), which takes a few milliseconds.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from simcore.config import Settings
from simcore.store import Database, migrate

TEMPLATE_DB = "simtui_test_template"
VENV_BIN = Path(sys.executable).parent


def _with_db(url: str, dbname: str) -> str:
    return conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a superuser connection to a running server (its ``postgres`` database)."""
    external = os.environ.get("SIMTUI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="simtui-rt-"))
    # A short path: the server's Unix socket lives in it and socket paths are limited.
    folder = Path(tempfile.mkdtemp(prefix="simpg-", dir="/tmp"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    url = _with_db(pg_admin_url, TEMPLATE_DB)
    with Database(Settings(database_url=url)) as db:
        migrate.migrate(db)
    return url


def create_database(pg_admin_url: str, template: str | None) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(query)
    return name


def drop_database(pg_admin_url: str, name: str) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def db_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A migrated database of its own for this test."""
    name = create_database(pg_admin_url, TEMPLATE_DB)
    yield _with_db(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database (no migrations applied)."""
    name = create_database(pg_admin_url, None)
    yield _with_db(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data")


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    with Database(settings) as database:
        yield database


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running `simcore` as a subprocess against this test's database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIMTUI_") and k != "MAX_RUN_TIME_MS"
    }
    env.update(
        SIMTUI_DATABASE_URL=db_url,
        SIMTUI_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    return env


def simcore_bin() -> str:
    return str(VENV_BIN / "simcore")
