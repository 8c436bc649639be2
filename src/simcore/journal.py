"""The hash-chained, append-only audit journal (``sdk_simulation_journal``).

Appends go through the database function ``sdk_journal_append`` so that every writer — simcore,
or a trigger reacting to a change made by hand in psql — extends one chain. Verification is
done here, in Python, from the stored fields: it recomputes each hash with its own
implementation of the canonical encoding (version 1, see migration 0002) instead of trusting
the database to check itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from simcore.model import JournalAction
from simcore.store import Database

GENESIS = "0" * 64


def append(
    conn: psycopg.Connection[Any],
    action: JournalAction,
    actor: str,
    *,
    run_id: UUID | None = None,
    simulation_id: UUID | None = None,
    approval_id: UUID | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry inside the caller's transaction; returns its id."""
    row = conn.execute(
        "SELECT sdk_journal_append(%s, %s, %s, %s, %s, %s) AS id",
        (run_id, simulation_id, approval_id, action.value, actor, Jsonb(details or {})),
    ).fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, dict) else row[0])


def mark_journaled(conn: psycopg.Connection[Any]) -> None:
    """Tell the by-hand trigger that this transaction journals its own status changes."""
    conn.execute("SELECT set_config('simtui.journaled', 'on', true)")


@dataclass(frozen=True)
class Entry:
    id: int
    run_id: UUID | None
    simulation_id: UUID | None
    approval_id: UUID | None
    action: str
    actor: str
    details: dict[str, Any]
    prev_hash: str
    hash: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        return cls(
            row["id"], row["run_id"], row["simulation_id"], row["approval_id"], row["action"],
            row["actor"], row["details"], row["prev_hash"], row["hash"], row["created_at"],
        )  # fmt: skip


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_break: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"journal verified: {self.checked} entries, chain intact"
        return f"journal BROKEN at entry {self.first_break}: {self.reason}"


_SELECT = (
    "SELECT id, run_id, simulation_id, approval_id, action, actor, details, "
    "details::text AS details_text, prev_hash, hash, created_at, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at_text "
    "FROM sdk_simulation_journal"
)


def canonical(row: dict[str, Any], prev_hash: str) -> bytes:
    parts = [
        "v1",
        prev_hash,
        str(row["run_id"]) if row["run_id"] else "",
        str(row["simulation_id"]) if row["simulation_id"] else "",
        str(row["approval_id"]) if row["approval_id"] else "",
        row["action"],
        row["actor"],
        row["details_text"],
        row["at_text"],
    ]
    return "\n".join(parts).encode("utf-8")


def _rows(db: Database, batch: int = 5000) -> Iterator[dict[str, Any]]:
    # A named (server-side) cursor keeps memory flat on a long journal.
    with db.connect() as conn, conn.transaction(), conn.cursor(name="journal_verify") as cur:
        cur.itersize = batch
        cur.execute(_SELECT + " ORDER BY id")
        yield from cur


def verify(db: Database) -> Verification:
    """Walk the chain from the first entry; report the first entry that does not fit."""
    expected_prev = GENESIS
    checked = 0
    for row in _rows(db):
        if row["prev_hash"] != expected_prev:
            return Verification(
                False,
                checked,
                row["id"],
                "prev_hash does not match the hash of the entry before it "
                "(an entry was removed, inserted or reordered)",
            )
        digest = hashlib.sha256(canonical(row, expected_prev)).hexdigest()
        if digest != row["hash"]:
            return Verification(
                False,
                checked,
                row["id"],
                "content does not match its hash (the entry was edited after it was written)",
            )
        expected_prev = row["hash"]
        checked += 1
    return Verification(True, checked)


def entries(
    conn: psycopg.Connection[Any],
    *,
    run_id: UUID | None = None,
    approval_id: UUID | None = None,
    limit: int = 1000,
) -> list[Entry]:
    where, params = [], []
    if run_id is not None:
        where.append("run_id = %s")
        params.append(run_id)
    if approval_id is not None:
        where.append("approval_id = %s")
        params.append(approval_id)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = conn.execute(_SELECT + clause + " ORDER BY id LIMIT %s", (*params, limit)).fetchall()
    return [Entry.from_row(r) for r in rows]


def entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "run_id": str(entry.run_id) if entry.run_id else None,
        "simulation_id": str(entry.simulation_id) if entry.simulation_id else None,
        "approval_id": str(entry.approval_id) if entry.approval_id else None,
        "action": entry.action,
        "actor": entry.actor,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "created_at": entry.created_at.isoformat(),
    }


def dumps(entries_: list[Entry]) -> str:
    return json.dumps([entry_to_json(e) for e in entries_], indent=2)
