"""The enums shared by the engine, the API, the CLI and the dashboard.

Apart from ``simcore.model``, whose pydantic models use them: the dashboard's first screen
needs the statuses and roles but none of the models, and importing pydantic would cost that
screen about a fifth of its start (bench/bench_tui.py).
"""

from __future__ import annotations

from enum import StrEnum


class SdkLanguage(StrEnum):
    NODE = "node"
    PHP = "php"
    PYTHON = "python"
    RUBY = "ruby"
    WOOCOMMERCE = "woocommerce"
    SHOPIFY = "shopify"


class TenantType(StrEnum):
    MERCHANT = "merchant"
    AGENT = "agent"
    INTERNAL = "internal"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL_SUCCESS = "partial_success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    STAGED = "staged"
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled_back"


class Role(StrEnum):
    OPS = "ops"
    DEV = "dev"
    AUDITOR = "auditor"
    SIRA = "sira"


class PatchSeverity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class PatchSource(StrEnum):
    BUILTIN = "builtin"
    OPS = "ops"
    SIRA = "sira"
    CROWD = "crowd"


class ErrorKind(StrEnum):
    """Faults the gateway knows how to inject (DESIGN.md, Scenario)."""

    SIGNATURE_MISMATCH = "signature_mismatch"
    TIMEOUT = "timeout"
    INVALID_CURRENCY = "invalid_currency"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"


class JournalAction(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    APPLIED_PATCH = "applied_patch"
    ROLLBACK = "rollback"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    ERROR = "error"
    APPROVED = "approved"
    REJECTED = "rejected"
    STAGED = "staged"
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled_back"
    EXPORTED = "exported"
