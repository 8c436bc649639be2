"""Text read in terminals: control characters refused on the way in, replaced on the way out."""

from __future__ import annotations

import pytest

from simcore import safe_text
from simcore.errors import InvalidInput


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("plain text, accents é and 漢字", None),
        ("two\nlines\twith a tab\r\n", None),
        ("evil\x1b[2J", "U+001B at position 5"),
        ("bell\x07", "U+0007 at position 5"),
        ("\x9b31m", "U+009B at position 1"),  # the 8-bit CSI
        ("del\x7f", "U+007F at position 4"),
    ],
)
def test_control_characters_are_named_with_their_position(value: str, problem: str | None) -> None:
    found = safe_text.control_character(value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_check_names_the_field() -> None:
    safe_text.check("name", None)
    with pytest.raises(InvalidInput) as info:
        safe_text.check("approval_notes", "ok\x1b]0;title\x07")
    assert info.value.field == "approval_notes"


def test_for_terminal_keeps_lines_and_tabs_and_replaces_the_rest() -> None:
    assert safe_text.for_terminal("a\tb\nc") == "a\tb\nc"
    assert safe_text.for_terminal("evil\x1b[2J\rfake\x9b") == "evil\ufffd[2J\ufffdfake\ufffd"
