"""Throughput and latency of the HTTP API on this machine (a benchmark, not a test).

Starts `simcore serve` on 127.0.0.1 (a free port) over a fresh database, then drives it with a
fixed number of keep-alive connections per scenario, for each connection count asked:

  healthz       GET /healthz: the framework alone (no token, no database)
  get-run       GET /api/simulator/{sim}/runs/{run}: the runbook's poll (a cached token, its
                revocation generation read, one query); target: 1,000 req/s, p99 < 50 ms
  post-run      POST /api/simulator/{sim}/run with a new Idempotency-Key each time
                (a run queued + a journal entry: the write path)

  .venv/bin/python bench/bench_api.py                      # 8, 16 and 32 connections
  .venv/bin/python bench/bench_api.py --connections 16 --generator python
  .venv/bin/python bench/bench_api.py --processes 1 --clients 2

The load generator is `wrk` (Debian's package: `apt-get install wrk`) when it is on the PATH,
else asyncio generators of this file (bare HTTP/1.1 connections; httpx only to wait for the
server); `--generator` picks one, and the output says which ran. Both are closed loops: each
connection sends its next request when the answer to the last one is in. Server, load
generator and PostgreSQL share the machine's cores: on a 2-core machine the figures are those
of the whole stack on 2 cores, and a generator that costs less per request leaves more of them
to the server. wrk, written in C, costs a small fraction of the Python generators' CPU per
request (the "clients" column), which is the standard way of measuring a server; the Python
generators stay for machines without wrk. wrk bounds a scenario in time only (`--seconds`),
the Python generators in time and in requests (`--requests`).

The database is SIMTUI_DATABASE_URL if set (it must be a scratch one: runs are added), else an
embedded PostgreSQL in a temporary folder.

Besides rates and latencies, each scenario reports the CPU time spent per request by the
server's processes, by PostgreSQL (embedded server only: its processes are ours to read) and by
the load generators, and the load averages before and after it: on a shared machine the
throughput depends on what else runs, the CPU per request much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from simcore.auth import Principal
from simcore.config import Settings
from simcore.model import Role
from simcore.service import SimulatorService
from simcore.templates import get_template

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    sim_id: str
    run_id: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def prepare(settings: Settings) -> tuple[str, str, str]:
    """An ops token, a simulation and one run of it."""
    admin = Principal("bench", Role.OPS)
    with SimulatorService(settings) as service:
        token = service.create_token(admin, Role.OPS, name="bench").token
        sim = service.create_simulation(
            admin,
            {
                "name": "bench",
                "sdk_language": "node",
                "scenario": get_template("signature_mismatch").scenario,
            },
        )
        run = service.launch_run(admin, sim.id, 12345, "bench-run").run
    return token, str(sim.id), str(run.id)


# -- load generation --------------------------------------------------------------------------


class _Connection:
    """A bare HTTP/1.1 keep-alive connection: a load generator must cost far less per request
    than the server it measures, which a full client (httpx's async pool) does not on 2 cores.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def _request_bytes(target: Target, scenario: str, n: int, prefix: str) -> bytes:
    host = target.url.removeprefix("http://")
    auth = f"Authorization: Bearer {target.token}\r\n"
    if scenario == "healthz":
        return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    if scenario == "get-run":
        path = f"/api/simulator/{target.sim_id}/runs/{target.run_id}"
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()
    body = json.dumps({"seed": n}).encode()
    return (
        f"POST /api/simulator/{target.sim_id}/run HTTP/1.1\r\nHost: {host}\r\n{auth}"
        f"Idempotency-Key: bench-{prefix}-{n}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _drive(
    target: Target, scenario: str, connections: int, requests: int, seconds: float
) -> tuple[list[float], int]:
    host, _, port = target.url.removeprefix("http://").partition(":")
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.perf_counter() + seconds
    prefix = uuid.uuid4().hex[:8]
    # GET requests are the same bytes every time; POSTs differ by seed and key.
    fixed = _request_bytes(target, scenario, 0, prefix) if scenario != "post-run" else None

    async def worker() -> None:
        nonlocal remaining, errors
        conn = await _Connection.open(host, int(port))
        try:
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                n = remaining
                raw = fixed or _request_bytes(target, scenario, n, prefix)
                start = time.perf_counter()
                try:
                    status = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    conn.close()
                    conn = await _Connection.open(host, int(port))
                    continue
                if status < 300:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, errors


def _client_process(
    target: Target,
    scenario: str,
    connections: int,
    requests: int,
    seconds: float,
    out: multiprocessing.Queue[tuple[list[float], int, float, float]],
) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    latencies, errors = asyncio.run(_drive(target, scenario, connections, requests, seconds))
    out.put((latencies, errors, time.perf_counter() - start, time.process_time() - cpu))


@dataclass(frozen=True)
class Result:
    scenario: str
    generator: str
    processes: int
    connections: int
    ok: int
    errors: int
    seconds: float
    p50: float
    p95: float
    p99: float
    worst: float
    server_cpu: float
    """Seconds of CPU used by the server's processes during the scenario."""
    db_cpu: float | None
    client_cpu: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def per_request_us(self, seconds: float | None) -> str:
        if seconds is None or not self.ok + self.errors:
            return "-"
        return f"{seconds / (self.ok + self.errors) * 1e6:.0f}"


# -- wrk ----------------------------------------------------------------------------------------

WRK_SCRIPT = """
local prefix = "%(prefix)s"
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
end
%(request)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
end
"""

WRK_POST = """
local n = 0
local path = "%(path)s"
local auth = "Bearer %(token)s"
request = function()
  n = n + 1
  local body = '{"seed": ' .. n .. '}'
  return wrk.format("POST", path, {
    ["Authorization"] = auth,
    ["Idempotency-Key"] = "bench-" .. prefix .. "-" .. id .. "-" .. n,
    ["Content-Type"] = "application/json",
  }, body)
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _drive_wrk(
    wrk: str, target: Target, scenario: str, threads: int, connections: int, seconds: float
) -> tuple[int, int, float, tuple[float, float, float, float, float], float]:
    """ok, errors, seconds, (p50, p95, p99, max, mean) in ms, and wrk's CPU seconds."""
    prefix = uuid.uuid4().hex[:8]
    if scenario == "healthz":
        url, headers, request = f"{target.url}/healthz", [], ""
    elif scenario == "get-run":
        url = f"{target.url}/api/simulator/{target.sim_id}/runs/{target.run_id}"
        headers, request = ["-H", f"Authorization: Bearer {target.token}"], ""
    else:
        path = f"/api/simulator/{target.sim_id}/run"
        url, headers = target.url + path, []
        request = WRK_POST % {"path": path, "token": target.token}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"prefix": prefix, "request": request})
    threads = max(1, min(threads, connections))
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
    command += [*headers, "-s", script.name, url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    n, duration_us, *errs, p50, p95, p99, worst, mean = (int(float(x)) for x in line.split()[1:])
    connect, read, write, status, timeout = errs
    ms = (p50 / 1000, p95 / 1000, p99 / 1000, worst / 1000, mean / 1000)
    return n - status, connect + read + write + status + timeout, duration_us / 1e6, ms, cpu


# -- CPU accounting ---------------------------------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid: (parent pid, CPU seconds) of every process we may read."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return found


def tree_cpu(root: int | None) -> float | None:
    """CPU seconds used so far by a process and its descendants (live ones)."""
    if root is None or not Path("/proc").is_dir():
        return None
    stats = _proc_stats()
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(child for child, (ppid, _) in stats.items() if ppid == pid)
    return total


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_scenario(
    target: Target,
    scenario: str,
    *,
    generator: str,
    processes: int,
    clients: int,
    connections: int,
    requests: int,
    seconds: float,
    server_pid: int | None = None,
    db_pid: int | None = None,
) -> Result:
    load_before = os.getloadavg()
    server_start, db_start = tree_cpu(server_pid), tree_cpu(db_pid)
    if generator == "python":
        ok, errors, elapsed, (p50, p95, p99, worst), client_cpu = _drive_python(
            target, scenario, clients, connections, requests, seconds
        )
    else:
        ok, errors, elapsed, (p50, p95, p99, worst, _), client_cpu = _drive_wrk(
            generator, target, scenario, clients, connections, seconds
        )
    server_end, db_end = tree_cpu(server_pid), tree_cpu(db_pid)
    load_after = os.getloadavg()
    return Result(
        scenario,
        "wrk" if generator != "python" else "python",
        processes,
        connections,
        ok,
        errors,
        elapsed,
        p50,
        p95,
        p99,
        worst,
        (server_end or 0.0) - (server_start or 0.0),
        db_end - db_start if db_end is not None and db_start is not None else None,
        client_cpu,
        load_before,
        load_after,
    )


def _drive_python(
    target: Target, scenario: str, clients: int, connections: int, requests: int, seconds: float
) -> tuple[int, int, float, tuple[float, float, float, float], float]:
    """ok, errors, seconds, (p50, p95, p99, max) in ms, and the generators' CPU seconds."""
    queue: multiprocessing.Queue[tuple[list[float], int, float, float]] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_client_process,
            args=(target, scenario, connections // clients, requests // clients, seconds, queue),
        )
        for _ in range(clients)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join()
    latencies = sorted(x for r in results for x in r[0])

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return (
        len(latencies),
        sum(r[1] for r in results),
        max(r[2] for r in results),
        (
            statistics.median(latencies) * 1000 if latencies else float("nan"),
            pct(0.95),
            pct(0.99),
            latencies[-1] * 1000 if latencies else float("nan"),
        ),
        sum(r[3] for r in results),
    )


# -- the server -------------------------------------------------------------------------------


def start_server(env: dict[str, str], port: int, processes: int | None) -> subprocess.Popen[bytes]:
    command = [str(VENV_BIN / "simcore"), "serve", "--port", str(port), "--log-level", "warning"]
    if processes is not None:
        command += ["--processes", str(processes)]
    server = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise SystemExit("simcore serve exited during start-up")
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("simcore serve did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--processes", type=int, default=None, help="uvicorn processes (default: serve's own)"
    )
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--connections",
        default="8,16,32",
        help="concurrent connections: each count, comma-separated, is a row of each scenario",
    )
    parser.add_argument(
        "--requests", type=int, default=20_000, help="per scenario, at most (python generator)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario, at most")
    parser.add_argument(
        "--scenarios", default="healthz,get-run,post-run", help="comma-separated subset"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if on the PATH (auto), or this file's asyncio generators",
    )
    args = parser.parse_args()
    connection_counts = [int(c) for c in str(args.connections).split(",")]
    generator = "python"
    if args.generator != "python":
        found = wrk_path()
        if found is None and args.generator == "wrk":
            raise SystemExit("wrk is not on the PATH (Debian: apt-get install wrk)")
        generator = found or "python"

    scratch = Path(tempfile.mkdtemp(prefix="simbench-", dir="/tmp"))
    url = os.environ.get("SIMTUI_DATABASE_URL")
    embedded_db = url is None
    settings = Settings(database_url=url, data_dir=scratch / "data")
    try:
        with SimulatorService(settings) as service:
            service.start()
            url = service.db.url
        token, sim_id, run_id = prepare(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")}
        env.update(SIMTUI_DATABASE_URL=url, SIMTUI_DATA_DIR=str(scratch / "data"))
        port = free_port()
        server = start_server(env, port, args.processes)
        processes = args.processes or default_processes()
        db_pid = postmaster_pid(scratch / "data") if embedded_db else None
        try:
            target = Target(f"http://127.0.0.1:{port}", token, sim_id, run_id)
            rows = [
                run_scenario(
                    target,
                    scenario,
                    generator=generator,
                    processes=processes,
                    clients=args.clients,
                    connections=connections,
                    requests=args.requests,
                    seconds=args.seconds,
                    server_pid=server.pid,
                    db_pid=db_pid,
                )
                for scenario in args.scenarios.split(",")
                for connections in connection_counts
            ]
        finally:
            server.terminate()
            server.wait(30)
    finally:
        if os.environ.get("SIMTUI_DATABASE_URL") is None:
            from simcore.store import embedded

            embedded.stop(scratch / "data")
        shutil.rmtree(scratch, ignore_errors=True)

    if generator == "python":
        bounds = f"at most {args.requests} requests or {args.seconds:g} s per scenario"
        described = f"this file's asyncio generators, {args.clients} process(es)"
    else:
        bounds = f"{args.seconds:g} s per scenario"
        described = f"wrk ({generator}), {args.clients} thread(s)"
    print(f"\n{os.cpu_count()} CPUs; load generator: {described}; {bounds}\n")
    header = (
        f"{'scenario':<10}{'procs':>6}{'conns':>6}{'ok':>8}{'errors':>7}{'req/s':>9}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  target"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.scenario:<10}{r.processes:>6}{r.connections:>6}{r.ok:>8}{r.errors:>7}"
            f"{r.rate:>9.0f}{r.p50:>9.1f}{r.p95:>9.1f}{r.p99:>9.1f}{r.worst:>9.1f}  "
            f"{target_verdict(r)}"
        )
    print(
        f"\nCPU per request (us) and load averages (1, 5, 15 min) around each scenario\n"
        f"{'scenario':<10}{'conns':>6}{'server':>8}{'postgres':>10}{'clients':>9}"
        "   load before -> after"
    )
    for r in rows:
        before = ", ".join(f"{x:.2f}" for x in r.load_before)
        after = ", ".join(f"{x:.2f}" for x in r.load_after)
        print(
            f"{r.scenario:<10}{r.connections:>6}{r.per_request_us(r.server_cpu):>8}"
            f"{r.per_request_us(r.db_cpu):>10}{r.per_request_us(r.client_cpu):>9}"
            f"   {before} -> {after}"
        )
    busiest = max((max(r.load_before[0], r.load_after[0]) for r in rows), default=0.0)
    cpus = os.cpu_count() or 1
    if busiest > cpus:
        print(
            f"\nThe machine was busy (load up to {busiest:.1f} on {cpus} CPUs): the rates are "
            "below what it gives idle; compare the CPU per request."
        )
    return 0


TARGET_RATE = 1000.0
TARGET_P99_MS = 50.0


def target_verdict(r: Result) -> str:
    """Issue #7's target, for the runbook's poll: at least 1,000 req/s with p99 under 50 ms."""
    if r.scenario != "get-run":
        return ""
    misses = []
    if r.rate < TARGET_RATE:
        misses.append("rate")
    if not r.p99 < TARGET_P99_MS:
        misses.append("p99")
    return "met" if not misses else "MISSED (" + ", ".join(misses) + ")"


def default_processes() -> int:
    """What `simcore serve` starts when not told (its --processes default)."""
    try:
        from simcore.commands.serve import default_processes as serve_default
    except ImportError:  # an older simcore (to compare with): one process
        return 1
    return serve_default()


if __name__ == "__main__":
    sys.exit(main())
