"""`simcore worker`: execute queued runs until stopped (SIGTERM/SIGINT: graceful)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from datetime import timedelta
from types import FrameType

from simcore.config import load_settings
from simcore.errors import InvalidInput
from simcore.service import SimulatorService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("worker", help="execute queued runs")
    parser.add_argument("--concurrency", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="a run whose worker stops renewing for this long is taken back",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=20.0,
        help="on SIGTERM, how long runs in hand may finish before release",
    )
    parser.add_argument(
        "--exit-when-idle", action="store_true", help="stop when the queue is empty"
    )
    parser.add_argument("--worker-id")
    parser.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    if not 1 <= args.concurrency <= 64:
        raise InvalidInput("concurrency", "must be from 1 to 64")
    if not 1.0 <= args.lease_seconds <= 3600:
        raise InvalidInput("lease_seconds", "must be from 1 to 3600")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    from simcore.executor import make_worker

    settings = load_settings()
    service = SimulatorService(settings).start()
    worker = make_worker(
        settings,
        service.db,
        worker_id=args.worker_id,
        concurrency=args.concurrency,
        lease=timedelta(seconds=args.lease_seconds),
        grace_seconds=args.grace_seconds,
        exit_when_idle=args.exit_when_idle,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.say(f"received {signal.Signals(signum).name}: finishing the runs in hand")
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.run()
    finally:
        service.close()
    return 0
