"""The first snapshot read by a forked child (simtui.prefetch): what comes back through the
pipe, what does not, and that the dashboard's own process never loads the engine for it.

Each case forks from a fresh interpreter: pytest's own process has threads, from which
``ChildPrefetch.fork`` rightly refuses to fork.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from simcore.service import SimulatorService
from tests.tui.helpers import finished_run


def _run(code: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


_FORK = """
    import json, os, sys
    from simtui.prefetch import ChildPrefetch

    def report(answer, **more):
        value, error = answer
        print(json.dumps({"value": value, "error": None if error is None else
                          [type(error).__name__, str(error)], **more}))
"""


def test_the_child_sends_what_it_read_and_nothing_to_the_terminal() -> None:
    out = _run(
        _FORK
        + """
    finished = []

    def read():
        print("the child's own output")
        print("and its errors", file=sys.stderr)
        return {"queued": 3, "pid": os.getpid()}

    child = ChildPrefetch.fork(read, lambda: print("closed"))
    answer = child.answer()
    report(answer, parent=os.getpid(), again=child.answer() == answer)
    """
    )
    assert out["value"]["queued"] == 3 and out["error"] is None
    assert out["value"]["pid"] != out["parent"]  # read in another process
    assert out["again"]  # answer() is kept: the home screen may ask twice


def test_an_error_in_the_child_comes_back_to_be_reported() -> None:
    out = _run(
        _FORK
        + """
    from simcore.errors import DatabaseUnavailable

    def read():
        raise DatabaseUnavailable("embedded database: PostgreSQL did not start")

    report(ChildPrefetch.fork(read).answer())
    """
    )
    assert out["value"] is None
    assert out["error"] == ["DatabaseUnavailable", "embedded database: PostgreSQL did not start"]


@pytest.mark.parametrize(
    "read",
    [
        # An error that cannot be rebuilt from its pickle: not sent, read again in-process.
        "class Odd(Exception):\n"
        "        def __init__(self, a, b):\n"
        "            super().__init__(a)\n"
        "    def read():\n"
        "        raise Odd(1, 2)",
        # A child that dies without answering (the OOM killer, a segfault).
        "def read():\n        os._exit(3)",
        # One that argparse stops (SystemExit): the parent reports the bad argument itself.
        "def read():\n        sys.exit(2)",
    ],
    ids=["unpicklable-error", "died", "exited"],
)
def test_no_usable_answer_is_none_and_the_dashboard_reads_for_itself(read: str) -> None:
    out = _run(_FORK + f"\n    {read}\n\n    report(ChildPrefetch.fork(read).answer())\n")
    assert out == {"value": None, "error": None}


def test_no_fork_from_a_process_with_threads() -> None:
    out = _run(
        """
    import json, threading
    from simtui.prefetch import ChildPrefetch

    stop = threading.Event()
    threading.Thread(target=stop.wait).start()
    child = ChildPrefetch.fork(lambda: {"queued": 1})
    stop.set()
    print(json.dumps({"child": child is not None}))
    """
    )
    assert out == {"child": False}


def test_the_command_reads_the_first_snapshot_in_a_child(
    service: SimulatorService, db_url: str, tmp_path: Path
) -> None:
    finished_run(service, name="first-screen run")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")},
        "SIMTUI_DATABASE_URL": db_url,
        "SIMTUI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    out = _run(
        """
    import json, sys
    from simtui.launch import prepare

    app = prepare([])
    session = app.session
    snapshot = session.take_prefetched(wait=None)
    print(json.dumps({
        "runs": [r.simulation_name for r in snapshot.recent_runs],
        "open": session.is_open,
        "driver": "psycopg" in sys.modules,
        "may_approve": session.can(__import__("simcore.auth").auth.Permission.APPROVE),
    }))
    """,
        env,
    )
    assert out["runs"] == ["first-screen run"]
    # Read by the child: this process has neither connected nor loaded the driver, and it
    # knows its role (local mode) so the first screen shows the write keys.
    assert out == {**out, "open": False, "driver": False, "may_approve": True}
