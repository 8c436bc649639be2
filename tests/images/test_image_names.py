"""Image names, apt mirror discovery and build contexts: no Docker engine needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from simcore import doctor
from simcore.errors import ConfigError, SimError
from simcore.images import (
    BASE_IMAGE,
    RUNTIMES,
    assemble_context,
    build_base,
    debian_mirror,
    image_for,
    sandbox_images,
)
from tests.conftest import simcore_bin


def test_default_names_are_the_runbook_ones() -> None:
    assert image_for("python", {}) == "molam/sim-py:2025-01"
    assert image_for("node", {}) == "molam/sim-node:2025-01"
    assert set(sandbox_images({})) == {"molam/sim-py:2025-01", "molam/sim-node:2025-01"}


def test_env_overrides_one_language() -> None:
    env = {"SIMTUI_IMAGE_PYTHON": " registry.example:5000/sim-py:2025-02 "}
    assert image_for("python", env) == "registry.example:5000/sim-py:2025-02"
    assert image_for("node", env) == "molam/sim-node:2025-01"
    assert image_for("python", {"SIMTUI_IMAGE_PYTHON": "  "}) == "molam/sim-py:2025-01"


def test_bad_override_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SIMTUI_IMAGE_NODE: 'a b' is not an image reference"):
        image_for("node", {"SIMTUI_IMAGE_NODE": "a b"})


def test_unknown_language_says_how_to_configure_it() -> None:
    with pytest.raises(SimError, match="SIMTUI_IMAGE_PHP"):
        image_for("php", {})
    assert image_for("php", {"SIMTUI_IMAGE_PHP": "molam/sim-php:2025-01"}).endswith("php:2025-01")


def test_doctor_checks_the_configured_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMTUI_IMAGE_NODE", "example/node-sandbox:1")
    assert "example/node-sandbox:1" in doctor.SANDBOX_IMAGES
    assert set(doctor.SANDBOX_IMAGES) == {"example/node-sandbox:1", "molam/sim-py:2025-01"}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    _write(
        tmp_path / "sources.list.d/debian.sources",
        "Types: deb\n"
        "# a comment inside the paragraph\n"
        "URIs: http://mirror.internal/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled.example/debian\n"
        "Suites: bookworm\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://mirror.internal/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
        f"Signed-By: {tmp_path}/keyring.gpg\n",
    )
    # apt reads only *.list and *.sources: a renamed file is not a source.
    _write(
        tmp_path / "sources.list.d/aaa.sources.disabled",
        "Types: deb\nURIs: http://ignored.example/debian\nSuites: bookworm\nComponents: main\n",
    )
    source = debian_mirror(etc_apt=tmp_path)
    assert source.uri == "http://mirror.internal/debian"
    assert source.signed_by == f"{tmp_path}/keyring.gpg"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    _write(
        tmp_path / "sources.list",
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://m.example/debian "
        "bookworm main non-free-firmware\n",
    )
    source = debian_mirror(etc_apt=tmp_path)
    assert (source.uri, source.signed_by) == (
        "https://m.example/debian",
        "/usr/share/keyrings/k.gpg",
    )


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    _write(tmp_path / "sources.list", "deb https://deb.nodesource.com/node_20.x nodistro main\n")
    with pytest.raises(SimError, match=r"no Debian bookworm mirror .* pass --mirror URL"):
        debian_mirror(etc_apt=tmp_path)


def test_offline_base_without_debootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimError, match=r"^debootstrap not found: install it"):
        build_base(None, mirror=None, report=lambda _: None, timings={})


@pytest.mark.parametrize("language", sorted(RUNTIMES))
def test_build_context_is_the_dockerfile_and_the_runner(language: str, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    digest = assemble_context(RUNTIMES[language], first)
    assert assemble_context(RUNTIMES[language], second) == digest
    assert sorted(p.name for p in first.iterdir()) == ["Dockerfile", "sdk"]
    assert not list(first.rglob("__pycache__"))
    dockerfile = (first / "Dockerfile").read_text()
    # The default base is the official image for users with a registry; offline builds
    # replace it with --build-arg BASE_IMAGE.
    official = {"python": "python:3.11-slim", "node": "node:20-slim"}[language]
    assert f"ARG BASE_IMAGE={official}\nFROM ${{BASE_IMAGE}}" in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert BASE_IMAGE.startswith("molam/sim-")


def test_unreachable_engine_is_one_line() -> None:
    done = subprocess.run(
        [simcore_bin(), "images", "list"],
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "simcore: error: docker engine not reachable: no socket at unix:///nonexistent.sock\n"
    )
