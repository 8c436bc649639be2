"""`simcore ...`: the command line for people without the dashboard, and for scripts.

Each command group lives in ``simcore.commands.<group>`` and exposes ``register(subparsers)``.
A handler returns the exit status; a ``SimError`` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from simcore import __version__
from simcore.commands import COMMAND_MODULES
from simcore.errors import SimError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the whole usage; one line naming the problem is easier to act on.
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simcore", description="Self-healing patch simulator (engine CLI).")
    parser.add_argument("--version", action="version", version=f"simcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except SimError as exc:
        print(f"simcore: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("simcore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `simcore runs list | head` closes the pipe early: not an error worth a traceback.
        sys.stderr.close()
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
