"""Python and node SDKs behave identically: the same metrics for every template and patch,
and the same byte-exact report for the same inputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simcore.patches import builtin_patches
from simcore.runner import Report
from simcore.templates import TEMPLATES

CASES = [(name, None) for name in TEMPLATES] + sorted(
    {
        (p.error_signature, p.slug.removesuffix(f"-{p.sdk_language}"))
        for p in builtin_patches()
        if p.slug and p.error_signature in TEMPLATES
    }
)

TemplateRun = Callable[[str, str, str | None], Report]


@pytest.mark.parametrize(("template", "patch"), CASES)
def test_python_and_node_get_the_same_metrics(
    template_run: TemplateRun, template: str, patch: str | None
) -> None:
    python = template_run(template, "python", patch)
    node = template_run(template, "node", patch)
    assert python.status == node.status
    assert python.metrics == node.metrics
    assert python.events["counts"] == node.events["counts"]
    assert python.metrics["total_requests"] == TEMPLATES[template].scenario.total_requests


def test_every_builtin_patch_is_covered() -> None:
    covered = {slug for _, slug in CASES if slug}
    for patch in builtin_patches():
        assert patch.slug and patch.slug.removesuffix(f"-{patch.sdk_language}") in covered
