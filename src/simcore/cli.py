"""`simcore ...`: the command line for people without the dashboard, and for scripts.

Each command group lives in ``simcore.commands.<group>`` and exposes ``register(subparsers)``.
A handler returns the exit status; a ``SimError`` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from simcore import __version__, safe_text
from simcore.commands import COMMAND_MODULES
from simcore.errors import SimError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints the whole usage; one line naming the problem is easier to act on.
        self.exit(2, f"{self.prog}: error: {message}\n")


class _TerminalSafe:
    """A text stream that writes what it is given with control characters replaced.

    What the commands print comes from people and sandboxes (names, notes, reasons, patch
    code); whatever a row holds, it cannot become a terminal escape in the reader's session.
    The rest of the stream (``buffer`` for bytes, ``isatty``...) is the wrapped one's.
    """

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        return self._inner.write(safe_text.for_terminal(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# Commands whose output is the user's own data, passed through as it is.
_RAW_OUTPUT = {"redact"}


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
    stdout, stderr = sys.stdout, sys.stderr
    if args.command not in _RAW_OUTPUT:
        sys.stdout = _TerminalSafe(stdout)
    sys.stderr = _TerminalSafe(stderr)
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
        stderr.close()
        return 0
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    return status


if __name__ == "__main__":
    sys.exit(main())
