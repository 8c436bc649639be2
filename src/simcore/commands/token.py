"""`simcore token create|list|revoke`: API tokens, managed on the server's database.

Tokens are made where the database is (never through the API itself: the first token could not
be created that way), by the local user acting as ops. The secret is printed once, alone on
stdout, so that `OPS_TOKEN=$(simcore token create --role ops --name alice)` works.
"""

from __future__ import annotations

import argparse
import sys

from simcore.auth import local_principal
from simcore.commands._common import age, print_json, table
from simcore.config import load_settings
from simcore.enums import Role, TenantType
from simcore.service import SimulatorService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("token", help="API tokens: create, list, revoke")
    cmds = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = cmds.add_parser("create", help="create a token; prints the secret once")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument(
        "--tenant-type",
        choices=[t.value for t in TenantType],
        help="limit the token to this tenant type (required for dev)",
    )
    create.add_argument(
        "--tenant-id", help="limit the token to this tenant (required for dev, with --tenant-type)"
    )
    create.add_argument("--name", help="a label, e.g. the person or system holding it")
    create.add_argument(
        "--identity",
        help="who acts with it, as the journal records (default: the name); four-eyes "
        "approval compares identities",
    )
    create.set_defaults(handler=_create)

    lst = cmds.add_parser("list", help="tokens (never their secrets)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)

    revoke = cmds.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id", help="the token id, or its prefix as `token list` shows it")
    revoke.set_defaults(handler=_revoke)


def _service() -> SimulatorService:
    # Always the database: SIMTUI_API_URL (remote mode) does not apply to token management.
    return SimulatorService(load_settings()).start()


def _create(args: argparse.Namespace) -> int:
    with _service() as service:
        created = service.create_token(
            local_principal(),
            args.role,
            tenant_type=args.tenant_type,
            tenant_id=args.tenant_id,
            name=args.name,
            identity=args.identity,
        )
    info = created.info
    print(created.token)
    print(
        f"token {info.id} ({info.prefix}…): role {info.role.value}, {info.scope}, identity "
        f"{info.identity!r}. This is the only time the token is shown: store it now.",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    with _service() as service:
        found = service.list_tokens(local_principal())
    if args.json:
        print_json([t.model_dump(mode="json") for t in found])
        return 0
    print(
        table(
            ["id", "prefix", "role", "scope", "identity", "name", "created", "used", "state"],
            [
                (
                    t.id,
                    t.prefix + "…",
                    t.role.value,
                    t.scope,
                    t.identity,
                    t.name or None,
                    age(t.created_at),
                    age(t.last_used_at),
                    f"revoked {age(t.revoked_at)} ago" if t.revoked else "active",
                )
                for t in found
            ],
        )
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _service() as service:
        info, changed = service.revoke_token(local_principal(), args.token_id)
    if changed:
        print(f"token {info.id} ({info.prefix}…) revoked")
    else:
        print(f"token {info.id} ({info.prefix}…) was already revoked")
    return 0
