"""Patch bodies are compiled as the SDK runners compile them, and hostile ones get an answer."""

from __future__ import annotations

import pytest

from simcore import patch_check
from simcore.sdk.python.simpay import compile_body


@pytest.mark.parametrize(
    "code",
    [
        "ctx.retry()",
        "if ctx.error.code == 'timeout':\n    ctx.client.timeout_ms *= 2\nreturn ctx.retry()",
        "",
    ],
)
def test_what_the_python_runner_compiles_passes(code: str) -> None:
    compile_body(code, "patch")  # the runner's own compilation accepts it
    assert patch_check.compile_error("python", code) is None


def test_python_errors_name_the_body_line() -> None:
    error = patch_check.compile_error("python", "ctx.log('a')\nif ctx.error\n    ctx.retry()")
    assert error is not None and error.startswith("SyntaxError:") and "(line 2)" in error


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("-" * 60000 + "1", "too deeply nested"),
        ("a." * 20000 + "b", "too deeply nested"),
        ("x = " + "[" * 5000 + "]" * 5000, "too many nested parentheses"),
        ("ctx.retry()\x00", "null bytes"),
    ],
)
def test_hostile_python_gets_a_message_not_an_exception(code: str, words: str) -> None:
    error = patch_check.compile_error("python", code)
    assert error is not None and words in error, error


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ctx.retry();\nreturn ctx.sleep(10);", None),
        ("ctx.retry(;", "SyntaxError"),
        ("let x = 1; let x = 2;", "SyntaxError"),
        ("[" * 30000 + "]" * 30000, "RangeError"),
    ],
)
def test_node_bodies_are_parsed_by_node(code: str, error: str | None) -> None:
    got = patch_check.compile_error("node", code)
    assert (got is None) if error is None else (got is not None and got.startswith(error)), got


def test_languages_the_simulator_does_not_run_are_not_checked() -> None:
    assert patch_check.compile_error("php", "<?php this is not checked") is None
