"""API tokens (``sdk_simulator_tokens``): a role, a tenant scope and an identity, stored hashed.

A token is ``smt_`` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256 is
stored, so the table, a backup or a log of queries gives no usable token; the secret is shown
once, when it is created.

Authentication hashes the presented token and looks the digest up through the unique index.
Nothing compares the secret itself, so there is no secret-dependent early exit to time: an
attacker timing the lookup learns, at best, something about a SHA-256 digest of their own
guess. Hashing is plain SHA-256, not a slow password hash: the secret has 256 bits of entropy,
so there is nothing to brute-force, and every API request pays for the hash.

An API process keeps the tokens it verified in a ``TokenCache``, keyed by that digest, so that a
request need not look its token up again. Revocation is still honoured from the very next
request, whoever revokes: a trigger (migration 0007) bumps a revocation generation in the
revoking transaction, and an entry is only trusted at the generation it was verified at, read
after the request arrived (``simcore.api.tokengate``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict

from simcore.auth import Principal
from simcore.enums import Role, TenantType
from simcore.errors import InvalidInput, NotFound, SimError
from simcore.store import Database

TOKEN_PREFIX = "smt_"
PREFIX_CHARS = 12
"""Characters of a token kept for display: ``smt_`` and 8 of the secret (48 bits)."""

LAST_USED_RESOLUTION = timedelta(seconds=60)
"""``last_used_at`` is refreshed at most this often, so reads do not each cost a write."""

CACHE_TTL_SECONDS = 10.0
"""How long an API process keeps a verification (within one revocation generation)."""
CACHE_MAX_ENTRIES = 10_000
GENERATION_SQL = "SELECT generation FROM sdk_simulator_tokens_generation"
"""Migration 0007's revocation generation: bumped by every revocation, in its transaction."""

_TOKEN_SHAPE = re.compile(r"^smt_[A-Za-z0-9_-]{20,200}$")
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")

COLUMNS = (
    "id, name, prefix, role, tenant_type, tenant_id, identity, created_by, created_at, "
    "last_used_at, revoked_at"
)


class Unauthenticated(SimError):
    """No token, an unknown one, or a revoked one."""

    http_status = 401


class TokenInfo(BaseModel):
    """A token as ``simcore token list`` shows it: everything but the secret."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    prefix: str
    role: Role
    tenant_type: TenantType | None
    tenant_id: str | None
    identity: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def scope(self) -> str:
        if self.tenant_type is None:
            return "all tenants"
        return f"{self.tenant_type.value}/{self.tenant_id or '*'}"

    def principal(self) -> Principal:
        return Principal(self.identity, self.role, self.tenant_type, self.tenant_id)


@dataclass(frozen=True)
class CreatedToken:
    token: str
    """The secret: shown to the person creating it, never stored, never shown again."""
    info: TokenInfo


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _clean_text(value: str | None, field: str, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(field, "required")
        return None
    value = value.strip()
    if not value:
        if required:
            raise InvalidInput(field, "must not be empty")
        return None
    if len(value) > 200 or not value.isprintable():
        raise InvalidInput(field, "must be 1 to 200 printable characters")
    return value


def validate_scope(
    role: Role | str, tenant_type: TenantType | str | None, tenant_id: str | None
) -> tuple[Role, TenantType | None, str | None]:
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(
            "role", f"unknown role {role!r} (one of: {', '.join(r.value for r in Role)})"
        ) from None
    if tenant_type is not None:
        try:
            tenant_type = TenantType(tenant_type)
        except ValueError:
            raise InvalidInput(
                "tenant_type",
                f"unknown tenant type {tenant_type!r} "
                f"(one of: {', '.join(t.value for t in TenantType)})",
            ) from None
    if tenant_id is not None and not _TENANT_ID.match(tenant_id):
        raise InvalidInput(
            "tenant_id", "1 to 200 characters: letters, digits and . _ : - (not first)"
        )
    if tenant_id is not None and tenant_type is None:
        raise InvalidInput("tenant_type", "a tenant id needs its tenant type (--tenant-type)")
    if role is Role.DEV and (tenant_type is None or tenant_id is None):
        raise InvalidInput(
            "tenant",
            "a dev token must be scoped to one tenant: pass --tenant-type and --tenant-id",
        )
    return role, tenant_type, tenant_id


def create(
    conn: psycopg.Connection[Any],
    role: Role | str,
    *,
    tenant_type: TenantType | str | None = None,
    tenant_id: str | None = None,
    name: str | None = None,
    identity: str | None = None,
    created_by: str = "system",
) -> CreatedToken:
    """Create a token; the returned secret is the only copy there will ever be."""
    role, tenant_type, tenant_id = validate_scope(role, tenant_type, tenant_id)
    name = _clean_text(name, "name", required=False) or ""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = secret[:PREFIX_CHARS]
    # The journal and the four-eyes rule know a token by its identity: the name by default,
    # else one derived from the token, so two unnamed tokens are never taken for one person.
    who = _clean_text(identity, "identity", required=False) or name or f"token-{prefix[4:]}"
    row = conn.execute(
        f"INSERT INTO sdk_simulator_tokens (name, token_hash, prefix, role, tenant_type, "
        f"tenant_id, identity, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        f"RETURNING {COLUMNS}",
        (
            name,
            hash_token(secret),
            prefix,
            role.value,
            tenant_type.value if tenant_type else None,
            tenant_id,
            who,
            created_by,
        ),
    ).fetchone()
    assert row is not None
    return CreatedToken(secret, TokenInfo.model_validate(row))


# One statement, so one round trip: the token as it was, the revocation generation in the same
# snapshot, and last_used_at refreshed when it is older than LAST_USED_RESOLUTION (the SELECT
# sees the row before that UPDATE).
_VERIFY = (
    "WITH used AS (UPDATE sdk_simulator_tokens SET last_used_at = now() "
    "WHERE token_hash = %(digest)s AND revoked_at IS NULL "
    "AND (last_used_at IS NULL OR last_used_at < now() - %(resolution)s) RETURNING id) "
    f"SELECT {COLUMNS}, ({GENERATION_SQL}) AS generation "
    "FROM sdk_simulator_tokens WHERE token_hash = %(digest)s"
)


def check_shape(token: str) -> str:
    """The token without surrounding blanks; Unauthenticated if it cannot be a token."""
    token = token.strip()
    # A string that cannot be a token is refused without a database round trip.
    if not _TOKEN_SHAPE.match(token):
        raise Unauthenticated("malformed token: expected smt_ followed by the secret")
    return token


def verify(db: Database, digest: str) -> tuple[TokenInfo, int]:
    """The valid token with this digest, and the revocation generation it was valid at.

    One round trip; Unauthenticated if the token is unknown or revoked.
    """
    with db.transaction() as conn:
        # A single statement needs no BEGIN/COMMIT around it (two more round trips); the
        # pool's connections are transactional, so autocommit is restored before it goes back.
        conn.autocommit = True
        try:
            row = conn.execute(
                _VERIFY, {"digest": digest, "resolution": LAST_USED_RESOLUTION}
            ).fetchone()
        finally:
            _restore_transactional(conn)
    if row is None:
        raise Unauthenticated("unknown token")
    generation = int(row.pop("generation"))
    info = TokenInfo.model_validate(row)
    if info.revoked:
        raise Unauthenticated(f"token {info.prefix}… was revoked")
    return info, generation


def _restore_transactional(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.autocommit = False
    except psycopg.Error:
        # Broken (the pool discards it) or, impossibly, inside a transaction: never hand an
        # autocommit connection back to the pool.
        conn.close()


def authenticate(db: Database, token: str) -> Principal:
    """The principal a bearer token stands for; Unauthenticated if it is unknown or revoked."""
    return verify(db, hash_token(check_shape(token)))[0].principal()


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    generation: int
    expires: float
    """time.monotonic() after which the database is asked again."""


class TokenCache:
    """Tokens verified lately, by SHA-256 digest (never the token), each with the revocation
    generation it was verified at.

    An entry answers only for that generation: whoever revokes a token, anywhere, moves the
    generation on in the same transaction, and the next request that reads it (a read sent
    after the request arrived) finds every older entry void. Revocations are rare, so they
    simply empty the cache. The TTL refreshes the rest (and ``last_used_at``) now and then.
    Not thread-safe: one event loop owns it.
    """

    def __init__(
        self, *, ttl: float = CACHE_TTL_SECONDS, max_entries: int = CACHE_MAX_ENTRIES
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._generation = -1

    def lookup(self, digest: str, generation: int) -> Principal | None:
        """The principal verified at ``generation``, read after the request arrived."""
        if generation > self._generation:
            self._entries.clear()  # a revocation since: nothing older holds
            self._generation = generation
            return None
        if generation < self._generation:
            return None  # read before a verification that saw a newer one: ask again
        entry = self._entries.get(digest)
        if entry is None or entry.generation != generation:
            return None
        if entry.expires <= time.monotonic():
            del self._entries[digest]
            return None
        return entry.principal

    def store(self, digest: str, info: TokenInfo, generation: int) -> None:
        if generation < self._generation:
            return  # verified before a revocation this cache already knows of
        if generation > self._generation:
            self._entries.clear()
            self._generation = generation
        if digest not in self._entries and len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[digest] = _Entry(info.principal(), generation, time.monotonic() + self.ttl)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, digest: object) -> bool:
        return digest in self._entries


def _find(conn: psycopg.Connection[Any], ref: str | UUID) -> dict[str, Any]:
    """A token by id, or by its display prefix when that names exactly one token."""
    try:
        as_uuid = ref if isinstance(ref, UUID) else UUID(str(ref))
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM sdk_simulator_tokens WHERE id = %s", (as_uuid,)
        ).fetchall()
    else:
        text = str(ref).removesuffix("…")
        if not text.startswith(TOKEN_PREFIX) or len(text) < 8 or not text.isprintable():
            raise InvalidInput("token", f"{ref!r} is neither a token id nor a token prefix")
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM sdk_simulator_tokens WHERE starts_with(prefix, %s)",
            (text[:PREFIX_CHARS],),
        ).fetchall()
    if not rows:
        raise NotFound(f"no token {ref}")
    if len(rows) > 1:
        raise InvalidInput("token", f"{ref!r} names several tokens: use the token id")
    found: dict[str, Any] = rows[0]
    return found


def revoke(conn: psycopg.Connection[Any], ref: str | UUID) -> tuple[TokenInfo, bool]:
    """Revoke a token; returns it and whether this call revoked it (False: already was)."""
    row = _find(conn, ref)
    updated = conn.execute(
        f"UPDATE sdk_simulator_tokens SET revoked_at = now() WHERE id = %s "
        f"AND revoked_at IS NULL RETURNING {COLUMNS}",
        (row["id"],),
    ).fetchone()
    if updated is None:
        return TokenInfo.model_validate(row), False
    return TokenInfo.model_validate(updated), True


def list_all(conn: psycopg.Connection[Any], *, include_revoked: bool = True) -> list[TokenInfo]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM sdk_simulator_tokens "
        "WHERE %s OR revoked_at IS NULL ORDER BY created_at, id",
        (include_revoked,),
    ).fetchall()
    return [TokenInfo.model_validate(r) for r in rows]
