"""`simcore doctor`: one screen that says whether this machine can run simulations."""

from __future__ import annotations

import argparse

from simcore.config import load_settings
from simcore.doctor import run_checks


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("doctor", help="check the database, sandboxes and artifact store")
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    checks = run_checks(load_settings())
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
        print(f"[{mark}] {check.name:<{width}}  {check.detail}")
    failed = [c for c in checks if c.required and not c.ok]
    print()
    print("ready" if not failed else f"not ready: {', '.join(c.name for c in failed)}")
    return 0 if not failed else 1
