"""Claims per second with a no-op executor: simtui's queue against procrastinate.

Both run on the same PostgreSQL server (an embedded one started here, or --admin-url), each
in its own database, in the same benchmark run, with 1 and 4 worker processes. A simtui
"claim" is the real path: a ``simcore.worker.Worker`` (one slot per process) with the no-op
executor, so each run is claimed, journaled (started, completed), finished, announced and
sealed into the journal's chain exactly as in production; a procrastinate job is a no-op task.
After each simtui case the journal is verified (outside the timing): every entry sealed,
chain intact.

A case's rate is its jobs over the span that the database recorded from the first job taken
to the last one finished (simtui: the runs' started_at, and their completed_at or the
journal's last seal, whichever is later; procrastinate: its jobs' "started" and "succeeded"
events; all are transaction start times). The workers' start-up (connecting, registering)
and shut-down (closing pools, leaving the interpreter) are left out: they cost 0.25-0.36 s
per case whatever the number of jobs (measured with 3,000 and 10,000 jobs), and a queue that
empties its jobs faster would be charged them on a shorter span. The rate over the whole
life of the worker processes is printed as well.

The two queues are measured in pairs, ``--rounds`` times, the order alternating from one
round to the next; the ratio printed is the median of the rounds' ratios. On a shared or
virtual machine the CPU's speed drifts within a minute (procrastinate's own CPU per job moved
by a third between two runs of this benchmark): a pair measured back to back sees about the
same machine, and the median leaves out a round that did not. At 4 workers, single rounds'
ratios ranged from 2.4 to 4.4 in runs whose medians were 3.3 to 4.1: five rounds by default.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/bench_queue.py [--jobs 3000] [--rounds 5] [--admin-url URL]

It exits 1 when a target is missed, like the other benchmarks, and 2 on bad arguments (an
--admin-url it cannot connect to, or whose role may not create databases, is named as such).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg.types.json import Jsonb

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
    from simcore.templates import get_template

    with Database(Settings(database_url=url)) as db:
        migrate.migrate(db)
    with psycopg.connect(url, autocommit=True) as conn:
        # The runbook's "Timeout Network" template: a worker loads it like any simulation.
        scenario = get_template("timeout").scenario.to_json()
        sim = conn.execute(
            "INSERT INTO sdk_simulations (tenant_type, name, sdk_language, scenario) VALUES "
            "('internal', 'bench', 'python', %s) RETURNING id",
            (Jsonb(scenario),),
        ).fetchone()
        assert sim is not None
        conn.execute(
            "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed, run_at) "
            "SELECT %s, 'internal', g, now() - (%s - g) * interval '1 millisecond' "
            "FROM generate_series(1, %s) g",
            (sim[0], jobs, jobs),
        )


def simtui_worker(url: str, ready: Any, go: Any, out: Any) -> None:
    from simcore.config import Settings
    from simcore.store import Database
    from simcore.worker import NoopExecutor, Worker

    db = Database(Settings(database_url=url, db_pool_max=2))
    worker = Worker(
        db,
        NoopExecutor(),
        worker_id=f"bench-{os.getpid()}",
        exit_when_idle=True,
        on_event=lambda message: None,
    )
    db.pool  # noqa: B018 - connect before the clock starts
    ready.set()
    go.wait()
    cpu = time.process_time()
    worker.run()
    db.close()
    out.put(time.process_time() - cpu)


def check_simtui(url: str, jobs: int) -> None:
    from simcore import journal
    from simcore.config import Settings
    from simcore.store import Database

    with psycopg.connect(url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM sdk_simulation_runs WHERE status <> 'success'"
        ).fetchone()
        unsealed = conn.execute(
            "SELECT count(*) FROM sdk_simulation_journal WHERE hash IS NULL"
        ).fetchone()
    assert left == (0,), f"simtui left {left} runs unfinished"
    assert unsealed == (0,), f"the workers left {unsealed} journal entries unsealed"
    with Database(Settings(database_url=url)) as db:
        result = journal.verify(db, seal_first=False)
    assert result.ok and result.checked == 2 * jobs, result.describe()


def span_simtui(url: str) -> float:
    with psycopg.connect(url) as conn:
        # Up to the journal's last seal too: the runs' entries are part of the work, and the
        # workers seal the last ones as they stop.
        row = conn.execute(
            "SELECT extract(epoch FROM greatest(max(completed_at), "
            "(SELECT max(sealed_at) FROM sdk_simulation_journal_seals)) - min(started_at)) "
            "FROM sdk_simulation_runs"
        ).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0])


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

    cpu = 0.0

    async def main() -> None:
        nonlocal cpu
        async with app.open_async():
            ready.set()
            go.wait()
            cpu = time.process_time()
            await app.run_worker_async(
                wait=False, concurrency=1, install_signal_handlers=False, listen_notify=False
            )
            cpu = time.process_time() - cpu

    asyncio.run(main())
    out.put(cpu)


def _count_procrastinate(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        ).fetchone()
    return int(row[0]) if row else 0


def span_procrastinate(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') "
            "- min(at) FILTER (WHERE type = 'started')) FROM procrastinate_events"
        ).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0])


# -- harness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    span: float
    """Seconds from the first job taken to the last one finished, by the database's clock."""
    seconds: float
    """Seconds from the start signal to the end of the last worker process."""
    client_cpu: float
    """CPU seconds of the worker processes, from the start signal to their end."""
    server_cpu: float | None
    """CPU seconds of the server's backends (embedded server only)."""

    def per_job_ms(self, jobs: int) -> str:
        if self.server_cpu is None:
            return f"{1000 * self.client_cpu / jobs:.2f}+?"
        return f"{1000 * self.client_cpu / jobs:.2f}+{1000 * self.server_cpu / jobs:.2f}"


def _server_cpu(pgdata: Path | None, admin: str, url: str) -> float | None:
    """CPU time of the server's exited children: the backends of a finished case among them."""
    if pgdata is None:
        return None
    dbname = conninfo.conninfo_to_dict(url)["dbname"]
    deadline = time.monotonic() + 10
    with psycopg.connect(admin, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            ).fetchone()
            if row == (0,):
                break
            time.sleep(0.05)
    postmaster = (pgdata / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    # cutime and cstime: fields 16 and 17 of stat, counted from 1 with pid and comm.
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def measure(target: Any, url: str, workers: int, admin: str, pgdata: Path | None) -> Case:
    server_before = _server_cpu(pgdata, admin, url)
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
    seconds = time.perf_counter() - start
    client = sum(out.get(timeout=10) for _ in procs)
    server_after = _server_cpu(pgdata, admin, url)
    server = None if server_before is None or server_after is None else server_after - server_before
    return Case(0.0, seconds, client, server)


def commit_rate(url: str, commits: int = 400) -> float:
    """Durable commits per second on one connection: one tiny INSERT each, nothing else.

    A queue that commits once per job (simtui: the finish of one run and the claim of the
    next in one statement) cannot go faster than this with one worker; procrastinate commits
    at least twice per job (fetch, finish). The ratio of the two rates is bounded by the
    ratio of commits per job when the flush dominates, whatever either side's CPU costs.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        # A logged table: a transaction that wrote no WAL (a temporary table's) skips the
        # flush at commit, and the figure would be a round trip alone.
        conn.execute("DROP TABLE IF EXISTS bench_flush_probe")
        conn.execute("CREATE TABLE bench_flush_probe (n int)")
        conn.execute("INSERT INTO bench_flush_probe VALUES (0)")  # warm the plan and table
        start = time.perf_counter()
        for n in range(commits):
            conn.execute("INSERT INTO bench_flush_probe VALUES (%s)", (n,))
        seconds = time.perf_counter() - start
        conn.execute("DROP TABLE bench_flush_probe")
    return commits / seconds


def start_embedded() -> tuple[str, Any, Path]:
    folder = Path(tempfile.mkdtemp(prefix="simbench-", dir="/tmp"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    return server.get_uri(), server, folder


def _drop_db(admin: str, name: str) -> None:
    # Dropped after its case: autovacuum would otherwise visit the tables of finished cases
    # while later ones run, and take CPU from whichever queue is measured then.
    with psycopg.connect(admin, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def check_procrastinate(url: str, jobs: int) -> None:
    assert _count_procrastinate(url) == jobs, "procrastinate left jobs"


@dataclass(frozen=True)
class Queue:
    """What measuring one queue takes: set its database up, run its workers, check the end."""

    name: str
    prepare: Any
    worker: Any
    check: Any
    span: Any

    def case(self, admin: str, jobs: int, workers: int, pgdata: Path | None) -> Case:
        """One measurement, in a database of its own, dropped afterwards."""
        db_name = f"bench_{self.name}_{uuid.uuid4().hex[:6]}"
        url = _fresh_db(admin, db_name)
        try:
            self.prepare(url, jobs)
            case = measure(self.worker, url, workers, admin, pgdata)
            self.check(url, jobs)
            case = replace(case, span=self.span(url))
        finally:
            _drop_db(admin, db_name)
        return case


SIMTUI = Queue("simtui", prepare_simtui, simtui_worker, check_simtui, span_simtui)
PROCRASTINATE = Queue(
    "procrastinate",
    prepare_procrastinate,
    procrastinate_worker,
    check_procrastinate,
    span_procrastinate,
)


def _median_case(cases: list[Case]) -> Case:
    """The round of median speed (its CPU figures belong to it)."""
    return sorted(cases, key=lambda c: c.span)[len(cases) // 2]


def _admin_problem(url: str) -> str | None:
    """Why ``url`` cannot serve the benchmark (each case creates and drops a database)."""
    try:
        conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        return f"not a connection string: {exc}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT current_user, rolsuper OR rolcreatedb FROM pg_roles "
                "WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as exc:
        return f"cannot connect: {str(exc).strip().splitlines()[0]}"
    if row is None or not row[1]:
        return f"role {row[0] if row else '?'} may not create databases"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="pairs of cases per worker count")
    parser.add_argument("--admin-url", help="superuser URL of a server to use instead")
    args = parser.parse_args()
    if args.rounds < 1 or args.jobs < 1:
        parser.error("--jobs and --rounds must be at least 1")
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        parser.error("procrastinate is not installed: .venv/bin/pip install -e '.[bench]'")
    if args.admin_url is not None:
        problem = _admin_problem(args.admin_url)
        if problem:
            parser.error(f"--admin-url: {problem}")
    server = folder = pgdata = None
    admin = args.admin_url
    if admin is None:
        admin, server, folder = start_embedded()
        pgdata = folder / "pgdata"
    rows = []
    try:
        with psycopg.connect(admin) as conn:
            version = conn.info.server_version
        load_before = os.getloadavg()
        flushes = commit_rate(admin)
        for workers in (1, 4):
            ours: list[Case] = []
            theirs: list[Case] = []
            for round_ in range(args.rounds):
                pair = [(SIMTUI, ours), (PROCRASTINATE, theirs)]
                for queue, into in pair if round_ % 2 == 0 else pair[::-1]:
                    into.append(queue.case(admin, args.jobs, workers, pgdata))
            rows.append((workers, ours, theirs))
    finally:
        if server is not None:
            server.cleanup()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"PostgreSQL {version // 10000}.{version % 10000}, {args.jobs} jobs per case, "
        f"{args.rounds} rounds, {os.cpu_count()} cores, load average before "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"one connection's durable commits/s on this server: {flushes:.0f} "
        f"({1000 / flushes:.2f} ms each: the ceiling of any queue committing once per job "
        "with one worker)"
    )
    print(
        f"{'workers':>7}  {'simtui claims/s':>15}  {'procrastinate jobs/s':>20}  "
        f"{'ratio':>5}  target >= {TARGET_RATIO:.0f}x   rounds' ratios             "
        "whole processes: ratio  CPU ms/job, client+server: simtui | procrastinate"
    )
    met = True
    for workers, ours, theirs in rows:
        ratios = [t.span / o.span for o, t in zip(ours, theirs, strict=True)]
        whole = statistics.median(t.seconds / o.seconds for o, t in zip(ours, theirs, strict=True))
        ratio = statistics.median(ratios)
        mine, other = _median_case(ours), _median_case(theirs)
        met = met and ratio >= TARGET_RATIO
        mark = "ok" if ratio >= TARGET_RATIO else "MISS"
        print(
            f"{workers:>7}  {args.jobs / mine.span:>15.0f}  "
            f"{args.jobs / other.span:>20.0f}  {ratio:>5.2f}  {mark:<13}  "
            f"{' '.join(f'{r:.2f}' for r in ratios):<25}  {whole:>22.2f}  "
            f"{mine.per_job_ms(args.jobs)} | {other.per_job_ms(args.jobs)}"
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
