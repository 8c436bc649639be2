"""`simcore redact`: personal data and secrets out of a log or a JSON document (stdin)."""

from __future__ import annotations

import argparse
import io
import json
import sys

from simcore.errors import InvalidInput
from simcore.redact import redact_json, redact_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "redact",
        help="redact personal data and secrets from stdin to stdout",
        description="Read text on stdin, write it with emails, phones, card numbers, IBANs,"
        " IPs, tokens, keys and names replaced by placeholders such as <EMAIL>.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="read one JSON document and redact it field by field",
    )
    parser.set_defaults(handler=_redact)


def _redact(args: argparse.Namespace) -> int:
    # UTF-8 whatever the locale; bytes that are not UTF-8 pass through unchanged rather
    # than stopping the redaction of everything after them.
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors="surrogateescape")
    if args.json:
        return _redact_json()
    # Line by line, so a large log streams through in constant memory.
    for line in sys.stdin:
        sys.stdout.write(redact_text(line))
    return 0


def _redact_json() -> int:
    raw = sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("stdin", f"not valid UTF-8 at byte {exc.start}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "stdin", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    json.dump(redact_json(document), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0
