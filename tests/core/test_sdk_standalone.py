"""The SDKs ship as package data and run alone: standard library / node built-ins only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import simcore

SDK = Path(simcore.__file__).parent / "sdk"


@pytest.mark.parametrize("path", sorted((SDK / "python").glob("*.py")), ids=lambda p: p.name)
def test_python_sdk_imports_only_the_standard_library(path: Path) -> None:
    tree = ast.parse(path.read_text(), feature_version=(3, 8))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            assert top == "simpay" or top in sys.stdlib_module_names, f"{path.name}: {name}"


@pytest.mark.parametrize("path", sorted((SDK / "node").glob("*.js")), ids=lambda p: p.name)
def test_node_sdk_requires_only_builtins(path: Path) -> None:
    text = path.read_text()
    required = set(re.findall(r"require\(([^)]*)\)", text))
    assert required <= {"'crypto'", "'fs'", "'path'", "path.join(__dirname, 'simpay.js'"}
    subprocess.run(["node", "--check", str(path)], check=True, capture_output=True)


def test_the_sdks_are_package_data() -> None:
    pyproject = (Path(simcore.__file__).parents[2] / "pyproject.toml").read_text()
    assert '"sdk/**/*"' in pyproject
    assert {p.name for p in SDK.iterdir() if p.is_dir()} >= {"python", "node"}
