"""Run one simulation end to end in a sandbox and return its report.

``run_simulation`` is what the worker (and ``simcore run``) calls. The report's canonical JSON
(``Report.to_json``) depends only on the scenario, the language, the seed, the patch and the
simulator version: same inputs, same bytes, whatever the host, the backend or the wall clock.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from simcore import __version__
from simcore.errors import InvalidInput
from simcore.gateway.protocol import PROTOCOL_VERSION
from simcore.gateway.session import EventLog, Session, collector_paused
from simcore.model import Patch, RunStatus, Scenario, SdkLanguage
from simcore.sandbox.base import (
    MAX_RUN_TIME_MS,
    SUPPORTED_LANGUAGES,
    LogCallback,
    SandboxBackend,
    SandboxSpec,
    SandboxStartError,
)
from simcore.sandbox.logs import MAX_LOG_BYTES, MAX_LOG_LINES, TRUNCATED

log = logging.getLogger(__name__)
MAX_SEED = 2**63 - 1  # sdk_simulation_runs.seed is a BIGINT


@dataclass(frozen=True)
class Report:
    status: RunStatus
    seed: int
    language: str
    scenario: dict[str, Any]
    patch: dict[str, Any] | None
    metrics: dict[str, Any]
    reasons: tuple[str, ...]
    events: dict[str, Any]
    simulator_version: str = __version__
    # Host facts, useful to show but kept out of the canonical JSON (they are not inputs).
    sandbox: str = field(default="", compare=False)
    log_lines: int = field(default=0, compare=False)
    log_truncated: bool = field(default=False, compare=False)
    error_events: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)
    """Raw error responses of the baseline phase, for anonymization only (never serialized)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "seed": self.seed,
            "language": self.language,
            "scenario": self.scenario,
            "patch": self.patch,
            "metrics": self.metrics,
            "reasons": list(self.reasons),
            "events": self.events,
            "simulator_version": self.simulator_version,
            "protocol": PROTOCOL_VERSION,
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, ASCII, floats already rounded."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
            allow_nan=False,
        )  # fmt: skip


def _patch_summary(patch: Patch | None) -> dict[str, Any] | None:
    if patch is None:
        return None
    return {
        "id": str(patch.id),
        "slug": patch.slug,
        "version": patch.version,
        "error_signature": patch.error_signature,
        "source": patch.source.value,
    }


def _validate(
    scenario: Scenario, language: str, seed: int, patch: Patch | None, max_run_time_ms: int
) -> str:
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise InvalidInput("seed", f"must be an integer in [0, {MAX_SEED}]")
    if type(max_run_time_ms) is not int or max_run_time_ms < 1:
        raise InvalidInput("max_run_time_ms", "must be a positive integer")
    try:
        lang = SdkLanguage(str(language)).value
    except ValueError:
        known = ", ".join(v.value for v in SdkLanguage)
        raise InvalidInput("language", f"unknown language {language!r} ({known})") from None
    if patch is not None and patch.sdk_language.value != lang:
        raise InvalidInput(
            "patch", f"patch {patch.slug or patch.id} is for {patch.sdk_language}, not {lang}"
        )
    return lang


BASELINE_LOG_TAG = "[baseline] "
"""Before each log line of the baseline's runner when the phases run side by side."""


class _SharedLog:
    """One run log for two runners: the caps of ``simcore.sandbox.logs`` hold for the run,
    not for each runner (each one's own cap still holds first)."""

    def __init__(self, on_log: LogCallback) -> None:
        self._on_log = on_log
        self._lock = threading.Lock()
        self._lines = 0
        self._bytes = 0
        self.truncated = False

    def sink(self, tag: str = "") -> LogCallback:
        def emit(line: str) -> None:
            text = tag + line
            with self._lock:  # two reader threads, one ordered log
                if self.truncated:
                    return
                self._lines += 1
                self._bytes += len(text) + 1
                if self._lines > MAX_LOG_LINES or self._bytes > MAX_LOG_BYTES:
                    self.truncated = True
                    text = TRUNCATED
                self._on_log(text)

        return emit


def run_simulation(
    scenario: Scenario,
    language: SdkLanguage | str,
    seed: int,
    patch: Patch | None,
    backend: SandboxBackend,
    max_run_time_ms: int = MAX_RUN_TIME_MS,
    on_log: LogCallback | None = None,
) -> Report:
    """Play the baseline phase (no patch) and the patched phase; score both.

    On a backend with ``parallel_phases`` (the process sandbox) the two phases run side by
    side, each in its own sandbox; otherwise one after the other in one. The report is the
    same byte for byte either way.

    Raises ``InvalidInput`` for bad arguments and ``SandboxUnavailable`` when the backend
    cannot isolate the runner on this host. Anything the sandbox does becomes a status
    (``failed`` with ``protocol_violation``, ``timeout``, ``error``), never an exception.
    """
    lang = _validate(scenario, str(language), seed, patch, max_run_time_ms)

    def report(status: RunStatus, reasons: tuple[str, ...], **extra: Any) -> Report:
        return Report(
            status=status,
            seed=seed,
            language=lang,
            scenario=scenario.to_json(),
            patch=_patch_summary(patch),
            metrics=extra.pop("metrics", {}),
            reasons=reasons,
            events=extra.pop("events", EventLog().to_json()),
            sandbox=backend.name,
            **extra,
        )

    if lang not in SUPPORTED_LANGUAGES:
        return report(RunStatus.ERROR, (f"no SDK runner for {lang} yet",))
    side_by_side = patch is not None and getattr(backend, "parallel_phases", False)
    shared = _SharedLog(on_log) if side_by_side and on_log is not None else None
    try:
        sandbox = backend.start(
            SandboxSpec(lang, max_run_time_ms, shared.sink() if shared else on_log)
        )
    except SandboxStartError as exc:
        return report(RunStatus.ERROR, (f"sandbox could not start: {exc}",))
    baseline_sandbox = None
    if side_by_side:
        # The baseline on a runner of its own, side by side with the patched phase (see
        # Session); its log lines say which phase they come from.
        try:
            tagged = shared.sink(BASELINE_LOG_TAG) if shared else None
            baseline_sandbox = backend.start(SandboxSpec(lang, max_run_time_ms, tagged))
        except SandboxStartError as exc:
            sandbox.close()
            return report(RunStatus.ERROR, (f"sandbox could not start: {exc}",))
    session = Session(scenario, lang, seed, patch, sandbox, baseline_sandbox, max_run_time_ms)
    # The garbage collector is paused while the phases play (see collector_paused), and until
    # the session is gone: the first collection after the play would otherwise look at every
    # ledger entry and record of the run once more, for nothing.
    with collector_paused():
        try:
            result = session.run()
        except Exception as exc:
            # A bug on our side, not the sandbox's doing; the worker still gets a report.
            log.exception("simulation crashed")
            for started in session.sandboxes:
                started.close()
            return report(RunStatus.ERROR, (f"internal error: {type(exc).__name__}: {exc}",))
        finally:
            del session
    exit_info = result.exit
    return report(
        result.status,
        result.reasons,
        metrics=result.metrics,
        events=result.events.to_json(),
        log_lines=exit_info.log_lines if exit_info else 0,
        log_truncated=(exit_info.log_truncated if exit_info else False)
        or (shared is not None and shared.truncated),
        error_events=tuple(result.error_events),
    )
