"""`simcore checklist`: the runbook's daily checklist; exit 1 when an item fails (for cron)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from simcore.commands._common import local_service, print_json

SHOWN_ENTRIES = 10


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "checklist",
        help="the runbook's daily checklist from the data; exit 1 if an item fails",
    )
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_checklist)


def _entry(item_key: str, e: Mapping[str, Any]) -> str:
    if item_key == "failed_runs":
        reasons = "; ".join(str(r) for r in e["reasons"]) or "no reason recorded"
        return (
            f"{e['run_id']}  {e['status']:<8} {e['simulation']} ({e['sdk_language']}, "
            f"{e['error']}): {reasons}"
        )
    if item_key == "stuck_runs":
        worker = e["worker_id"] or "no worker"
        return f"{e['run_id']}  {e['status']:<8} since {e['since']} ({worker})"
    if item_key == "pending_approvals":
        rate = e["success_rate"]
        shown = f"{rate:.1%}" if rate is not None else "-"
        return f"run {e['run_id']}  patch {e['patch']} ({e['sdk_language']}), success {shown}"
    if item_key == "canary":
        latest = ", ".join(f"{o['success_rate']:.1%}" for o in e["latest"]) or "no observation"
        return (
            f"run {e['run_id']}  {e['patch']} {e['status']} at {e['rollout_percentage']}%: "
            f"{e['decision']} ({e['reason']}); latest {latest}"
        )
    return ", ".join(f"{k}={v}" for k, v in e.items())


def _checklist(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        result = service.checklist(who)
    if args.json:
        print_json(result.to_json())
        return 0 if result.ok else 1
    print(f"daily checklist at {result.at.isoformat(timespec='seconds')} ({result.scope})")
    for item in result.items:
        print(f"[{'PASS' if item.ok else 'FAIL'}] {item.title}: {item.summary}")
        for entry in item.entries[:SHOWN_ENTRIES]:
            print(f"       - {_entry(item.key, entry)}")
        if len(item.entries) > SHOWN_ENTRIES:
            print(f"       ... and {len(item.entries) - SHOWN_ENTRIES} more (--json lists them)")
    if result.ok:
        print("all items pass")
        return 0
    print(f"{len(result.failed)} of {len(result.items)} items fail: {', '.join(result.failed)}")
    return 1
