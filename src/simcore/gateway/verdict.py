"""The verdict of a finished run (DESIGN.md, Verdict), with reasons a person can act on.

- ``success``: patched success_rate >= threshold, no regressions, no duplicate or wrong
  payments, no patch errors (and the sandbox kept to the protocol).
- ``partial_success``: better than baseline, nothing harmful, but under the threshold.
- ``failed``: anything else; the reasons name the harm first.
``timeout`` and ``error`` are decided by the runner (the run did not finish).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simcore.enums import RunStatus
from simcore.gateway.scoring import PhaseScore

PROTOCOL_VIOLATION = "protocol_violation"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: RunStatus
    reasons: tuple[str, ...]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def harms(
    patched: PhaseScore,
    regressions: int,
    patch_errors: Sequence[str],
    violation: str | None,
) -> list[str]:
    """What the patch (or the sandbox) did wrong, most serious first."""
    found: list[str] = []
    if violation is not None:
        found.append(f"{PROTOCOL_VIOLATION}: {violation}")
    if patch_errors:
        more = f" ({len(patch_errors)} patch errors)" if len(patch_errors) > 1 else ""
        found.append(f"patch raised: {patch_errors[0]}{more}")
    duplicates = patched.metrics["duplicate_charges"]
    if duplicates:
        found.append(_plural(duplicates, "duplicate charge"))
    wrong = patched.metrics["wrong_payments"]
    if wrong:
        kinds = []
        if patched.wrong_currency:
            kinds.append("currency changed")
        if patched.wrong_amount:
            kinds.append("amount changed")
        found.append(f"{_plural(wrong, 'wrong payment')} ({', '.join(kinds)})")
    if regressions:
        found.append(
            f"{_plural(regressions, 'regression')} (ops that succeeded in baseline failed "
            "when patched)"
        )
    return found


def decide(
    baseline: PhaseScore,
    patched: PhaseScore,
    regressions: int,
    threshold: float,
    has_patch: bool,
    patch_errors: Sequence[str] = (),
    violation: str | None = None,
) -> Verdict:
    rate = patched.metrics["success_rate"]
    base = baseline.metrics["success_rate"]
    if violation is not None:
        # The run was cut short: regressions and rates would only count the ops never played.
        return Verdict(RunStatus.FAILED, tuple(harms(patched, 0, patch_errors, violation)))
    found = harms(patched, regressions, patch_errors, violation)
    meets = rate >= threshold
    if not found and meets:
        prefix = "" if has_patch else "no patch: "
        return Verdict(
            RunStatus.SUCCESS,
            (
                f"{prefix}success rate {_pct(rate)} meets the {_pct(threshold)} threshold "
                f"(baseline {_pct(base)})",
            ),
        )
    below = f"success rate {_pct(rate)} below the {_pct(threshold)} threshold"
    if not found and has_patch and rate > base:
        return Verdict(
            RunStatus.PARTIAL_SUCCESS,
            (below, f"improved over baseline ({_pct(base)} -> {_pct(rate)})"),
        )
    reasons = list(found)
    if not has_patch:
        reasons.append("no patch: baseline only")
    if not meets:
        reasons.append(below)
    if has_patch and rate <= base:
        reasons.append(f"no improvement over baseline ({_pct(base)} -> {_pct(rate)})")
    return Verdict(RunStatus.FAILED, tuple(reasons))
