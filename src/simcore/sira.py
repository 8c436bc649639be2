"""Anonymized error signatures of a run, and the batch SIRA receives.

SIRA learns which errors SDKs meet and how often, to propose patches. It must learn nothing
about the customers behind them: a record carries the error's signature
(``signature_mismatch:401``), its category, how often it happened in the run, and
``context_hash``, the SHA-256 of the error's context after redaction and normalization.
Normalization collapses what changes from one occurrence to the next (numbers, ids,
timestamps, hashes) so the same kind of error yields the same hash across runs and SIRA can
group them; the raw context never leaves the worker, not even hashed.

This module is pure: the store writes the rows and flags them exported.

An error event is a dict; the fields read are (first one present wins):

- code: ``error_code``, ``code``, ``error`` (text, or an object with ``code``), or
  ``body.error.code``;
- ``category`` (else derived from the code, then from the status);
- status: ``status``, ``http_status``, ``status_code`` (absent or 0 for a timeout);
- message: ``message``, ``error.message`` or ``body.error.message``;
- ``body`` (the response body, JSON text or object) and ``headers`` (names only are used).

Anything else (the op's request, customer data, ids) is redacted with the rest but left out
of the context.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from simcore.enums import SdkLanguage
from simcore.errors import InvalidInput
from simcore.redact import JsonValue, redact_json, redact_text

EXPORT_FORMAT = "simtui.sira.anonymized_errors"
EXPORT_VERSION = 1
CONTEXT_VERSION = 1
_MAX_SLUG = 64

_CATEGORY_BY_CODE = {
    "signature_mismatch": "authentication",
    "invalid_signature": "authentication",
    "missing_api_key": "authentication",
    "invalid_api_key": "authentication",
    "unauthorized": "authentication",
    "webhook_verification_failed": "authentication",
    "timeout": "timeout",
    "gateway_timeout": "timeout",
    "read_timeout": "timeout",
    "connect_timeout": "timeout",
    "rate_limited": "rate_limit",
    "too_many_requests": "rate_limit",
    "server_error": "server",
    "bad_gateway": "server",
    "service_unavailable": "server",
    "internal_error": "server",
    "invalid_currency": "validation",
    "invalid_amount": "validation",
    "invalid_request": "validation",
    "idempotency_conflict": "idempotency",
    "not_found": "client",
    "method_not_allowed": "client",
}
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class AnonymizedError:
    """One error signature met in a run (a row of ``sdk_anonymized_errors``)."""

    error_signature: str
    category: str
    sdk_language: str
    occurrences: int
    frequency: float
    context_hash: str

    def to_row(self) -> dict[str, Any]:
        return {
            "error_signature": self.error_signature,
            "category": self.category,
            "sdk_language": self.sdk_language,
            "frequency": self.frequency,
            "context_hash": self.context_hash,
        }


# ---------------------------------------------------------------------------------------------
# Reading an event
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _slug(raw: str) -> str:
    """``Signature Mismatch`` -> ``signature_mismatch``; personal data never survives it."""
    text = redact_text(raw).lower()
    text = re.sub(r"<([a-z]+)>", r"\1", text)  # "<email>" -> "email": the kind, not the datum
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:_MAX_SLUG].strip("_")


def _first(event: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = event.get(name)
        if value is not None and value != "":
            return value
    return None


def _body(event: Mapping[str, Any]) -> Any:
    body = event.get("body")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _error_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    error = event.get("error")
    if isinstance(error, Mapping):
        return error
    body = _body(event)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        nested: Mapping[str, Any] = body["error"]
        return nested
    return {}


def _code(event: Mapping[str, Any]) -> str:
    raw = _first(event, "error_code", "code")
    if raw is None and isinstance(event.get("error"), str):
        raw = event["error"]
    if raw is None:
        raw = _error_object(event).get("code")
    slug = _slug(str(raw)) if raw is not None else ""
    return slug or "unknown"


def _status(event: Mapping[str, Any]) -> int | None:
    raw = _first(event, "status", "http_status", "status_code")
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, int) and 100 <= raw <= 599:
        return raw
    return None  # no response at all (timed out, connection reset)


def _category(event: Mapping[str, Any], code: str, status: int | None) -> str:
    given = event.get("category")
    if isinstance(given, str) and _slug(given):
        return _slug(given)
    if code in _CATEGORY_BY_CODE:
        return _CATEGORY_BY_CODE[code]
    if status is None:
        return "unknown"
    if status in (401, 403):
        return "authentication"
    if status in (408, 504):
        return "timeout"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    if status >= 400:
        return "client"
    return "unknown"


def error_signature(event: Mapping[str, Any]) -> str:
    """``<code>:<status>`` (``signature_mismatch:401``), or ``<code>`` with no response."""
    code = _code(event)
    status = _status(event)
    return f"{code}:{status}" if status is not None else code


# ---------------------------------------------------------------------------------------------
# Context: redacted, then normalized
# ---------------------------------------------------------------------------------------------

_VOLATILE = re.compile(
    r"(?P<uuid>\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)"
    r"|(?P<ts>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?\b|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b)"
    r"|(?P<hex>\b(?=[0-9A-Fa-f]*\d)[0-9A-Fa-f]{8,}\b)"
    r"|(?P<id>\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*\b)"
    r"|(?P<num>\d+(?:[.,]\d+)*)"
)
_PLACEHOLDER_OR_VOLATILE = re.compile(r"<[A-Z]+>|" + _VOLATILE.pattern)


def _normalize_text(text: str) -> str:
    def collapse(m: re.Match[str]) -> str:
        if m.lastgroup is None:  # a placeholder: already as general as it gets
            return m.group()
        return f"<{m.lastgroup.upper()}>"

    return " ".join(_PLACEHOLDER_OR_VOLATILE.sub(collapse, text).split())


def _normalize(value: JsonValue) -> JsonValue:
    if isinstance(value, dict):
        return {_normalize_text(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        return _normalize_text(value)
    if isinstance(value, bool) or value is None:
        return value
    return "<NUM>"


def hash_input(event: Mapping[str, Any]) -> str:
    """The exact text whose SHA-256 is the event's ``context_hash``.

    The whole event is redacted first (so a name read in ``customer.name`` is also removed
    from the message), then the context is cut out of it and normalized.
    """
    # Worker events may carry UUIDs or datetimes; their text form is what gets redacted.
    plain = json.loads(json.dumps(event, default=str))
    redacted = redact_json(plain)
    assert isinstance(redacted, dict)
    error = _error_object(redacted)
    message = _first(redacted, "message")
    if message is None:
        message = error.get("message")
    headers = redacted.get("headers")
    header_names = sorted(str(k).lower() for k in headers) if isinstance(headers, dict) else []
    context = {
        "v": CONTEXT_VERSION,
        "signature": error_signature(event),
        "category": _category(event, _code(event), _status(event)),
        "message": _normalize_text(str(message)) if message is not None else None,
        "body": _normalize(_body(redacted)),
        "headers": [_normalize_text(name) for name in header_names],
    }
    return json.dumps(context, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def context_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(hash_input(event).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# A run's signatures
# ---------------------------------------------------------------------------------------------


def _language(value: str | SdkLanguage) -> str:
    try:
        return SdkLanguage(value).value
    except ValueError:
        allowed = ", ".join(lang.value for lang in SdkLanguage)
        raise InvalidInput("sdk_language", f"{value!r} is not one of {allowed}") from None


def anonymize_errors(
    events: Iterable[Mapping[str, Any]],
    *,
    total_requests: int,
    sdk_language: str | SdkLanguage,
) -> list[AnonymizedError]:
    """One record per error signature met, most frequent first.

    ``frequency`` is occurrences / the run's total requests (at most 1: retries may make
    more errors than requests). Where one signature met several contexts, the hash is the
    most common one's, so a rare variant does not change the group SIRA files it under.
    """
    if isinstance(total_requests, bool) or total_requests < 1:
        raise InvalidInput("total_requests", "must be a positive integer")
    language = _language(sdk_language)
    by_signature: dict[str, list[tuple[str, str]]] = {}
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            # The type only: the value may be exactly the data this module keeps out.
            raise InvalidInput(f"events[{i}]", f"must be an object, not {type(event).__name__}")
        signature = error_signature(event)
        category = _category(event, _code(event), _status(event))
        by_signature.setdefault(signature, []).append((category, hash_input(event)))
    records = []
    for signature, seen in by_signature.items():
        contexts = Counter(material for _, material in seen)
        top = min(contexts.items(), key=lambda item: (-item[1], item[0]))[0]
        category = Counter(cat for cat, _ in seen).most_common(1)[0][0]
        records.append(
            AnonymizedError(
                error_signature=signature,
                category=category,
                sdk_language=language,
                occurrences=len(seen),
                frequency=round(min(1.0, len(seen) / total_requests), 6),
                context_hash=hashlib.sha256(top.encode("utf-8")).hexdigest(),
            )
        )
    records.sort(key=lambda r: (-r.occurrences, r.error_signature))
    return records


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def _export_record(row: AnonymizedError | Mapping[str, Any], index: int) -> dict[str, Any]:
    data: Mapping[str, Any] = row.to_row() if isinstance(row, AnonymizedError) else row
    where = f"rows[{index}]"
    signature = data.get("error_signature")
    if not isinstance(signature, str) or not signature.strip():
        raise InvalidInput(f"{where}.error_signature", "required text")
    code, _, status = signature.partition(":")
    # Rebuilt from its parts, so a signature can only ever be a code and a status.
    safe_signature = _slug(code) or "unknown"
    if status:
        if not status.isdigit():
            raise InvalidInput(f"{where}.error_signature", "status after ':' must be a number")
        safe_signature += f":{int(status)}"
    category = data.get("category") or "unknown"
    if not isinstance(category, str):
        raise InvalidInput(f"{where}.category", "must be text")
    frequency = data.get("frequency")
    if isinstance(frequency, bool) or not isinstance(frequency, int | float):
        raise InvalidInput(f"{where}.frequency", "must be a number")
    if not 0.0 <= float(frequency) <= 1.0:
        raise InvalidInput(f"{where}.frequency", "must be between 0 and 1")
    digest = data.get("context_hash")
    # Anything but a SHA-256 digest here could be raw context: refuse it rather than send it.
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise InvalidInput(f"{where}.context_hash", "must be a SHA-256 hex digest")
    try:
        language = _language(str(data.get("sdk_language")))
    except InvalidInput as exc:
        raise InvalidInput(f"{where}.sdk_language", exc.reason) from None
    return {
        "error_signature": safe_signature,
        "category": _slug(category) or "unknown",
        "sdk_language": language,
        "frequency": round(float(frequency), 6),
        "context_hash": digest,
    }


def build_export_batch(
    rows: Sequence[AnonymizedError | Mapping[str, Any]],
    *,
    batch_id: uuid.UUID | None = None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The JSON document sent to SIRA: whitelisted, re-checked fields only.

    Rows may be ``AnonymizedError`` records or ``sdk_anonymized_errors`` rows (mappings);
    columns other than the five exported ones (ids, run ids, timestamps) are left out.
    """
    when = generated_at or datetime.now(UTC)
    if when.tzinfo is None:
        raise InvalidInput("generated_at", "must carry a time zone")
    records = [_export_record(row, i) for i, row in enumerate(rows)]
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "batch_id": str(batch_id or uuid.uuid4()),
        "generated_at": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "count": len(records),
        "records": records,
    }
