"""Property-based: every operation of /openapi.json, fed generated (and broken) requests.

schemathesis checks that nothing answers 5xx, that every status and body is the one the
document declares, that content types and headers match, and that missing or ignored auth is
refused. Examples per operation are few, so the whole module stays well under a minute.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from simcore.templates import get_template
from tests.api.conftest import LAUNCHER, Env, LiveServer

MAX_EXAMPLES = 10


@pytest.fixture(scope="module")
def target(shared: Env) -> tuple[LiveServer, str]:
    # Something to find besides random ids: a simulation with a patch, and a queued run.
    service = shared.service
    patch = service.list_patches(LAUNCHER, language="python")[0]
    sim = service.create_simulation(
        LAUNCHER,
        {
            "name": "schemathesis",
            "sdk_language": "python",
            "scenario": get_template("timeout").scenario,
            "patch_reference": patch.id,
        },
    )
    service.launch_run(LAUNCHER, sim.id, 1)
    return shared.live, shared.tokens.ops


@pytest.fixture
def api_schema(target: tuple[LiveServer, str]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{target[0].url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# What the JSON Schema does not say, and so may meet schema-valid data with a 422: a reference
# to a patch that does not exist, a slug another patch already has (both depend on what the
# database holds), a NUL character (PostgreSQL cannot store it in text), other control
# characters (terminal escapes in text people read), a note or patch code of blanks only
# (said in words: a pattern on such fields costs clients too much) and patch code that does
# not compile in its SDK's language (no schema can say it). Any other schema-valid request
# must be accepted.
STATE_FIELDS = {"patchReference", "slug"}


def positive_data_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    if response.status_code == 422:
        try:
            error = json.loads(response.content)["error"]
        except (ValueError, KeyError, TypeError):
            error = {}
        if error.get("field") in STATE_FIELDS:
            return None
        message = str(error.get("message"))
        if "NUL" in message and "\\u0000" in json.dumps(case.body):
            return None
        if "visible text" in message or "control characters" in message:
            return None
        if error.get("field") in ("patch_code", "rollback_code") and "does not compile" in message:
            return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_honours_its_openapi_document(
    case: schemathesis.Case, target: tuple[LiveServer, str]
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {target[1]}"},
        timeout=10,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[positive_data_accepted],
    )
