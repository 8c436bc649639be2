"""`simcore redact` as people and scripts run it: stdin to stdout, errors on one line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import simcore_bin


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")}
    base.update(SIMTUI_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "c"))
    return base


def _redact(env: dict[str, str], stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [simcore_bin(), "redact", *args], env=env, input=stdin, capture_output=True, timeout=60
    )


def test_text_from_stdin_to_stdout(env: dict[str, str]) -> None:
    log = (
        "2024-05-14T10:22:31Z ERROR 401 op=op-000123-a1 customer_email=awa@orange.sn\n"
        "> Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl\n"
        'carte 4111 1111 1111 1111 refusée, titulaire="Awa Ndiaye", montant 15000 XOF\n'
    ).encode()
    # Bytes that are not UTF-8 pass through: one bad byte must not stop the rest.
    done = _redact(env, log + b"\xff\xfe raw from 10.0.0.1\n")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == (
            "2024-05-14T10:22:31Z ERROR 401 op=op-000123-a1 customer_email=<EMAIL>\n"
            "> Authorization: Bearer <TOKEN>\n"
            'carte <PAN> refusée, titulaire="<NAME>", montant 15000 XOF\n'
        ).encode()
        + b"\xff\xfe raw from <IP>\n"
    )


def test_json_is_redacted_structurally(env: dict[str, str]) -> None:
    document = {
        "customer": {"name": "Kwame Mensah", "phone": "+233 24 123 4567"},
        "message": "declined for Kwame Mensah",
        "amount": 15000,
        "request_id": "550e8400-e29b-41d4-a716-446655440000",
    }
    done = _redact(env, json.dumps(document).encode(), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "customer": {"name": "<NAME>", "phone": "<PHONE>"},
        "message": "declined for <NAME>",
        "amount": 15000,
        "request_id": "550e8400-e29b-41d4-a716-446655440000",
    }


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        (b'{"customer": {"name": "Awa"', "not valid JSON: Expecting ',' delimiter at line 1"),
        (b'{"a": "\xff"}', "not valid UTF-8 at byte 7"),
    ],
)
def test_bad_json_is_one_line_naming_the_problem(
    env: dict[str, str], stdin: bytes, needle: str
) -> None:
    done = _redact(env, stdin, "--json")
    assert done.returncode == 2
    assert done.stdout == b""
    err = done.stderr.decode()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("simcore: error: stdin: ")
    assert needle in lines[0]
    assert "Awa" not in lines[0]  # the error names the problem, never the data
