"""Key bindings that change something, and how a session without the right is told so.

Each write key is bound twice: the action itself (shown in the footer, enabled only for a
role that may do it) and a hidden ``refuse`` binding on the same key, enabled only for a role
that may not. An auditor's footer therefore shows no write action, and pressing one says
"read-only: auditor" instead of doing nothing.
"""

from __future__ import annotations

from textual.binding import Binding

from simcore.auth import Permission, Principal
from simcore.enums import Role

WRITE_ACTIONS: dict[str, tuple[Permission | Role, str]] = {
    "approve": (Permission.APPROVE, "approve patches"),
    "reject": (Permission.APPROVE, "reject patches"),
    "new_simulation": (Permission.CREATE, "create simulations"),
    "launch": (Permission.CREATE, "create simulations"),
    "rerun": (Permission.RUN, "launch runs"),
    "cancel_run": (Permission.CANCEL, "cancel runs"),
    "demo": (Permission.CREATE, "launch demo runs"),
    # The engine asks for the ops role itself (simcore.rollout.require_ops), not a permission.
    "stage": (Role.OPS, "stage patches"),
    "promote": (Role.OPS, "promote patches"),
    "rollback": (Role.OPS, "roll back patches"),
}

ROLLOUT_ACTIONS = ("stage", "promote", "rollback")
ROLLOUT = Binding.Group("Rollout", compact=True)
"""Stage, promote and roll back share one footer entry (``sPb Rollout``): 80 columns are
too few for three more descriptions beside the keys already there. Even so, the home screen
shows it only while the highlighted approval or run can take a rollout step; elsewhere the
keys still work, through their hidden twin (see ``HomeScreen.check_action``)."""


def write_binding(
    key: str,
    action: str,
    description: str,
    *,
    id: str,
    show: bool = True,
    group: Binding.Group | None = None,
) -> list[Binding]:
    assert action in WRITE_ACTIONS, action
    return [
        Binding(key, action, description, id=id, show=show, group=group),
        Binding(key, f"refuse('{action}')", description, show=False, id=f"{id}.refused"),
    ]


def rollout_bindings(*, show: bool = True) -> list[Binding]:
    """The keys of the rollout after approval, on every screen that shows an approval."""
    return [
        *write_binding("s", "stage", "Stage", id="stage", show=show, group=ROLLOUT),
        *write_binding("P", "promote", "Promote", id="promote", show=show, group=ROLLOUT),
        *write_binding("b", "rollback", "Roll back", id="rollback", show=show, group=ROLLOUT),
    ]


def allowed(principal: Principal | None, action: str) -> bool:
    if action not in WRITE_ACTIONS:
        return True
    if principal is None:
        return False
    needed = WRITE_ACTIONS[action][0]
    if isinstance(needed, Role):
        return principal.role is needed
    return principal.can(needed)


def refusal(principal: Principal | None, action: str) -> str:
    needed, what = WRITE_ACTIONS.get(action, (None, action))
    if principal is None:
        return f"not connected yet: cannot {what}"
    if principal.role is Role.AUDITOR:
        return f"read-only: auditor (cannot {what})"
    if isinstance(needed, Role):
        return f"role {principal.role.value} may not {what}: it needs the {needed.value} role"
    return f"role {principal.role.value} may not {what}"
