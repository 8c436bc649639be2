"""Who is acting, and what they may do: principals, roles and tenant scope.

Checked once, in ``SimulatorService``, so the API, the CLI and the dashboard cannot disagree.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum

from simcore.enums import Role, TenantType
from simcore.errors import Forbidden


class Permission(StrEnum):
    READ = "read"
    CREATE = "create"
    RUN = "run"
    CANCEL = "cancel"
    APPROVE = "approve"
    MANAGE_PATCHES = "manage_patches"
    READ_ANONYMIZED = "read_anonymized"
    EXPORT_SIRA = "export_sira"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPS: frozenset(Permission),
    Role.DEV: frozenset({Permission.READ, Permission.CREATE, Permission.RUN, Permission.CANCEL}),
    Role.AUDITOR: frozenset({Permission.READ, Permission.READ_ANONYMIZED}),
    Role.SIRA: frozenset({Permission.READ_ANONYMIZED, Permission.EXPORT_SIRA}),
}


@dataclass(frozen=True)
class Principal:
    identity: str
    role: Role
    tenant_type: TenantType | None = None
    """None: every tenant (ops and auditors of the platform)."""
    tenant_id: str | None = None

    @property
    def actor(self) -> str:
        """How the journal names this principal: ``ops:alice``."""
        return f"{self.role.value}:{self.identity}"

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission, what: str) -> None:
        if not self.can(permission):
            raise Forbidden(f"role {self.role.value} may not {what}")

    @property
    def scoped(self) -> bool:
        return self.tenant_type is not None

    def sees(self, tenant_type: str, tenant_id: str) -> bool:
        if self.tenant_type is None:
            return True
        if tenant_type != self.tenant_type.value:
            return False
        return self.tenant_id is None or tenant_id == self.tenant_id


def local_principal(role: Role = Role.OPS) -> Principal:
    """The person at this terminal, in local mode."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "local"
    return Principal(identity=user, role=role)
