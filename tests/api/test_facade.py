"""SimulatorService and RemoteService both satisfy the ``Simulator`` Protocol.

mypy proves it on the assignments of ``_both_are_simulators`` below (the function is never
run); the test runs mypy on this file, with a deliberately broken class beside it to show that
the check can fail.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from simcore.client import RemoteService
from simcore.facade import Simulator
from simcore.service import SimulatorService

ROOT = Path(__file__).resolve().parents[2]


def _both_are_simulators(local: SimulatorService, remote: RemoteService) -> list[Simulator]:
    as_local: Simulator = local
    as_remote: Simulator = remote
    return [as_local, as_remote]


BROKEN = """
from simcore.facade import Simulator


class OnlyCloses:
    def close(self) -> None: ...


def broken(x: OnlyCloses) -> Simulator:
    return x
"""


def test_mypy_accepts_both_services_as_a_simulator(tmp_path: Path) -> None:
    broken = tmp_path / "broken_simulator.py"
    broken.write_text(BROKEN, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-error-summary",
            __file__,
            str(broken),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout + done.stderr
    # mypy may name the file by the path it had when its cache entry was written.
    assert "broken_simulator.py:10: error:" in errors[0] and '"Simulator"' in errors[0]


def test_the_signatures_are_the_protocols() -> None:
    # Same parameter names, kinds and defaults: a keyword call that works on one works on all.
    members = [
        name
        for name, value in vars(Simulator).items()
        if callable(value) and not name.startswith("_")
    ]
    assert len(members) == 23

    def shape(function: object) -> list[tuple[str, object, object]]:
        # Annotations are compared by mypy above; here what a caller's arguments bind to.
        return [
            (p.name, p.kind, p.default)
            for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        ]

    for name in members:
        expected = shape(getattr(Simulator, name))
        for cls in (SimulatorService, RemoteService):
            assert shape(getattr(cls, name)) == expected, (cls.__name__, name)
