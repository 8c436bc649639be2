"""The built sandbox images: present, current, hardened-run friendly, runner inside."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from simcore.images import DIGEST_LABEL, RUNTIMES, assemble_context, image_for, sdk_dir
from tests.images.conftest import simcore

# The flags the docker sandbox runs with (DESIGN.md, Security model).
HARDENED = (
    "--network", "none", "--read-only", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges", "--user", "10001",
)  # fmt: skip
PROBES = {
    "python": ("python3", "-c", "import sys; print(sys.version)"),
    "node": ("node", "-e", "console.log(process.version)"),
}
VERSION_PREFIX = {"python": "3.", "node": "v"}


def docker_run(image: str, *command: str, flags: tuple[str, ...] = ()) -> str:
    done = subprocess.run(
        ["docker", "run", "--rm", *flags, image, *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_images_exist_after_the_build_and_a_rebuild_is_a_no_op(
    engine: Any, built: str, tmp_path: Path
) -> None:
    for language, runtime in RUNTIMES.items():
        image = engine.images.get(image_for(language))
        context = tmp_path / language
        context.mkdir()
        assert image.labels[DIGEST_LABEL] == assemble_context(runtime, context)
    again = simcore("images", "build", "--offline")
    assert again.returncode == 0, again.stderr
    assert again.stdout.rstrip().endswith(f"0 built, {len(RUNTIMES)} up to date")


@pytest.mark.parametrize("language", sorted(RUNTIMES))
def test_runs_hardened(built: str, language: str) -> None:
    out = docker_run(image_for(language), *PROBES[language], flags=HARDENED)
    assert out.startswith(VERSION_PREFIX[language]), out


@pytest.mark.parametrize("language", sorted(RUNTIMES))
def test_runs_as_the_sandbox_user_in_the_work_folder(built: str, language: str) -> None:
    out = docker_run(
        image_for(language), "sh", "-c", "id -u; id -g; pwd", flags=("--network", "none")
    )
    assert out.split() == ["10001", "10001", "/sandbox"]


@pytest.mark.parametrize("language", sorted(RUNTIMES))
def test_runner_files_are_in_the_image_read_only_for_the_sandbox(built: str, language: str) -> None:
    folder = f"/opt/simtui/sdk/{language}"
    out = docker_run(
        image_for(language),
        *("find", folder, "-type", "f", "-printf", "%P %U %m\n"),
        flags=("--network", "none"),
    )
    in_image = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    source = sdk_dir(language)
    files = list(source.rglob("*")) if source.is_dir() else []
    expected = {
        p.relative_to(source).as_posix()
        for p in files
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }
    # Besides the runner's files: their bytecode, compiled at build time (read-only root).
    compiled = {f for f in in_image if f.startswith("__pycache__/") and f.endswith(".pyc")}
    assert set(in_image) - compiled == expected
    modules = {Path(f).stem for f in expected if f.endswith(".py")}
    assert {Path(f).name.split(".")[0] for f in compiled} == modules
    for owner_mode in in_image.values():
        assert owner_mode[0] == "0" and owner_mode[1] in ("644", "755"), in_image


def test_images_list_shows_both(built: str) -> None:
    done = simcore("images", "list")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    for language in RUNTIMES:
        assert image_for(language) in names
