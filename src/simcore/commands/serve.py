"""`simcore serve`: the runbook's HTTP API (uvicorn), on port 8140 as in the runbook."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Any

from simcore.errors import InvalidInput, SimError

DEFAULT_PORT = 8140
MAX_DEFAULT_PROCESSES = 4


def default_processes() -> int:
    """One uvicorn process per core this process may run on, at most MAX_DEFAULT_PROCESSES.

    A process answers on one core at a time (the GIL); on a 2-core machine a second process
    nearly doubles the requests per second of the token-checked GET routes.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_PROCESSES))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="serve the HTTP API (runbook: port 8140)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default 8140")
    parser.add_argument(
        "--workers-in-process",
        type=int,
        default=0,
        metavar="N",
        help="also execute queued runs here, N at a time (default 0: a separate "
        "`simcore worker` does)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="uvicorn worker processes answering requests (default: one per core, at most "
        f"{MAX_DEFAULT_PROCESSES}; 1 with --workers-in-process)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
    )
    parser.set_defaults(handler=_serve)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise InvalidInput("port", "must be from 1 to 65535")
    if not 0 <= args.workers_in_process <= 64:
        raise InvalidInput("workers-in-process", "must be from 0 to 64")
    if args.processes is None:
        # Each process would run its own in-process workers: keep that count what was asked.
        args.processes = 1 if args.workers_in_process else default_processes()
    if not 1 <= args.processes <= 32:
        raise InvalidInput("processes", "must be from 1 to 32")
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from simcore.api.app import WORKERS_ENV, create_app
    from simcore.config import load_settings

    settings = load_settings()
    if args.workers_in_process:
        # Fail now, in one line, rather than in a background thread after start-up.
        from simcore.executor import make_executor

        make_executor(settings)
    if not _is_loopback(args.host):
        print(
            f"simcore serve: listening on {args.host} over plain HTTP: bearer tokens cross the "
            "network in clear unless TLS terminates in front of it",
            file=sys.stderr,
        )
    sock = listen(args.host, args.port)
    common: dict[str, Any] = {
        # For uvicorn's start-up message: it serves the socket bound above.
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "ws": "none",
        "lifespan": "on",
        # httptools, each fixed-length response in one write (see simcore.api.protocol).
        "http": http_protocol(),
        # uvicorn logs each request at INFO: below that level it would format them for nothing.
        "access_log": args.log_level in ("info", "debug"),
        # Live log streams stay open; they must not hold a shutdown for long.
        "timeout_graceful_shutdown": 10,
    }
    if args.processes == 1:
        app = create_app(settings, workers_in_process=args.workers_in_process, freeze_gc=True)
        uvicorn.Server(uvicorn.Config(app, **common)).run(sockets=[sock])
        return 0
    # Each process builds its own app (and its own pool) from the environment.
    os.environ[WORKERS_ENV] = str(args.workers_in_process)
    config = uvicorn.Config(
        "simcore.api.app:create_app_from_env", factory=True, workers=args.processes, **common
    )
    Multiprocess(config, sockets=[sock]).run()
    return 0


def http_protocol() -> str:
    """uvicorn's httptools protocol, writing each response in one piece; uvicorn's own choice
    ("auto") where httptools is missing."""
    try:
        from simcore.api.protocol import HTTP_PROTOCOL
    except ImportError:
        return "auto"
    return HTTP_PROTOCOL


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn.

    It is created as IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY)
    only on sockets that say they are TCP, and uvicorn's own multi-process socket does not.
    Headers and body leave in two writes, so without it each keep-alive response waits about
    40 ms for the client's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SimError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock
