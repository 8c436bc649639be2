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

    def read(tell):
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

    def read(tell):
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
        "    def read(tell):\n"
        "        raise Odd(1, 2)",
        # A child that dies without answering (the OOM killer, a segfault).
        "def read(tell):\n        os._exit(3)",
        # One that argparse stops (SystemExit): the parent reports the bad argument itself.
        "def read(tell):\n        sys.exit(2)",
    ],
    ids=["unpicklable-error", "died", "exited"],
)
def test_no_usable_answer_is_none_and_the_dashboard_reads_for_itself(read: str) -> None:
    out = _run(
        _FORK
        + f"\n    {read}\n\n    child = ChildPrefetch.fork(read)\n"
        + "    report(child.answer(), early=child.early())\n"
    )
    assert out == {"value": None, "error": None, "early": None}


def test_the_early_word_comes_before_the_answer(tmp_path: Path) -> None:
    # The child tells, then waits for the parent to have heard it before it answers.
    heard = tmp_path / "heard"
    out = _run(
        _FORK
        + f"""
    import time
    from pathlib import Path

    def read(tell):
        tell({{"settings": "good"}})
        tell({{"settings": "told twice"}})  # only the first word counts
        deadline = time.monotonic() + 60
        while not Path({str(heard)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return {{"queued": 2}}

    child = ChildPrefetch.fork(read)
    early = child.early()
    Path({str(heard)!r}).touch()
    report(child.answer(), early=early, again=child.early())
    """
    )
    assert out == {
        "value": {"queued": 2},
        "error": None,
        "early": {"settings": "good"},
        "again": {"settings": "good"},
    }


def test_no_fork_from_a_process_with_threads() -> None:
    out = _run(
        """
    import json, threading
    from simtui.prefetch import ChildPrefetch

    stop = threading.Event()
    threading.Thread(target=stop.wait).start()
    child = ChildPrefetch.fork(lambda tell: {"queued": 1})
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
        "pydantic": [m for m in ("pydantic", "simcore.config", "simcore.model")
                     if m in sys.modules],
        "settings": session.settings is not None,
        "after_open": (session.open(), session.settings is not None)[1],
        "may_approve": session.can(__import__("simcore.auth").auth.Permission.APPROVE),
    }))
    session.close()
    """,
        env,
    )
    assert out["runs"] == ["first-screen run"]
    # Read by the child: this process has neither connected nor loaded the driver, and it
    # knows its role (local mode) so the first screen shows the write keys.
    assert out == {**out, "open": False, "driver": False, "may_approve": True}
    # The child checked the settings: this process reads them when its session opens, and
    # has not imported pydantic for the first screen.
    assert out["pydantic"] == [] and out["settings"] is False
    assert out["after_open"] is True  # read when the session opened


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        ([], {"MAX_RUN_TIME_MS": "soon"}, "simtui: error: MAX_RUN_TIME_MS: "),
        (["--token", "t"], {}, "simtui: error: token: API mode only: give the API too"),
    ],
    ids=["bad-setting", "token-without-api"],
)
def test_what_the_child_finds_wrong_is_reported_before_the_screen_opens(
    tmp_path: Path, argv: list[str], env: dict[str, str], said: str
) -> None:
    code = f"""
    import sys
    from simtui.launch import prepare

    prepare({argv!r})
    print("prepared: the dashboard would start")
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")},
            "SIMTUI_DATA_DIR": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            **env,
        },
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.count("\n") == 1 and said in done.stderr
