"""The built-in registry: stable ids, both languages, a default per fault."""

from __future__ import annotations

import uuid

import pytest

from simcore.errors import InvalidInput
from simcore.model import ErrorKind, PatchSource
from simcore.patches import NAMESPACE, builtin_patches, default_patch, find_patch


def test_ids_are_uuid5_of_the_slug_and_unique() -> None:
    patches = builtin_patches()
    assert len({p.id for p in patches}) == len({p.slug for p in patches}) == len(patches)
    for patch in patches:
        assert patch.slug and patch.id == uuid.uuid5(NAMESPACE, patch.slug)
        assert patch.source is PatchSource.BUILTIN
    # Pinned: reports and journals written today must name the same patch tomorrow.
    assert str(find_patch("timeout-retry-idempotent", "python").id) == str(
        uuid.uuid5(uuid.UUID("52f40c40-8da7-4463-bdf7-c36694699d87"),
                   "timeout-retry-idempotent-python")
    )  # fmt: skip


@pytest.mark.parametrize("error", list(ErrorKind))
@pytest.mark.parametrize("language", ["python", "node"])
def test_every_fault_has_a_good_default_in_both_languages(error: ErrorKind, language: str) -> None:
    patch = default_patch(error, language)
    assert patch is not None and patch.active
    assert patch.error_signature == error.value and patch.sdk_language == language


def test_bad_examples_are_inactive_and_never_defaults() -> None:
    bad = [p for p in builtin_patches() if not p.active]
    assert {p.slug for p in bad} == {
        f"{name}-{lang}"
        for name in ("timeout-retry-without-key", "invalid_currency-force-xof",
                     "signature_mismatch-retry-without-resync")
        for lang in ("python", "node")
    }  # fmt: skip


def test_find_by_id_slug_or_short_slug() -> None:
    patch = find_patch("invalid_currency-normalize-currency", "node")
    assert find_patch(str(patch.id), "node") is patch
    assert find_patch(str(patch.id).upper(), "node") is patch
    assert find_patch("invalid_currency-normalize-currency-node", "node") is patch
    with pytest.raises(InvalidInput, match="is a node patch, not python"):
        find_patch(str(patch.id), "python")
