"""The engine must be usable without the dashboard: importing simcore never pulls in textual."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "simcore",
    "simcore.model",
    "simcore.config",
    "simcore.store",
    "simcore.store.migrate",
    "simcore.templates",
    "simcore.doctor",
    "simcore.cli",
]


def test_simcore_never_imports_textual_or_simtui() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import simcore\n"
        "for m in pkgutil.walk_packages(simcore.__path__, 'simcore.'):\n"
        "    importlib.import_module(m.name)\n"
        f"for m in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'simtui',"
        " 'textual_plotext', 'plotext'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"simcore imported UI modules: {out.stdout.strip()}"


def test_the_check_would_notice_a_ui_import() -> None:
    # Guard against a check that cannot fail: importing simtui does bring textual in.
    code = "import sys, simtui.app; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
