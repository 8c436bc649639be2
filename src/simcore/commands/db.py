"""`simcore db migrate|status|url|env|stop`."""

from __future__ import annotations

import argparse
import shlex

from psycopg import conninfo

from simcore.config import load_settings
from simcore.store import Database, embedded, migrate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("db", help="database: migrate, status, url, env, stop")
    cmds = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    cmds.add_parser("migrate", help="apply pending migrations").set_defaults(handler=_migrate)
    cmds.add_parser("status", help="list applied and pending migrations").set_defaults(
        handler=_status
    )
    cmds.add_parser("url", help='print the connection URL (psql "$(simcore db url)")').set_defaults(
        handler=_url
    )
    cmds.add_parser(
        "env",
        help="print PGHOST/PGPORT/PGUSER/PGDATABASE exports, for "
        'eval "$(simcore db env)"; psql -d molam_connect',
    ).set_defaults(handler=_env)
    cmds.add_parser("stop", help="stop the embedded PostgreSQL server").set_defaults(handler=_stop)


def _migrate(args: argparse.Namespace) -> int:
    with Database(load_settings()) as db:
        applied = migrate.migrate(db)
    if applied:
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
    else:
        print("schema is up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    with Database(load_settings()) as db:
        states = migrate.status(db)
    for state in states:
        mark = state.applied_at.isoformat(timespec="seconds") if state.applied_at else "pending"
        print(f"{state.migration.version:04d}_{state.migration.name:<32} {mark}")
    pending = sum(1 for s in states if not s.applied)
    print(f"{len(states) - pending} applied, {pending} pending")
    return 0


def _url(args: argparse.Namespace) -> int:
    with Database(load_settings()) as db:
        print(db.url)
    return 0


def _env(args: argparse.Namespace) -> int:
    with Database(load_settings()) as db:
        params = conninfo.conninfo_to_dict(db.url)
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "dbname": "PGDATABASE",
        "password": "PGPASSWORD",
    }
    for key, var in names.items():
        value = params.get(key)
        if value not in (None, ""):
            print(f"export {var}={shlex.quote(str(value))}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.database_url is not None:
        print("SIMTUI_DATABASE_URL is set: no embedded server to stop")
        return 0
    stopped = embedded.stop(settings.data_dir)
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0
