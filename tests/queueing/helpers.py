from __future__ import annotations

from typing import Any

from simcore.auth import Principal
from simcore.model import Role, TenantType
from simcore.service import SimulatorService
from simcore.templates import get_template

OPS = Principal("alice", Role.OPS)


def make_simulation(
    service: SimulatorService,
    *,
    language: str = "python",
    template: str = "signature_mismatch",
    tenant_type: str = "internal",
    tenant_id: str = "default",
    patch: Any = None,
    total_requests: int | None = None,
) -> Any:
    scenario = get_template(template).scenario
    if total_requests is not None:
        scenario = scenario.model_copy(update={"total_requests": total_requests})
    return service.create_simulation(
        OPS,
        {
            "name": f"{template} test",
            "sdk_language": language,
            "scenario": scenario,
            "tenant_type": TenantType(tenant_type),
            "tenant_id": tenant_id,
            "patch_reference": patch,
        },
    )
