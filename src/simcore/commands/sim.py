"""`simcore sim create|list|show|run`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from simcore.commands._common import local_service, print_json, table
from simcore.commands.scenario import read_scenario_arg
from simcore.enums import RunStatus, SdkLanguage, TenantType
from simcore.templates import get_template


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("sim", help="simulations: create, list, show, run")
    cmds = parser.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    create = cmds.add_parser("create", help="create a simulation; prints its id")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--template", help="a template name (simcore templates list)")
    source.add_argument("--scenario", help="scenario JSON, @file or - for stdin")
    create.add_argument("--language", required=True, choices=[lang.value for lang in SdkLanguage])
    create.add_argument("--name", help="default: the template's title")
    create.add_argument("--description", default="")
    create.add_argument("--tenant-type", default="internal", choices=[t.value for t in TenantType])
    create.add_argument("--tenant-id", default="default")
    patch = create.add_mutually_exclusive_group()
    patch.add_argument(
        "--patch",
        help="patch id or slug (default: the built-in good patch "
        "for the scenario's error and the language)",
    )
    patch.add_argument("--no-patch", action="store_true", help="baseline only")
    create.set_defaults(handler=_create)

    lst = cmds.add_parser("list", help="list simulations")
    lst.add_argument("--limit", type=int, default=50)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)

    show = cmds.add_parser("show", help="show one simulation")
    show.add_argument("simulation_id")
    show.set_defaults(handler=_show)

    run = cmds.add_parser("run", help="launch a run; prints the run id")
    run.add_argument("simulation_id")
    run.add_argument(
        "--seed",
        type=int,
        default=None,
        help="default: a random seed, printed; with an --idempotency-key used before, that run's",
    )
    run.add_argument("--idempotency-key")
    run.add_argument(
        "--wait",
        action="store_true",
        help="follow the run and print its report (runs it here if no worker is running)",
    )
    run.add_argument("--json", action="store_true", help="with --wait: the run as JSON")
    run.set_defaults(handler=_run)


def _default_patch(error: str, language: str) -> str | None:
    try:
        from simcore.patches import default_patch
    except ImportError:
        return None
    patch = default_patch(error, language)
    return str(patch.id) if patch is not None else None


def _create(args: argparse.Namespace) -> int:
    if args.template:
        template = get_template(args.template)
        scenario, name = template.scenario, args.name or template.title
    else:
        scenario = read_scenario_arg(args.scenario)
        name = args.name or f"{scenario.error.value} ({args.language})"
    with local_service() as (service, who):
        patch_ref: str | None = None
        if not args.no_patch:
            if args.patch:
                patch_ref = str(service.get_patch(who, args.patch).id)
            else:
                patch_ref = _default_patch(scenario.error.value, args.language)
        data: dict[str, Any] = {
            "name": name,
            "description": args.description,
            "tenant_type": args.tenant_type,
            "tenant_id": args.tenant_id,
            "sdk_language": args.language,
            "scenario": scenario,
            "patch_reference": patch_ref,
        }
        sim = service.create_simulation(who, data)
    print(sim.id)
    return 0


def _list(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        sims = service.list_simulations(who, limit=args.limit)
    if args.json:
        print_json([s.model_dump(mode="json") for s in sims])
        return 0
    print(
        table(
            ["id", "name", "lang", "error", "tenant", "patch"],
            [
                (
                    s.id,
                    s.name,
                    s.sdk_language.value,
                    s.scenario.error.value,
                    f"{s.tenant_type.value}/{s.tenant_id}",
                    str(s.patch_reference)[:8] if s.patch_reference else None,
                )
                for s in sims
            ],
        )
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        sim = service.get_simulation(who, args.simulation_id)
    print_json(sim.model_dump(mode="json"))
    return 0


def _run(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        # No --seed: the queue draws one, or, for a key used before, finds that run, so that
        # the same command typed again is a retry and not a conflict.
        launch = service.launch_run(who, args.simulation_id, args.seed, args.idempotency_key)
        if args.seed is None:
            print(f"seed {launch.run.seed}", file=sys.stderr)
        if not launch.created:
            print(
                f"idempotency key {args.idempotency_key!r} already used: same run", file=sys.stderr
            )
        if not args.wait:
            print(launch.run.id)
            return 0
        from simcore.commands.runs import print_run, wait_for

        run = wait_for(service, who, launch.run.id)
        if args.json:
            print_json(service.get_run(who, run.id).run.model_dump(mode="json"))
        else:
            print_run(service.get_run(who, run.id))
    if run.status is RunStatus.SUCCESS:
        return 0
    return 1
