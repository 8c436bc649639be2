"""Checks of a patch's code before it enters the registry: does it compile as the SDK runs it?

A patch that does not compile is refused at the door (``simcore patches add``, the API) with
the compiler's message, rather than accepted and then failing every run that uses it. The
code is compiled exactly as the SDK runners compile it (``simpay.compile_body`` in python,
``new Function('ctx', ...)`` in node) and never executed here.

Only the languages the simulator runs are checked. Node's parser is node itself: where no
``node`` is installed (a registry edited from a host without it), node patches are not
checked here, and a run of one that does not compile ends ``failed`` with the compiler's
message.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

from simcore.errors import InvalidInput
from simcore.sandbox.process import SAFE_PATH
from simcore.sdk.python.simpay import function_source

NODE_CHECK_TIMEOUT_S = 10.0

# Reads the code on stdin and compiles it as the node runner does (sdk/node/simpay.js,
# compileBody); prints the SyntaxError's message and exits 1 when it does not compile.
_NODE_SCRIPT = """
let code = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { code += chunk; });
process.stdin.on('end', () => {
  try {
    new Function('ctx', '"use strict";\\n' + (code.trim() ? code : ''));
  } catch (err) {
    process.stdout.write(`${err.name}: ${err.message}`);
    process.exit(1);
  }
});
"""


def python_error(code: str) -> str | None:
    """Why ``code`` does not compile as the body of ``def patch(ctx)``; None if it does."""
    try:
        # The runner's own wrapping: line numbers agree with what a run would report.
        compile(function_source(code, "patch"), "<patch>", "exec")
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {max((exc.lineno or 2) - 1, 1)})"
    except ValueError as exc:  # NUL bytes in the source
        return f"ValueError: {exc}"
    except (MemoryError, RecursionError):
        # What CPython's parser and compiler raise on deeply nested code ("-" * 60000 + "1"):
        # the runner could not compile it either.
        return "too deeply nested to compile"
    return None


def node_error(code: str) -> str | None:
    """Why ``code`` does not compile as the node runner's patch function; None if it does
    (or if no node is installed to tell)."""
    node = shutil.which("node", path=SAFE_PATH) or shutil.which("node")
    if node is None:
        return None
    try:
        done = subprocess.run(
            [node, "-e", _NODE_SCRIPT],
            input=code.encode("utf-8", "surrogatepass"),
            capture_output=True,
            timeout=NODE_CHECK_TIMEOUT_S,
            env={"PATH": SAFE_PATH},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no verdict from node: the run reports what its runner finds
    if done.returncode == 0:
        return None
    message = done.stdout.decode("utf-8", "replace").strip()
    return message[:300] or "does not compile"


def compile_error(language: str, code: str) -> str | None:
    """Why ``code`` does not compile for an SDK in ``language``; None if it does, or if the
    language is not one the simulator runs."""
    if language == "python":
        return python_error(code)
    if language == "node":
        return node_error(code)
    return None


def require_compiles(language: str, bodies: Iterable[tuple[str, str]]) -> None:
    """Raise ``InvalidInput`` naming the field of the first of ``(field, code)`` that does
    not compile; blank bodies (no rollback) are not checked."""
    for field, code in bodies:
        error = compile_error(language, code) if code.strip() else None
        if error is not None:
            raise InvalidInput(field, f"does not compile as a {language} patch body: {error}")
