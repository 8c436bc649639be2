"""`simcore run`: play one simulation now, in a sandbox, and print its report.

No database involved: the scenario comes from a template or JSON, the patch from the built-in
registry or a file. Exit status: 0 when the verdict is ``success``, 1 for any other verdict,
2 for bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from pathlib import Path
from typing import Any

from simcore.commands.scenario import read_scenario_arg
from simcore.config import load_settings
from simcore.errors import InvalidInput
from simcore.model import Patch, PatchSource, RunStatus, Scenario, SdkLanguage
from simcore.patches import NAMESPACE, default_patch, find_patch
from simcore.runner import MAX_SEED, Report, run_simulation
from simcore.sandbox.base import SUPPORTED_LANGUAGES
from simcore.sandbox.selection import select
from simcore.templates import get_template

MAX_PATCH_BYTES = 32 * 1024
_ROWS = (
    "success_rate", "avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
    "total_requests", "failed_requests", "retries", "http_requests", "duplicate_charges",
    "wrong_payments", "patch_invocations", "patch_errors", "simulated_ms",
)  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run one simulation in a sandbox and print its report")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--template", metavar="NAME", help="a built-in scenario template")
    source.add_argument("--scenario", metavar="JSON|@FILE", help="scenario JSON, @file or -")
    p.add_argument("--language", choices=SUPPORTED_LANGUAGES, default="python")
    p.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--patch", metavar="ID|SLUG", help="a built-in patch (default: the good "
                       "one for the scenario's error and the language)")  # fmt: skip
    which.add_argument("--patch-file", metavar="FILE", help="patch_code from a file")
    which.add_argument("--no-patch", action="store_true", help="baseline only")
    p.add_argument("--rollback-file", metavar="FILE", help="rollback_code (with --patch-file)")
    p.add_argument("--sandbox", choices=("auto", "process", "docker"), default=None,
                   help="sandbox backend (default: SIMTUI_SANDBOX, else auto)")  # fmt: skip
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="process sandbox without namespaces: development only")  # fmt: skip
    p.add_argument("--max-run-time-ms", type=int, default=None,
                   help="kill the run after this long (default: MAX_RUN_TIME_MS)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the canonical JSON report")
    p.add_argument("--log", action="store_true", help="stream the sandbox log to stderr")
    p.set_defaults(handler=_run)


def _read_code(path: str, field: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_PATCH_BYTES:
        raise InvalidInput(field, f"{path} is larger than {MAX_PATCH_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(field, f"{path} is not UTF-8 text") from None


def _choose_patch(args: argparse.Namespace, scenario: Scenario, language: str) -> Patch | None:
    if args.rollback_file and not args.patch_file:
        raise InvalidInput("rollback-file", "only makes sense with --patch-file")
    if args.no_patch:
        return None
    if args.patch:
        return find_patch(args.patch, language)
    if args.patch_file:
        code = _read_code(args.patch_file, "patch-file")
        rollback = _read_code(args.rollback_file, "rollback-file") if args.rollback_file else ""
        # Refused here as the registry refuses it: a file that does not compile is a typo to
        # fix, not a patch to judge.
        from simcore import patch_check

        patch_check.require_compiles(language, (("patch-file", code), ("rollback-file", rollback)))
        # Named by content, so the same file gives the same report byte for byte.
        digest = hashlib.sha256(f"{language}\0{code}\0{rollback}".encode()).hexdigest()
        return Patch(
            id=uuid.uuid5(NAMESPACE, f"file:{digest}"),
            description=f"from {Path(args.patch_file).name}",
            sdk_language=SdkLanguage(language),
            error_signature=scenario.error.value,
            patch_code=code,
            rollback_code=rollback,
            source=PatchSource.OPS,
        )
    patch = default_patch(scenario.error, language)
    if patch is None:
        raise InvalidInput(
            "patch",
            f"no built-in patch for {scenario.error.value} in {language}; "
            "pass --patch-file or --no-patch",
        )
    return patch


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value <= 1.0 else f"{value:.1f}"
    return str(value)


def render(report: Report) -> str:
    patch = (report.patch["slug"] or report.patch["id"]) if report.patch else "none"
    lines = [
        f"simulation  {report.scenario['error']} · {report.language} · seed {report.seed}"
        f" · patch {patch}",
        f"status      {report.status.value}",
    ]
    lines += [f"            {reason}" for reason in report.reasons]
    metrics = report.metrics
    if metrics:
        base = metrics.get("baseline", {})
        lines += ["", f"{'metric':<20}{'baseline':>12}{'patched':>12}"]
        for key in _ROWS:
            lines.append(f"{key:<20}{_cell(base.get(key)):>12}{_cell(metrics.get(key)):>12}")
        lines.append(f"{'regressions':<20}{'':>12}{_cell(metrics.get('regressions')):>12}")
        lines.append(f"{'improvement':<20}{'':>12}{metrics.get('improvement', 0):>+12.4f}")
    counts = report.events.get("counts", {}).get("patched", {})
    if counts:
        lines += ["", "events      " + " · ".join(f"{k} {v}" for k, v in sorted(counts.items()))]
    for event in report.events.get("notable", [])[:5]:
        where = event["op_id"] or "end of run"
        lines.append(f"            {event['name']} ({where}): {event['detail']}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    scenario = get_template(args.template).scenario if args.template else None
    if scenario is None:
        scenario = read_scenario_arg(args.scenario)
    if not 0 <= args.seed <= MAX_SEED:
        raise InvalidInput("seed", f"must be an integer in [0, {MAX_SEED}]")
    max_run_time_ms = settings.max_run_time_ms
    if args.max_run_time_ms is not None:
        max_run_time_ms = args.max_run_time_ms
    if not 100 <= max_run_time_ms <= 3_600_000:
        raise InvalidInput("max-run-time-ms", "must be between 100 and 3600000")
    patch = _choose_patch(args, scenario, args.language)
    if patch is not None and patch.error_signature != scenario.error.value:
        print(
            f"simcore: warning: the patch handles {patch.error_signature!r} but the scenario "
            f"injects {scenario.error.value!r}: it will never run",
            file=sys.stderr,
        )
    requested = args.sandbox or settings.sandbox
    backend = select(requested, unsafe_no_isolation=args.unsafe_no_isolation)
    chosen = f"{backend.name} (auto)" if requested == "auto" else backend.name
    print(f"simcore: sandbox: {chosen}: {backend.check()}", file=sys.stderr)

    def stream(line: str) -> None:
        print(f"[sandbox] {line}", file=sys.stderr, flush=True)

    report = run_simulation(
        scenario,
        args.language,
        args.seed,
        patch,
        backend,
        max_run_time_ms=max_run_time_ms,
        on_log=stream if args.log else None,
    )
    print(report.to_json() if args.json else render(report))
    return 0 if report.status is RunStatus.SUCCESS else 1
