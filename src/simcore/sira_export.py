"""Sending anonymized error signatures to SIRA: one batch, stored, then flagged exported.

A batch is one JSON-lines file, ``sira-<batch_id>.jsonl`` (schema: docs/sira.md): a header
line, then one line per record. It is written to the destination before the rows are flagged,
inside the one transaction that holds those rows: if the upload fails nothing is flagged and
the next export sends them again; two exports at once never send a row twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from simcore import journal, sira
from simcore.artifacts import ArtifactStore, validate_key
from simcore.enums import JournalAction
from simcore.store import Database

MAX_BATCH = 10_000


@dataclass(frozen=True)
class ExportResult:
    batch_id: uuid.UUID | None
    count: int
    location: str | None
    sha256: str | None = None


def encode_batch(document: dict[str, object]) -> bytes:
    """The batch as JSON lines: the header (without records), then each record."""
    records = document.get("records")
    assert isinstance(records, list)
    header = {k: v for k, v in document.items() if k != "records"}
    lines = [json.dumps(header, sort_keys=True, separators=(",", ":"))]
    lines += [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in records]
    return ("\n".join(lines) + "\n").encode()


def export_pending(
    db: Database, store: ArtifactStore, actor: str, *, limit: int = MAX_BATCH
) -> ExportResult:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT id, error_signature, category, sdk_language, frequency, context_hash "
            "FROM sdk_anonymized_errors WHERE NOT exported_to_sira "
            "ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        ).fetchall()
        if not rows:
            return ExportResult(None, 0, None)
        batch_id = uuid.uuid4()
        payload = encode_batch(sira.build_export_batch(rows, batch_id=batch_id))
        key = validate_key(f"sira-{batch_id}.jsonl")
        store.put_bytes(key, payload, content_type="application/x-ndjson")
        location = store.location(key)
        digest = hashlib.sha256(payload).hexdigest()
        conn.execute(
            "INSERT INTO sdk_sira_exports (id, created_by, row_count, payload_sha256, "
            "destination) VALUES (%s, %s, %s, %s, %s)",
            (batch_id, actor, len(rows), digest, location),
        )
        conn.execute(
            "UPDATE sdk_anonymized_errors SET exported_to_sira = true, exported_at = now(), "
            "export_batch_id = %s WHERE id = ANY(%s)",
            (batch_id, [r["id"] for r in rows]),
        )
        journal.append(
            conn,
            JournalAction.EXPORTED,
            actor,
            details={
                "batch_id": str(batch_id),
                "count": len(rows),
                "sha256": digest,
                "destination": location,
            },
        )
    return ExportResult(batch_id, len(rows), location, digest)
