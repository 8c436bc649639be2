"""Demo runs: the runbook's three templates in python and node with their good built-in
patches, plus one harmful patch the simulator must catch.

In local mode the demo acts as ``ops:demo``, not as the person at the terminal: the
four-eyes rule (``simcore.approvals.decide``) forbids approving the patch of a run one
launched, and the point of the demo is to let that person approve one.
"""

from __future__ import annotations

from dataclasses import dataclass

from simcore.auth import Principal
from simcore.facade import Simulator
from simcore.model import Role, Run, SdkLanguage, SimulationCreate
from simcore.patches import default_patch
from simcore.templates import RUNBOOK_TEMPLATES, get_template

DEMO_PRINCIPAL = Principal("demo", Role.OPS)
DEMO_LANGUAGES = (SdkLanguage.PYTHON, SdkLanguage.NODE)
BAD_PATCH = ("timeout", "timeout-retry-without-key-python", SdkLanguage.PYTHON)
"""Retries a timed-out payment without its Idempotency-Key: duplicate charges, run fails."""
SEED = 12345
"""The runbook's seed: the same demo gives the same results on every machine."""


@dataclass(frozen=True)
class DemoPlan:
    name: str
    template: str
    language: SdkLanguage
    patch_ref: str


def plan() -> list[DemoPlan]:
    runs = []
    for name in RUNBOOK_TEMPLATES:
        template = get_template(name)
        for language in DEMO_LANGUAGES:
            patch = default_patch(template.scenario.error, language)
            assert patch is not None, (name, language)
            runs.append(
                DemoPlan(f"{template.title} ({language.value})", name, language, str(patch.id))
            )
    template_name, slug, language = BAD_PATCH
    runs.append(
        DemoPlan(
            f"{get_template(template_name).title} ({language.value}, bad patch)",
            template_name,
            language,
            slug,
        )
    )
    return runs


def launch_demo(simulator: Simulator, actor: Principal = DEMO_PRINCIPAL) -> list[Run]:
    """Create the demo simulations and launch one run of each; returns the runs."""
    runs = []
    for item in plan():
        patch = simulator.get_patch(actor, item.patch_ref)
        template = get_template(item.template)
        simulation = simulator.create_simulation(
            actor,
            SimulationCreate(
                name=item.name,
                description=f"demo: {template.description}",
                sdk_language=item.language,
                scenario=template.scenario,
                patch_reference=patch.id,
            ),
        )
        runs.append(simulator.launch_run(actor, simulation.id, SEED).run)
    return runs
