"""The hash-chained, append-only audit journal (``sdk_simulation_journal``).

Appends go through the database function ``sdk_journal_append`` so that every writer — simcore,
or a trigger reacting to a change made by hand in psql — writes the same way. An append is a
plain INSERT, unsealed: it takes no lock, so writers never wait for each other, and a trigger
stamps the entry's content hash at once. Sealing (``seal``, the database's
``sdk_journal_seal``) later gives committed entries their place in one chain, in batches, one
sealer at a time; see migration 0006 for why the chain follows seal order, not id order.

Verification is done here, in Python, from the stored fields: it recomputes every hash with
its own implementation of the canonical encodings (version 1, migration 0002, for entries
written before sealing existed; version 2, migration 0006) instead of trusting the database
to check itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from simcore.enums import JournalAction

# psycopg only where a statement runs: the dashboard imports this module for its types, and
# draws its first screen before the database driver is loaded (simtui.session).
if TYPE_CHECKING:
    import psycopg

    from simcore.store import Database

GENESIS = "0" * 64
SEAL_BATCH = 5000


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
    from psycopg.types.json import Jsonb

    row = conn.execute(
        "SELECT sdk_journal_append(%s, %s, %s, %s, %s, %s) AS id",
        (run_id, simulation_id, approval_id, action.value, actor, Jsonb(details or {})),
    ).fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, dict) else row[0])


def mark_journaled(conn: psycopg.Connection[Any]) -> None:
    """Tell the by-hand trigger that this transaction journals its own status changes."""
    conn.execute("SELECT set_config('simtui.journaled', 'on', true)")


def seal_once(
    conn: psycopg.Connection[Any], *, limit: int = SEAL_BATCH, wait: bool = False
) -> int | None:
    """Seal one batch in the caller's (READ COMMITTED) transaction.

    Returns how many entries were sealed, or None when another sealer is at work (it seals
    these entries too); with ``wait``, waits for it instead.
    """
    row = conn.execute("SELECT sdk_journal_seal(%s, %s) AS n", (limit, wait)).fetchone()
    assert row is not None
    value = row["n"] if isinstance(row, dict) else row[0]
    return None if value is None else int(value)


def seal(db: Database, *, wait: bool = True) -> int:
    """Seal every committed entry; returns how many this call sealed.

    Each batch is its own transaction, so a long backlog never holds the sealer's lock long.
    Without ``wait`` it gives up at once when another sealer is at work.
    """
    total = 0
    with db.connect(autocommit=True) as conn:
        while True:
            done = seal_once(conn, wait=wait)
            if not done:
                return total
            total += done
            if done < SEAL_BATCH:
                return total


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
    """Empty while the entry is not sealed yet."""
    hash: str
    """The chain hash; empty while the entry is not sealed yet."""
    created_at: datetime
    seq: int | None = None
    """Position in the chain (version 2 entries, once sealed)."""

    @property
    def sealed(self) -> bool:
        return bool(self.hash)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        return cls(
            row["id"], row["run_id"], row["simulation_id"], row["approval_id"], row["action"],
            row["actor"], row["details"], row["prev_hash"] or "", row["hash"] or "",
            row["created_at"], row.get("seq"),
        )  # fmt: skip


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_break: int | None = None
    reason: str = ""
    pending: int = 0
    """Committed entries not sealed yet (written after the seal verify ran): not a break."""

    def describe(self) -> str:
        if not self.ok:
            return f"journal BROKEN at entry {self.first_break}: {self.reason}"
        text = f"journal verified: {self.checked} entries, chain intact"
        if self.pending:
            text += f"; {self.pending} newer entries pending sealing (content hashes intact)"
        return text


_FIELDS = (
    "id, run_id, simulation_id, approval_id, action, actor, details, "
    "details::text AS details_text, prev_hash, hash, created_at, seq, content_hash, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at_text"
)
_SELECT = f"SELECT {_FIELDS} FROM sdk_simulation_journal"


def _uuid_text(value: Any) -> str:
    return str(value) if value else ""


def canonical(row: dict[str, Any], prev_hash: str) -> bytes:
    """Version 1: one hash over the previous hash and the content (entries before 0006)."""
    parts = [
        "v1",
        prev_hash,
        _uuid_text(row["run_id"]),
        _uuid_text(row["simulation_id"]),
        _uuid_text(row["approval_id"]),
        row["action"],
        row["actor"],
        row["details_text"],
        row["at_text"],
    ]
    return "\n".join(parts).encode("utf-8")


def content_hash(row: dict[str, Any]) -> str:
    """Version 2, what an entry says: stamped when it is written (sdk_journal_content_hash)."""
    parts = [
        "v2",
        str(row["id"]),
        _uuid_text(row["run_id"]),
        _uuid_text(row["simulation_id"]),
        _uuid_text(row["approval_id"]),
        row["action"],
        row["actor"],
        row["details_text"],
        row["at_text"],
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def chain_hash(seq: int, prev_hash: str, content: str) -> str:
    """Version 2, the link: stamped when the entry is sealed (sdk_journal_chain_hash)."""
    return hashlib.sha256(f"v2\n{seq}\n{prev_hash}\n{content}".encode()).hexdigest()


def _stream(conn: psycopg.Connection[Any], name: str, query: str) -> Iterator[dict[str, Any]]:
    # A named (server-side) cursor keeps memory flat on a long journal.
    with conn.cursor(name=name) as cur:
        cur.itersize = 5000
        cur.execute(query)
        yield from cur


def _broken(row: dict[str, Any], checked: int, reason: str) -> Verification:
    return Verification(False, checked, int(row["id"]), reason)


_EDITED = "content does not match its hash (the entry was edited after it was written)"
_RELINKED = (
    "prev_hash does not match the hash of the entry before it "
    "(an entry was removed, inserted or reordered)"
)


def _walk(conn: psycopg.Connection[Any]) -> Verification:
    expected_prev = GENESIS
    checked = 0
    # Version 1 entries, chained in id order, then version 2 entries in seal order.
    for row in _stream(conn, "journal_v1", _SELECT + " WHERE content_hash IS NULL ORDER BY id"):
        if row["prev_hash"] != expected_prev:
            return _broken(row, checked, _RELINKED)
        if hashlib.sha256(canonical(row, expected_prev)).hexdigest() != row["hash"]:
            return _broken(row, checked, _EDITED)
        expected_prev = row["hash"]
        checked += 1
    expected_seq = 1
    for row in _stream(conn, "journal_v2", _SELECT + " WHERE seq IS NOT NULL ORDER BY seq"):
        if row["prev_hash"] != expected_prev or row["seq"] != expected_seq:
            return _broken(row, checked, _RELINKED)
        if content_hash(row) != row["content_hash"]:
            return _broken(row, checked, _EDITED)
        if chain_hash(row["seq"], row["prev_hash"], row["content_hash"]) != row["hash"]:
            return _broken(row, checked, "its chain hash does not match (the entry was resealed)")
        expected_prev = row["hash"]
        expected_seq += 1
        checked += 1
    # Every batch recorded where the chain ended; an entry missing there was cut off the end.
    seal = conn.execute(
        "SELECT s.last_seq, s.last_entry_id, s.last_hash, s.sealed_at, j.hash AS found "
        "FROM sdk_simulation_journal_seals s "
        "LEFT JOIN sdk_simulation_journal j ON j.seq = s.last_seq "
        "WHERE j.hash IS DISTINCT FROM s.last_hash ORDER BY s.last_seq LIMIT 1"
    ).fetchone()
    if seal is not None:
        what = "is missing" if seal["found"] is None else "has another hash"
        return Verification(
            False,
            checked,
            int(seal["last_entry_id"]),
            f"the chain position {seal['last_seq']} sealed at "
            f"{seal['sealed_at'].isoformat(timespec='seconds')} {what} "
            "(entries were removed from the end of the chain, or replaced)",
        )
    pending = 0
    for row in _stream(conn, "journal_pending", _SELECT + " WHERE hash IS NULL ORDER BY id"):
        if content_hash(row) != row["content_hash"]:
            return _broken(row, checked, _EDITED)
        pending += 1
    return Verification(True, checked, pending=pending)


def verify(db: Database, *, seal_first: bool = True) -> Verification:
    """Seal what is committed, then walk the chain; report the first entry that does not fit.

    Entries not sealed (committed after the seal, or all new ones without ``seal_first``) are
    checked against their content hash and counted as pending, never as a break.
    """
    if seal_first:
        seal(db)
    # One snapshot for the whole walk: entries sealed meanwhile cannot be seen twice or missed.
    from psycopg import IsolationLevel

    with db.connect() as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            return _walk(conn)


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
        "prev_hash": entry.prev_hash or None,
        "hash": entry.hash or None,
        "seq": entry.seq,
        "created_at": entry.created_at.isoformat(),
    }


def dumps(entries_: list[Entry]) -> str:
    return json.dumps([entry_to_json(e) for e in entries_], indent=2)
