"""Text drawn on the dashboard cannot drive the terminal it is drawn in.

Names, notes, reasons and patch code come from people (and, through the logs, from
sandboxes). Textual and Rich strip a few control characters from the text they draw (BEL,
BS, VT, FF, CR) and pass the others to the terminal as they are: an ESC in a simulation's
name would be written into the on-call engineer's SSH session as the start of an escape
sequence (clear the screen, move the cursor, retitle the window). ``install`` makes both
libraries replace every other C0 control but tab and line feed, DEL and the C1 controls
with U+FFFD, as ``simcore.safe_text.for_terminal`` does for the CLI.

It extends the translation tables that the two libraries apply to every string they turn
into text (``textual.content`` and ``rich.control``). They are not public names: the tests
draw a hostile name through the dashboard's own widgets, so that a version of either library
without them fails there rather than silently dropping the guard.
"""

from __future__ import annotations

from typing import cast

import rich.control
import textual.content

REPLACEMENT = "\ufffd"
_REPLACED = (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))


def install() -> bool:
    """Extend both libraries' tables (idempotent); False if either has none to extend."""
    tables = [
        getattr(textual.content, "_CONTROL_STRIP_TRANSLATE", None),
        getattr(rich.control, "_CONTROL_STRIP_TRANSLATE", None),
    ]
    if not all(isinstance(table, dict) for table in tables):
        return False
    for table in tables:
        extended = cast(dict[int, str | None], table)
        for codepoint in _REPLACED:
            extended.setdefault(codepoint, REPLACEMENT)  # what they strip stays stripped
    return True
