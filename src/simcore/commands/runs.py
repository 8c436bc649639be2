"""`simcore runs list|show|logs|cancel`, and the helpers `sim run --wait` uses."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

from simcore import queue
from simcore.auth import Principal
from simcore.commands._common import age, local_service, percent, print_json, table
from simcore.errors import InvalidInput
from simcore.facade import Simulator
from simcore.model import Run, RunStatus
from simcore.service import RunDetail, SimulatorService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("runs", help="runs: list, show, logs, cancel")
    cmds = parser.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    lst = cmds.add_parser("list", help="recent runs")
    lst.add_argument("--status", choices=[s.value for s in RunStatus])
    lst.add_argument("--simulation")
    lst.add_argument("--limit", type=int, default=50)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)

    show = cmds.add_parser("show", help="a run: status, metrics, verdict, journal")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    logs = cmds.add_parser("logs", help="the run's sandbox log")
    logs.add_argument("run_id")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines until the run ends"
    )
    logs.set_defaults(handler=_logs)

    artifact = cmds.add_parser("artifact", help="fetch the archived log (or report) of a run")
    artifact.add_argument("run_id")
    artifact.add_argument("--report", action="store_true", help="the report JSON, not the log")
    artifact.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    artifact.set_defaults(handler=_artifact)

    cancel = cmds.add_parser("cancel", help="cancel a queued or running run")
    cancel.add_argument("run_id")
    cancel.set_defaults(handler=_cancel)


def _list(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        runs = service.list_runs(
            who,
            status=RunStatus(args.status) if args.status else None,
            simulation_id=args.simulation,
            limit=args.limit,
        )
    if args.json:
        print_json([r.model_dump(mode="json") for r in runs])
        return 0
    print(
        table(
            ["id", "status", "simulation", "seed", "success", "duration", "age"],
            [
                (
                    r.id,
                    r.status.value,
                    str(r.simulation_id)[:8],
                    r.seed,
                    percent((r.metrics or {}).get("success_rate")),
                    f"{r.duration_ms / 1000:.1f}s" if r.duration_ms is not None else None,
                    age(r.run_at),
                )
                for r in runs
            ],
        )
    )
    return 0


def print_run(detail: RunDetail) -> None:
    run, sim = detail.run, detail.simulation
    print(f"run        {run.id}")
    print(f"simulation {sim.id}  {sim.name} ({sim.sdk_language.value}, {sim.scenario.error.value})")
    print(f"status     {run.status.value}   seed {run.seed}   attempts {run.attempts}")
    if run.error_message:
        print(f"message    {run.error_message}")
    for reason in run.reasons:
        print(f"reason     {reason}")
    metrics = run.metrics or {}
    if metrics:
        base = metrics.get("baseline") or {}
        keys = [
            "success_rate",
            "avg_latency_ms",
            "p95_latency_ms",
            "total_requests",
            "failed_requests",
            "retries",
            "duplicate_charges",
            "wrong_payments",
            "patch_invocations",
            "patch_errors",
        ]
        rows = [
            (k, base.get(k, "-"), metrics.get(k, "-")) for k in keys if k in metrics or k in base
        ]
        print()
        print(table(["metric", "baseline", "patched"], rows))
        if "regressions" in metrics:
            print(
                f"regressions {metrics['regressions']}   improvement "
                f"{metrics.get('improvement', '-')}"
            )
    if run.artifact_s3_key:
        print(f"artifact   {run.artifact_s3_key}")
    print()
    print("journal")
    for e in detail.journal:
        print(f"  {e.created_at:%H:%M:%S}  {e.action:<13} {e.actor:<20} {_short(e.details)}")


def _short(details: dict[str, object]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, [], ""))
    return text if len(text) <= 100 else text[:99] + "…"


def _show(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        detail = service.get_run(who, args.run_id)
    if args.json:
        from simcore import journal

        print_json(
            {
                "run": detail.run.model_dump(mode="json"),
                "simulation": detail.simulation.model_dump(mode="json"),
                "journal": [journal.entry_to_json(e) for e in detail.journal],
            }
        )
    else:
        print_run(detail)
    return 0


def _logs(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        last = -1
        while True:
            for seq, line in service.read_log(who, args.run_id, last):
                print(line)
                last = seq
            sys.stdout.flush()
            if not args.follow:
                return 0
            run = service.get_run(who, args.run_id).run
            if run.status.terminal:
                for seq, line in service.read_log(who, args.run_id, last):
                    print(line)
                    last = seq
                return 0
            time.sleep(0.3)


def _artifact(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        if not isinstance(service, SimulatorService):
            raise InvalidInput("artifact", "fetching artifacts needs local mode for now")
        data = service.get_artifact(who, args.run_id, "report" if args.report else "log")
    if args.out:
        try:
            args.out.write_bytes(data)
        except OSError as exc:
            raise InvalidInput("out", f"cannot write {args.out}: {exc.strerror}") from None
        print(f"{args.out}: {len(data)} bytes")
    else:
        sys.stdout.buffer.write(data)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        run = service.cancel_run(who, args.run_id)
    print(f"run {run.id}: {'cancelled' if run.status.terminal else 'cancel requested'}")
    return 0


def wait_for(service: Simulator, who: Principal, run_id: UUID, poll_seconds: float = 0.2) -> Run:
    """Wait until the run is final; in local mode, execute it here if no worker is running."""
    worker = None
    thread = None
    if isinstance(service, SimulatorService):
        with service.db.transaction() as conn:
            alive = queue.live_workers(conn)
        if not alive:
            from simcore.executor import make_worker

            print("no worker is running: executing the run here", file=sys.stderr)
            worker = make_worker(
                service.settings, service.db, poll_seconds=0.2, on_event=lambda msg: None
            )
            thread = threading.Thread(target=worker.run, name="local-worker", daemon=True)
            thread.start()
    try:
        while True:
            run = service.get_run(who, run_id).run
            if run.status.terminal:
                return run
            time.sleep(poll_seconds)
    finally:
        if worker is not None and thread is not None:
            worker.stop()
            thread.join(timeout=30)
