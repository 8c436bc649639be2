"""The ``simtui`` command: the session first, then the dashboard.

A start waits on two things: the database (the embedded server may have to start, then a
first snapshot is read) and the dashboard's modules (Textual, the screens, the engine under
them). The first mostly waits on another process; the second keeps this one busy. So the
session opens in a background thread before the dashboard is imported, and nothing here
imports Textual: a stopped server starts while the screens load.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from simcore.errors import ConfigError, SimError
from simtui.session import Session

if TYPE_CHECKING:
    from simcore.snapshot import DashboardSnapshot
    from simtui.app import SimTUI

KEYMAP_ENV = "SIMTUI_KEYMAP"


def parse_keymap(text: str) -> dict[str, str]:
    """``approve=A,reject=X`` (binding ids, as listed in help) into a Textual keymap."""
    keymap: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        binding_id, sep, keys_ = item.partition("=")
        if not sep or not binding_id.strip() or not keys_.strip():
            raise ConfigError(f"{KEYMAP_ENV}: expected id=key[,id=key...], not {item!r}")
        keymap[binding_id.strip()] = keys_.strip()
        # A write key's twin, which tells a read-only session so, moves with it.
        keymap[f"{binding_id.strip()}.refused"] = keys_.strip()
    return keymap


def _parser() -> argparse.ArgumentParser:
    from simcore.model import Role

    parser = argparse.ArgumentParser(
        prog="simtui",
        description="Terminal dashboard of the self-healing patch simulator. Local mode on "
        "the database (SIMTUI_DATABASE_URL, else the embedded one); API mode with --api and "
        "--token, or SIMTUI_API_URL and SIMTUI_TOKEN.",
    )
    parser.add_argument(
        "--api", metavar="URL", help="API mode: the `simcore serve` to work through"
    )
    parser.add_argument(
        "--token", metavar="T", help="API mode: the bearer token (`simcore token create`)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="launch demo runs: the runbook's three templates in python and node, and one "
        "bad patch",
    )
    parser.add_argument(
        "--role",
        choices=[r.value for r in Role],
        help="local mode only: act with this role (auditor: read-only)",
    )
    return parser


def prepare(
    argv: list[str] | None = None, app_class: Callable[[], type[SimTUI]] | None = None
) -> SimTUI:
    """What ``simtui`` does before it runs the app (the benchmark starts it the same way).

    ``app_class`` gives the app's class (a subclass, for the benchmark) once the session is
    on its way: getting it imports Textual.

    The garbage collector pauses until the first full home screen: a start creates some
    130,000 objects (modules, classes, widgets), few of them garbage, and the collections
    that would run meanwhile cost about a tenth of the start.

    The first snapshot is read by a child forked first thing (``simtui.prefetch``): from
    there on, it and this process (settings, then Textual and the screens) go side by side.
    """
    gc.disable()
    from simtui.prefetch import ChildPrefetch

    opened: list[Session] = []  # in the child: the session to close once it answered

    def close_opened() -> None:
        for session in opened:
            session.close()

    child = ChildPrefetch.fork(lambda: _first_snapshot(argv, opened), close_opened)
    args = _parser().parse_args(argv)
    try:
        from simcore.config import load_settings
        from simcore.errors import InvalidInput
        from simcore.model import Role

        overrides = {k: v for k, v in (("api_url", args.api), ("token", args.token)) if v}
        settings = load_settings(**overrides)
        if settings.api_url:
            if not settings.token:
                raise InvalidInput("token", "API mode needs one: --token T or SIMTUI_TOKEN (an "
                                   "ops creates it with `simcore token create`)")  # fmt: skip
            from simcore.client import RemoteService

            RemoteService(settings.api_url, settings.token).close()  # a bad URL is said now
        elif args.token:
            raise InvalidInput("token", "API mode only: give the API too (--api URL)")
        keymap = parse_keymap(os.environ.get(KEYMAP_ENV, ""))
        session = Session.from_settings(settings, role=Role(args.role) if args.role else None)
    except SimError as exc:
        gc.enable()
        print(f"simtui: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    session.prefetch(child)
    if app_class is None:
        from simtui.app import SimTUI

        cls = SimTUI
    else:
        cls = app_class()
    app = cls(session, demo=args.demo, gc_paused=True)
    if keymap:
        app.set_keymap(keymap)
    return app


def _first_snapshot(argv: list[str] | None, opened: list[Session]) -> DashboardSnapshot | None:
    """In the prefetch child: the snapshot the dashboard will show first, read as it would.

    None in API mode (the dashboard reads through the API itself). A bad argument or setting
    raises here as in the parent, where it is reported.
    """
    from simcore.config import load_settings
    from simcore.model import Role

    args = _parser().parse_args(argv)
    settings = load_settings(**{k: v for k, v in (("api_url", args.api),) if v})
    if settings.api_url:
        return None
    session = Session.from_settings(
        settings, role=Role(args.role) if args.role else None, executor_factory=None
    )
    opened.append(session)
    return session.snapshot()


def main(argv: list[str] | None = None) -> None:
    app = prepare(argv)
    try:
        app.run()
    finally:
        app.session.close()
    sys.exit(app.return_code or 0)
