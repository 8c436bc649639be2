"""The ``simtui`` command: a child reads the first snapshot while the dashboard loads.

A start waits on two things: the first snapshot (the settings, the engine and its driver, a
connection, the embedded server if it must start) and the dashboard's modules (Textual, the
screens). Each keeps a process busy, so a child forked first thing does the first
(``simtui.prefetch``) while this process does the second, on the other core. Nothing here
imports Textual, pydantic or the engine.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from simcore.enums import Role
from simcore.errors import ConfigError, InvalidInput, SimError
from simtui.session import Session, local_label

if TYPE_CHECKING:
    from simcore.config import Settings
    from simcore.snapshot import DashboardSnapshot
    from simtui.app import SimTUI
    from simtui.prefetch import ChildPrefetch, Tell

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


@dataclass(frozen=True)
class Settled:
    """The prefetch child's early word: what the settings say, or why they are wrong."""

    api_mode: bool = False
    label: str = ""
    """Local mode: where the data comes from (``session.local_label``)."""
    error: SimError | None = None


def prepare(
    argv: list[str] | None = None, app_class: Callable[[], type[SimTUI]] | None = None
) -> SimTUI:
    """What ``simtui`` does before it runs the app (the benchmark starts it the same way).

    ``app_class`` gives the app's class (a subclass, for the benchmark): getting it imports
    Textual.

    The garbage collector pauses until the first full home screen: a start creates some
    130,000 objects (modules, classes, widgets), few of them garbage, and the collections
    that would run meanwhile cost about a tenth of the start.

    The first snapshot is read by a child forked first thing (``simtui.prefetch``): from
    there on, it and this process (Textual and the screens) go side by side. The child reads
    the settings first and tells what it found; in local mode this process then reads them
    only when its session opens, after the first screen (they need pydantic, whose import
    would cost that screen about a fifth of its start). Without a child (no fork), or in API
    mode, this process reads them before the app runs, as it reports a bad one.
    """
    gc.disable()
    from simtui.prefetch import ChildPrefetch

    opened: list[Session] = []  # in the child: the session to close once it answered

    def close_opened() -> None:
        for session in opened:
            session.close()

    child = ChildPrefetch.fork(lambda tell: _first_snapshot(argv, opened, tell), close_opened)
    try:
        return _prepare_app(argv, child, app_class)
    except BaseException:  # a bad argument or setting: reported, and no dashboard
        if child is not None:
            child.cancel()
        raise


def _prepare_app(
    argv: list[str] | None,
    child: ChildPrefetch | None,
    app_class: Callable[[], type[SimTUI]] | None,
) -> SimTUI:
    args = _parser().parse_args(argv)
    role = Role(args.role) if args.role else None
    try:
        keymap = parse_keymap(os.environ.get(KEYMAP_ENV, ""))
    except SimError as exc:
        _fail(exc)
    if app_class is None:
        from simtui.app import SimTUI

        cls = SimTUI
    else:
        cls = app_class()
    settled = child.early() if child is not None else None
    try:
        if isinstance(settled, Settled) and settled.error is not None:
            raise settled.error
        if isinstance(settled, Settled) and not settled.api_mode:
            if args.token:
                raise _token_without_api()
            session = Session.for_database(
                functools.partial(_load_settings, args), label=settled.label, role=role
            )
        else:
            session = _session_from_settings(args, role)
    except SimError as exc:
        _fail(exc)
    session.prefetch(child)
    app = cls(session, demo=args.demo, gc_paused=True)
    if keymap:
        app.set_keymap(keymap)
    return app


def _token_without_api() -> InvalidInput:
    return InvalidInput("token", "API mode only: give the API too (--api URL)")


def _fail(error: SimError) -> NoReturn:
    gc.enable()
    print(f"simtui: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)


def _load_settings(args: argparse.Namespace) -> Settings:
    from simcore.config import load_settings

    overrides = {k: v for k, v in (("api_url", args.api), ("token", args.token)) if v}
    return load_settings(**overrides)


def _session_from_settings(args: argparse.Namespace, role: Role | None) -> Session:
    """The session, with the settings read here and checked as a start reports them."""
    settings = _load_settings(args)
    if settings.api_url:
        if not settings.token:
            raise InvalidInput("token", "API mode needs one: --token T or SIMTUI_TOKEN (an "
                               "ops creates it with `simcore token create`)")  # fmt: skip
        from simcore.client import RemoteService

        RemoteService(settings.api_url, settings.token).close()  # a bad URL is said now
    elif args.token:
        raise _token_without_api()
    return Session.from_settings(settings, role=role)


def _first_snapshot(
    argv: list[str] | None, opened: list[Session], tell: Tell
) -> DashboardSnapshot | None:
    """In the prefetch child: the snapshot the dashboard will show first, read as it would.

    It tells the dashboard what it made of the settings as soon as it has read them. None in
    API mode (the dashboard reads through the API itself). A bad argument or setting raises
    here as in the parent, where it is reported.
    """
    args = _parser().parse_args(argv)
    try:
        settings = _load_settings(args)
    except SimError as exc:
        tell(Settled(error=exc))
        raise
    tell(Settled(api_mode=bool(settings.api_url), label=local_label(settings)))
    if settings.api_url:
        return None
    role = Role(args.role) if args.role else None
    session = Session.from_settings(settings, role=role, executor_factory=None)
    opened.append(session)
    return session.snapshot()


def main(argv: list[str] | None = None) -> None:
    app = prepare(argv)
    try:
        app.run()
    finally:
        app.session.close()
    sys.exit(app.return_code or 0)
