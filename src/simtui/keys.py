"""Key bindings that change something, and how a session without the right is told so.

Each write key is bound twice: the action itself (shown in the footer, enabled only for a
role that may do it) and a hidden ``refuse`` binding on the same key, enabled only for a role
that may not. An auditor's footer therefore shows no write action, and pressing one says
"read-only: auditor" instead of doing nothing.
"""

from __future__ import annotations

from textual.binding import Binding

from simcore.auth import Permission, Principal
from simcore.model import Role

WRITE_ACTIONS: dict[str, tuple[Permission, str]] = {
    "approve": (Permission.APPROVE, "approve patches"),
    "reject": (Permission.APPROVE, "reject patches"),
    "new_simulation": (Permission.CREATE, "create simulations"),
    "launch": (Permission.CREATE, "create simulations"),
    "rerun": (Permission.RUN, "launch runs"),
    "cancel_run": (Permission.CANCEL, "cancel runs"),
    "demo": (Permission.CREATE, "launch demo runs"),
}


def write_binding(
    key: str, action: str, description: str, *, id: str, show: bool = True
) -> list[Binding]:
    assert action in WRITE_ACTIONS, action
    return [
        Binding(key, action, description, id=id, show=show),
        Binding(key, f"refuse('{action}')", description, show=False, id=f"{id}.refused"),
    ]


def allowed(principal: Principal | None, action: str) -> bool:
    if action not in WRITE_ACTIONS:
        return True
    return principal is not None and principal.can(WRITE_ACTIONS[action][0])


def refusal(principal: Principal | None, action: str) -> str:
    what = WRITE_ACTIONS.get(action, (None, action))[1]
    if principal is None:
        return f"not connected yet: cannot {what}"
    if principal.role is Role.AUDITOR:
        return f"read-only: auditor (cannot {what})"
    return f"role {principal.role.value} may not {what}"
