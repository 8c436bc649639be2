"""Text that people type and other people read in a terminal: no control characters.

A simulation's name, a patch's description or a rejection note is shown in the dashboard and
printed by the CLI in an on-call engineer's SSH session. A control character in it (ESC
above all) would be a terminal escape: it could clear or repaint the screen, retitle the
window, hide a line. So such text is refused where it enters (``check``, with the field's
name), and the CLI replaces any control character that reaches its output anyway (rows
written by hand in psql, older rows) with U+FFFD (``for_terminal``).

Tab, line feed and carriage return are allowed in input: descriptions and patch code have
lines, and code written on Windows ends them with CR LF. On output the CLI keeps tab and
line feed only.
"""

from __future__ import annotations

import re

from simcore.errors import InvalidInput

# C0 controls but tab, line feed and carriage return; DEL; the C1 controls (U+009B is a
# one-character CSI for terminals that read 8-bit controls).
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# On output, carriage return too: it moves the cursor back over what the line said.
_REPLACED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
REPLACEMENT = "\ufffd"


def control_character(value: str) -> str | None:
    """What is wrong with ``value``, in words, or None if it holds no refused character."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    return (
        f"must not contain control characters (U+{ord(found.group()):04X} at position "
        f"{found.start() + 1})"
    )


def check(field: str, value: str | None) -> None:
    """Raise ``InvalidInput`` naming ``field`` if ``value`` holds a control character."""
    if value is None:
        return
    problem = control_character(value)
    if problem is not None:
        raise InvalidInput(field, problem)


def for_terminal(text: str) -> str:
    """``text`` with every control character but tab and line feed replaced by U+FFFD."""
    return _REPLACED.sub(REPLACEMENT, text) if _REPLACED.search(text) else text
