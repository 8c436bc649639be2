"""`simcore journal verify|show`."""

from __future__ import annotations

import argparse

from simcore import journal
from simcore.commands._common import local_service, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("journal", help="the audit journal: verify the chain, show a run's")
    cmds = parser.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    cmds.add_parser(
        "verify", help="seal what is committed, walk the hash chain; exit 1 at the first break"
    ).set_defaults(handler=_verify)
    show = cmds.add_parser("show", help="a run's journal entries")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)


def _verify(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        result = service.verify_journal(who)
    print(result.describe())
    return 0 if result.ok else 1


def _show(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        entries = service.get_run(who, args.run_id).journal
    if args.json:
        print_json([journal.entry_to_json(e) for e in entries])
        return 0
    for e in entries:
        print(
            f"{e.id:>8}  {e.created_at.isoformat(timespec='seconds')}  {e.action:<13} "
            f"{e.actor:<22} {e.details}"
        )
        if e.sealed:
            print(f"          hash {e.hash[:16]}…  prev {e.prev_hash[:16]}…")
        else:
            # Written, covered by its content hash, not chained yet (a worker or verify seals).
            print("          pending seal")
    return 0
