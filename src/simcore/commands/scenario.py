"""`simcore templates` and `simcore scenario check`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simcore.errors import InvalidInput
from simcore.model import Scenario
from simcore.templates import TEMPLATES, get_template


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    templates = sub.add_parser("templates", help="list or show the scenario templates")
    tcmd = templates.add_subparsers(dest="templates_command", metavar="ACTION", required=True)
    tcmd.add_parser("list", help="list the templates").set_defaults(handler=_list)
    show = tcmd.add_parser("show", help="print a template's scenario JSON")
    show.add_argument("name")
    show.set_defaults(handler=_show)

    scenario = sub.add_parser("scenario", help="validate a scenario")
    scmd = scenario.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    check = scmd.add_parser("check", help="validate scenario JSON (text, @file or - for stdin)")
    check.add_argument("scenario", help="JSON text, @path/to/file.json, or - for stdin")
    check.set_defaults(handler=_check)


def read_scenario_arg(value: str) -> Scenario:
    """A scenario from JSON text, ``@file`` or ``-`` (stdin)."""
    if value == "-":
        import sys

        return Scenario.parse(sys.stdin.read())
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput("scenario", f"cannot read {path}: {exc.strerror}") from None
        return Scenario.parse(text)
    return Scenario.parse(value)


def _list(args: argparse.Namespace) -> int:
    for t in TEMPLATES.values():
        s = t.scenario
        print(
            f"{t.name:<20} {t.title:<18} freq={s.error_frequency:<5} latency={s.latency_ms}ms"
            f" requests={s.total_requests} threshold={s.success_threshold}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(get_template(args.name).scenario.to_json(), indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    scenario = read_scenario_arg(args.scenario)
    print(json.dumps(scenario.to_json(), sort_keys=True))
    return 0
