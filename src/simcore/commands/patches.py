"""`simcore patches list|show|add`."""

from __future__ import annotations

import argparse
from pathlib import Path

from simcore.commands._common import local_service, print_json, table
from simcore.enums import PatchSeverity, SdkLanguage
from simcore.errors import InvalidInput


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("patches", help="the patch registry: list, show, add")
    cmds = parser.add_subparsers(dest="patches_command", metavar="ACTION", required=True)

    lst = cmds.add_parser("list", help="list patches")
    lst.add_argument("--language", choices=[lang.value for lang in SdkLanguage])
    lst.add_argument("--all", action="store_true", help="include inactive patches")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)

    show = cmds.add_parser("show", help="a patch with its code")
    show.add_argument("patch", help="id or slug")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    add = cmds.add_parser("add", help="add a patch to the registry; prints its id")
    add.add_argument("--language", required=True, choices=[lang.value for lang in SdkLanguage])
    add.add_argument(
        "--error-signature",
        required=True,
        help="the SDK error code that triggers it, e.g. signature_mismatch",
    )
    add.add_argument("--patch-file", required=True, type=Path)
    add.add_argument("--rollback-file", type=Path)
    add.add_argument("--slug")
    add.add_argument("--description", default="")
    add.add_argument("--version", default="1.0.0")
    add.add_argument("--severity", default="medium", choices=[s.value for s in PatchSeverity])
    add.set_defaults(handler=_add)


def _list(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        patches = service.list_patches(who, language=args.language, include_inactive=args.all)
    if args.json:
        print_json([p.model_dump(mode="json") for p in patches])
        return 0
    print(
        table(
            ["id", "slug", "lang", "error", "version", "source", "description"],
            [
                (
                    p.id,
                    p.slug,
                    p.sdk_language.value,
                    p.error_signature,
                    p.version,
                    p.source.value,
                    p.description[:50],
                )
                for p in patches
            ],
        )
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        p = service.get_patch(who, args.patch)
    if args.json:
        print_json(p.model_dump(mode="json"))
        return 0
    print(
        f"id          {p.id}\nslug        {p.slug or '-'}\nlanguage    {p.sdk_language.value}"
        f"\nerror       {p.error_signature}\nversion     {p.version}\nsource      "
        f"{p.source.value}\nactive      {p.active}\ndescription {p.description}\n"
    )
    print("--- patch_code")
    print(p.patch_code)
    print("--- rollback_code")
    print(p.rollback_code or "(none)")
    return 0


def _read(path: Path, field: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(field, f"{path} is not UTF-8 text") from None


def _add(args: argparse.Namespace) -> int:
    data = {
        "sdk_language": args.language,
        "error_signature": args.error_signature,
        "patch_code": _read(args.patch_file, "patch_file"),
        "rollback_code": _read(args.rollback_file, "rollback_file") if args.rollback_file else "",
        "slug": args.slug,
        "description": args.description,
        "version": args.version,
        "severity": args.severity,
    }
    with local_service() as (service, who):
        patch = service.add_patch(who, data)
    print(patch.id)
    return 0
