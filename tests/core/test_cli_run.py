"""`simcore run` through the real command line: determinism, verdicts, bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from simcore import cli
from simcore.runner import Report
from simcore.sandbox.process import ProcessBackend
from tests.conftest import simcore_bin


@pytest.fixture
def env(tmp_path: Path, backend: ProcessBackend) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("SIMTUI_") and k != "MAX_RUN_TIME_MS"}  # fmt: skip
    base.update(SIMTUI_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "c"))
    return base


def simcore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), "run", *args], env=env, capture_output=True, text=True, timeout=90
    )


SCENARIO = json.dumps(
    {"error": "timeout", "error_frequency": 0.2, "latency_ms": 1000, "latency_jitter_ms": 400,
     "total_requests": 200, "success_threshold": 0.9}
)  # fmt: skip


def test_same_inputs_give_a_byte_identical_report(env: dict[str, str]) -> None:
    args = ("--scenario", SCENARIO, "--language", "node", "--seed", "12345", "--json")
    first, second = simcore(env, *args), simcore(env, *args)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    report = json.loads(first.stdout)
    assert report["status"] == "success" and report["seed"] == 12345
    assert report["patch"]["slug"] == "timeout-retry-idempotent-node"
    assert first.stderr.startswith("simcore: sandbox: ") and " (auto): " in first.stderr
    other = simcore(env, "--scenario", SCENARIO, "--language", "node", "--seed", "12346",
                    "--json")  # fmt: skip
    assert json.loads(other.stdout)["metrics"] != report["metrics"]


def test_python_and_node_reports_differ_only_in_language_and_patch(
    template_run: Callable[[str, str, str | None], Report],
) -> None:
    reports = [
        template_run("signature_mismatch", lang, "signature_mismatch-resync-clock").to_dict()
        for lang in ("python", "node")
    ]
    for report in reports:
        del report["language"], report["patch"]
    assert reports[0] == reports[1]


def test_a_bad_patch_exits_1_with_the_harm_in_the_table(env: dict[str, str]) -> None:
    done = simcore(env, "--template", "invalid_currency", "--patch", "invalid_currency-force-xof")
    assert done.returncode == 1
    assert "status      failed" in done.stdout
    assert "wrong payments (currency changed)" in done.stdout
    for metric in ("success_rate", "p95_latency_ms", "duplicate_charges", "regressions"):
        assert metric in done.stdout


@pytest.fixture
def in_process(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``simcore run ...`` through ``cli.main`` (the script's entry point), in this process:
    a subprocess per case would spend most of its time importing."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def _run(*args: str) -> tuple[int, str, str]:
        status = cli.main(["run", *args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return _run


def test_a_patch_from_files(
    in_process: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code = tmp_path / "heal.js"
    code.write_text("ctx.sleep(250);\nctx.retry();\n")
    rollback = tmp_path / "undo.js"
    rollback.write_text("ctx.log('nothing to undo');\n")
    args = ("--template", "server_error", "--language", "node", "--patch-file", str(code),
            "--rollback-file", str(rollback), "--json")  # fmt: skip
    (status, first, _), (_, second, _) = in_process(*args), in_process(*args)
    assert status == 0, first
    assert first == second
    assert json.loads(first)["patch"]["source"] == "ops"


@pytest.mark.parametrize(
    ("language", "patch", "rollback", "needle"),
    [
        ("python", "if ctx.error:\nctx.retry()\n", "", "patch-file: does not compile as a python"),
        ("python", "ctx.retry()\n", "ctx.client.timeout_ms = (\n", "rollback-file: does not"),
        ("node", "ctx.retry(;\n", "", "patch-file: does not compile as a node patch body"),
    ],
)
def test_a_patch_file_that_does_not_compile_is_bad_input(
    in_process: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    language: str,
    patch: str,
    rollback: str,
    needle: str,
) -> None:
    (tmp_path / "patch").write_text(patch)
    args = [
        "--template",
        "timeout",
        "--language",
        language,
        "--patch-file",
        str(tmp_path / "patch"),
    ]
    if rollback:
        (tmp_path / "rollback").write_text(rollback)
        args += ["--rollback-file", str(tmp_path / "rollback")]
    status, out, err = in_process(*args)
    assert status == 2 and needle in err and "SyntaxError" in err, (out, err)
    assert out == ""


def test_no_patch_is_the_baseline(in_process: Callable[..., tuple[int, str, str]]) -> None:
    status, out, _ = in_process("--template", "rate_limited", "--no-patch", "--json")
    report = json.loads(out)
    assert status == 1
    assert report["patch"] is None and report["metrics"]["patch_invocations"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--template", "nope"), "template: unknown template 'nope'"),
        (("--scenario", '{"error": "timeout", "error_frequence": 0.2}'), "unknown field"),
        (("--scenario", "@/nonexistent.json"), "cannot read /nonexistent.json"),
        (("--template", "timeout", "--patch", "nope"), "no built-in patch 'nope'"),
        (
            ("--template", "timeout", "--patch", "timeout-retry-idempotent-node"),
            "is a node patch, not python",
        ),
        (("--template", "timeout", "--rollback-file", "x"), "only makes sense with --patch-file"),
        (("--template", "timeout", "--seed", "-1"), "seed: must be an integer"),
        (("--template", "timeout", "--max-run-time-ms", "5"), "max-run-time-ms: must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    in_process: Callable[..., tuple[int, str, str]], args: tuple[str, ...], needle: str
) -> None:
    status, _, err = in_process(*args)
    assert status == 2
    assert "Traceback" not in err
    assert needle in err.strip().splitlines()[-1]


def test_bad_input_through_the_real_script(env: dict[str, str]) -> None:
    done = simcore(env, "--template", "nope")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "simcore: error: template: unknown template 'nope' (known: signature_mismatch, "
        "timeout, invalid_currency, rate_limited, server_error)"
    )


def test_docker_is_refused_clearly_until_its_backend_exists(
    in_process: Callable[..., tuple[int, str, str]],
) -> None:
    if importlib.util.find_spec("simcore.sandbox.docker") is not None:
        pytest.skip("the docker backend exists: its own tests cover it")
    status, _, err = in_process("--template", "timeout", "--sandbox", "docker")
    assert status == 2
    assert err.strip() == "simcore: error: the docker sandbox backend is not installed"
