"""`simcore rollout stage|promote|rollback|status|evaluate|observe RUN_ID`: after approval.

Local mode or API mode (SIMTUI_API_URL and SIMTUI_TOKEN) alike, through ``Simulator``."""

from __future__ import annotations

import argparse

from simcore import rollout
from simcore.commands._common import local_service, percent, print_json, table
from simcore.facade import Simulator
from simcore.service import SimulatorService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "rollout", help="after approval: stage, promote, roll back; the canary's state"
    )
    cmds = parser.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    for name, handler, what in (
        ("stage", _stage, "approved -> staged at the plan's first step (runs the hook)"),
        ("promote", _promote, "staged -> the next step; 100%% is deployed (runs the hook)"),
        ("rollback", _rollback, "staged or deployed -> rolled_back at 0%% (runs the hook)"),
    ):
        cmd = cmds.add_parser(name, help=what)
        cmd.add_argument("run_id")
        cmd.add_argument("--reason", "-m", required=True, help="why (goes to the journal)")
        cmd.add_argument("--json", action="store_true")
        cmd.set_defaults(handler=handler)

    status = cmds.add_parser("status", help="state, plan, latest observations, the rule's view")
    status.add_argument("run_id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    evaluate = cmds.add_parser(
        "evaluate",
        help="scrape the canary's metrics (when SIMTUI_CANARY_METRICS_URL is set) and apply "
        "the promotion rule",
    )
    evaluate.add_argument("run_id")
    evaluate.add_argument(
        "--auto", action="store_true", help="carry the decision out: promote or roll back"
    )
    evaluate.add_argument(
        "--no-scrape", action="store_true", help="use the stored observations only"
    )
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=_evaluate)

    observe = cmds.add_parser("observe", help="record one observation of the canary by hand")
    observe.add_argument("run_id")
    observe.add_argument("--success-rate", type=float, required=True, help="a ratio, 0 to 1")
    observe.add_argument("--requests", type=int)
    observe.add_argument("--json", action="store_true")
    observe.set_defaults(handler=_observe)


def _scrapes(service: Simulator, asked: bool) -> bool:
    """Scrape the canary's metrics first: local mode with SIMTUI_CANARY_METRICS_URL set.

    Through the API the server's rule decides on the observations it holds; scraping is
    done where the metrics URL is configured (`simcore rollout evaluate` on the server).
    """
    return (
        asked
        and isinstance(service, SimulatorService)
        and bool(service.settings.canary_metrics_url)
    )


def _plan(steps: tuple[int, ...]) -> str:
    return " -> ".join(f"{s}%" for s in steps)


def _print_transition(result: rollout.TransitionResult) -> None:
    r = result.rollout
    print(
        f"{r.status.value}: run {r.run_id}, patch {r.patch_slug or r.patch_id} "
        f"{result.from_status.value} {result.from_percent}% -> {r.status.value} "
        f"{r.rollout_percentage}% (plan {_plan(r.rollout_steps)})"
    )
    hook = result.hook
    print(f"hook: {hook.output}" if hook.dry_run else f"hook: {hook.status_text}")
    if not hook.dry_run and hook.output.strip():
        print(hook.output.rstrip())


def _transition(args: argparse.Namespace, action: rollout.RolloutAction) -> int:
    with local_service() as (service, who):
        method = {
            rollout.RolloutAction.STAGE: service.stage_patch,
            rollout.RolloutAction.PROMOTE: service.promote_patch,
            rollout.RolloutAction.ROLLBACK: service.rollback_patch,
        }[action]
        result = method(who, args.run_id, args.reason)
    if args.json:
        print_json(result.to_json())
    else:
        _print_transition(result)
    return 0


def _stage(args: argparse.Namespace) -> int:
    return _transition(args, rollout.RolloutAction.STAGE)


def _promote(args: argparse.Namespace) -> int:
    return _transition(args, rollout.RolloutAction.PROMOTE)


def _rollback(args: argparse.Namespace) -> int:
    return _transition(args, rollout.RolloutAction.ROLLBACK)


def _print_report(report: rollout.CanaryReport) -> None:
    r = report.rollout
    where = f"{r.status.value} at {r.rollout_percentage}%"
    if r.next_percentage is not None:
        where += f", next {r.next_percentage}%"
    rows: list[tuple[str, object]] = [
        ("run", r.run_id),
        ("patch", f"{r.patch_slug or r.patch_id} ({r.sdk_language})"),
        ("status", where),
        ("plan", _plan(r.rollout_steps)),
    ]
    if r.last_transition_by:
        rows.append(("last", f"{r.last_transition_by}: {r.last_transition_reason}"))
    if r.step_started_at:
        rows.append(("step since", r.step_started_at.isoformat(timespec="seconds")))
    if r.last_hook_status:
        rows.append(("hook", r.last_hook_status))
    for label, value in rows:
        print(f"{label:<11}{value}")
    e = report.evaluation
    if e is not None:
        print(f"{'decision':<11}{e.decision.value}: {e.reason}")
        print(
            f"{'figures':<11}{e.in_window} in the last window ({e.observations} this step), "
            f"min {percent(e.min_rate)}, mean {percent(e.mean_rate)}, "
            f"{e.consecutive_breaches} consecutive at or below "
            f"{percent(e.rule.min_success_rate)}"
        )
    if report.observations:
        print()
        print(
            table(
                ["observed at", "success", "requests", "at %", "source", "by"],
                [
                    (
                        o.observed_at.isoformat(timespec="seconds"),
                        percent(o.success_rate),
                        o.requests,
                        o.rollout_percentage,
                        o.source,
                        o.recorded_by,
                    )
                    for o in report.observations
                ],
            )
        )
    if report.applied is not None:
        print()
        _print_transition(report.applied)


def _status(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        report = service.evaluate_canary(who, args.run_id)
    if args.json:
        print_json(report.to_json())
    else:
        _print_report(report)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        scrape = _scrapes(service, not args.no_scrape)
        report = service.evaluate_canary(who, args.run_id, scrape=scrape, apply=args.auto)
    if args.json:
        print_json(report.to_json())
    else:
        _print_report(report)
    return 0


def _observe(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        observation, evaluation = service.record_canary_observation(
            who, args.run_id, args.success_rate, requests=args.requests, source="cli"
        )
    if args.json:
        print_json({"observation": observation.to_json(), "evaluation": evaluation.to_json()})
    else:
        print(
            f"recorded {percent(observation.success_rate)} at "
            f"{observation.observed_at.isoformat(timespec='seconds')}; "
            f"{evaluation.decision.value}: {evaluation.reason}"
        )
    return 0
