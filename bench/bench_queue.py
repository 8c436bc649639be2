"""Claims per second with a no-op executor: simtui's queue against procrastinate.

Both run on the same PostgreSQL server (an embedded one started here, or --admin-url), each
in its own database, in the same benchmark run, with 1 and 4 worker processes. A simtui
"claim" is the real path a worker takes: the one-statement claim (with its journal entry)
then ``finish`` (status, journal entry); a procrastinate job is a no-op task.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/bench_queue.py [--jobs 3000] [--admin-url postgresql://...]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

TARGET_RATIO = 3.0


def _with_db(url: str, name: str) -> str:
    return conninfo.make_conninfo(url, dbname=name)


def _fresh_db(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_db(admin, name)


# -- simtui -----------------------------------------------------------------------------------


def prepare_simtui(url: str, jobs: int) -> None:
    from simcore.config import Settings
    from simcore.store import Database, migrate

    with Database(Settings(database_url=url)) as db:
        migrate.migrate(db)
    with psycopg.connect(url, autocommit=True) as conn:
        sim = conn.execute(
            "INSERT INTO sdk_simulations (tenant_type, name, sdk_language, scenario) VALUES "
            "('internal', 'bench', 'python', '{\"error\": \"timeout\"}') RETURNING id"
        ).fetchone()
        assert sim is not None
        conn.execute(
            "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed, run_at) "
            "SELECT %s, 'internal', g, now() - (%s - g) * interval '1 millisecond' "
            "FROM generate_series(1, %s) g",
            (sim[0], jobs, jobs),
        )


def simtui_worker(url: str, ready: Any, go: Any, out: Any) -> None:
    from simcore import queue
    from simcore.config import Settings
    from simcore.model import RunStatus
    from simcore.store import Database

    db = Database(Settings(database_url=url, db_pool_max=2))
    wid = f"bench-{os.getpid()}"
    done_outcome = queue.Outcome(RunStatus.SUCCESS, metrics={"success_rate": 1.0})
    db.pool  # noqa: B018 - connect before the clock starts
    ready.set()
    go.wait()
    count = 0
    while True:
        row = queue.claim(db, wid)
        if row is None:
            break
        queue.finish(db, row["id"], wid, done_outcome)
        count += 1
    db.close()
    out.put(count)


# -- procrastinate ----------------------------------------------------------------------------


def _proc_app(url: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    def noop() -> None:
        return None

    return app


def prepare_procrastinate(url: str, jobs: int) -> None:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=url))

    @app.task(name="noop")
    def noop() -> None:
        return None

    with app.open():
        app.schema_manager.apply_schema()
        for start in range(0, jobs, 1000):
            noop.batch_defer(*({} for _ in range(min(1000, jobs - start))))


def procrastinate_worker(url: str, ready: Any, go: Any, out: Any) -> None:
    import asyncio

    app = _proc_app(url)

    async def main() -> None:
        async with app.open_async():
            ready.set()
            go.wait()
            await app.run_worker_async(
                wait=False, concurrency=1, install_signal_handlers=False, listen_notify=False
            )

    asyncio.run(main())
    out.put(0)


def _count_procrastinate(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        ).fetchone()
    return int(row[0]) if row else 0


# -- harness ----------------------------------------------------------------------------------


def measure(target: Any, url: str, workers: int) -> float:
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    out: Any = ctx.Queue()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=target, args=(url, r, go, out)) for r in readies]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(60)
    start = time.perf_counter()
    go.set()
    for p in procs:
        p.join(600)
    return time.perf_counter() - start


def start_embedded() -> tuple[str, Any, Path]:
    folder = Path(tempfile.mkdtemp(prefix="simbench-", dir="/tmp"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    return server.get_uri(), server, folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--admin-url", help="superuser URL of a server to use instead")
    args = parser.parse_args()
    server = folder = None
    admin = args.admin_url
    if admin is None:
        admin, server, folder = start_embedded()
    with psycopg.connect(admin) as conn:
        version = conn.info.server_version
    rows = []
    try:
        for workers in (1, 4):
            url = _fresh_db(admin, f"bench_simtui_{uuid.uuid4().hex[:6]}")
            prepare_simtui(url, args.jobs)
            simtui_rate = args.jobs / measure(simtui_worker, url, workers)
            with psycopg.connect(url) as conn:
                left = conn.execute(
                    "SELECT count(*) FROM sdk_simulation_runs WHERE status <> 'success'"
                ).fetchone()
            assert left == (0,), f"simtui left {left} runs unfinished"
            purl = _fresh_db(admin, f"bench_proc_{uuid.uuid4().hex[:6]}")
            prepare_procrastinate(purl, args.jobs)
            proc_rate = args.jobs / measure(procrastinate_worker, purl, workers)
            assert _count_procrastinate(purl) == args.jobs, "procrastinate left jobs"
            rows.append((workers, simtui_rate, proc_rate))
    finally:
        if server is not None:
            server.cleanup()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"PostgreSQL {version // 10000}.{version % 10000}, {args.jobs} jobs per case, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'workers':>7}  {'simtui claims/s':>15}  {'procrastinate jobs/s':>20}  "
        f"{'ratio':>5}  target >= {TARGET_RATIO:.0f}x"
    )
    for workers, ours, theirs in rows:
        ratio = ours / theirs
        mark = "ok" if ratio >= TARGET_RATIO else "MISS"
        print(f"{workers:>7}  {ours:>15.0f}  {theirs:>20.0f}  {ratio:>5.2f}  {mark}")


if __name__ == "__main__":
    main()
