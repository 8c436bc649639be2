"""Throughput and latency of the HTTP API on this machine (a benchmark, not a test).

Starts `simcore serve` on 127.0.0.1 (a free port) over a fresh database, then drives it from
asyncio load generators (bare HTTP/1.1 keep-alive connections; httpx only to wait for the
server) with a fixed number of connections, each scenario bounded in requests and in time:

  healthz       GET /healthz: the framework alone (no token, no database)
  get-run       GET /api/simulator/{sim}/runs/{run}: the runbook's poll (token + 3 queries)
  post-run      POST /api/simulator/{sim}/run with a new Idempotency-Key each time
                (a run queued + a journal entry: the write path)

  .venv/bin/python bench/bench_api.py                      # 1 server process
  .venv/bin/python bench/bench_api.py --processes 2 --clients 2

The database is SIMTUI_DATABASE_URL if set (it must be a scratch one: runs are added), else an
embedded PostgreSQL in a temporary folder. Server, load generators and PostgreSQL share the
machine's cores: on a 2-core machine the figures are those of the whole stack on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
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
    out: multiprocessing.Queue[tuple[list[float], int, float]],
) -> None:
    start = time.perf_counter()
    latencies, errors = asyncio.run(_drive(target, scenario, connections, requests, seconds))
    out.put((latencies, errors, time.perf_counter() - start))


@dataclass(frozen=True)
class Result:
    scenario: str
    processes: int
    connections: int
    ok: int
    errors: int
    seconds: float
    p50: float
    p95: float
    p99: float
    worst: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def run_scenario(
    target: Target,
    scenario: str,
    *,
    processes: int,
    clients: int,
    connections: int,
    requests: int,
    seconds: float,
) -> Result:
    queue: multiprocessing.Queue[tuple[list[float], int, float]] = multiprocessing.Queue()
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
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Result(
        scenario,
        processes,
        connections,
        len(latencies),
        errors,
        elapsed,
        statistics.median(latencies) * 1000 if latencies else float("nan"),
        pct(0.95),
        pct(0.99),
        latencies[-1] * 1000 if latencies else float("nan"),
    )


# -- the server -------------------------------------------------------------------------------


def start_server(env: dict[str, str], port: int, processes: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            str(VENV_BIN / "simcore"),
            "serve",
            "--port",
            str(port),
            "--processes",
            str(processes),
            "--log-level",
            "warning",
        ],
        env=env,
    )
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
    parser.add_argument("--processes", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--requests", type=int, default=20_000, help="per scenario, at most")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario, at most")
    parser.add_argument(
        "--scenarios", default="healthz,get-run,post-run", help="comma-separated subset"
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="simbench-", dir="/tmp"))
    url = os.environ.get("SIMTUI_DATABASE_URL")
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
        try:
            target = Target(f"http://127.0.0.1:{port}", token, sim_id, run_id)
            rows = [
                run_scenario(
                    target,
                    scenario,
                    processes=args.processes,
                    clients=args.clients,
                    connections=args.connections,
                    requests=args.requests,
                    seconds=args.seconds,
                )
                for scenario in args.scenarios.split(",")
            ]
        finally:
            server.terminate()
            server.wait(30)
    finally:
        if os.environ.get("SIMTUI_DATABASE_URL") is None:
            from simcore.store import embedded

            embedded.stop(scratch / "data")
        shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"\n{os.cpu_count()} CPUs; {args.clients} load generator process(es); "
        f"at most {args.requests} requests or {args.seconds:g} s per scenario\n"
    )
    header = (
        f"{'scenario':<10}{'procs':>6}{'conns':>6}{'ok':>8}{'errors':>7}{'req/s':>9}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.scenario:<10}{r.processes:>6}{r.connections:>6}{r.ok:>8}{r.errors:>7}"
            f"{r.rate:>9.0f}{r.p50:>9.1f}{r.p95:>9.1f}{r.p99:>9.1f}{r.worst:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
