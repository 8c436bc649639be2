"""`simcore images build|list`: the sandbox images (molam/sim-*)."""

from __future__ import annotations

import argparse
import sys

from simcore.images import (
    RUNTIMES,
    ImageBuildError,
    build_images,
    docker_client,
    list_images,
    sandbox_images,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    images = sub.add_parser("images", help="build or list the sandbox images")
    icmd = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)

    build = icmd.add_parser(
        "build", help="build the sandbox images that are missing or out of date"
    )
    build.add_argument(
        "--offline",
        action="store_true",
        help="no registry: build FROM a Debian base made with debootstrap from this "
        "machine's apt mirror (needs root)",
    )
    build.add_argument(
        "--force", action="store_true", help="rebuild even the images that are up to date"
    )
    build.add_argument(
        "--language",
        "-l",
        action="append",
        choices=sorted(RUNTIMES),
        metavar="L",
        help=f"only this SDK language ({', '.join(sorted(RUNTIMES))}); repeatable",
    )
    build.add_argument(
        "--mirror",
        metavar="URL",
        help="Debian mirror for --offline (default: the bookworm source in /etc/apt)",
    )
    build.set_defaults(handler=_build)

    icmd.add_parser("list", help="list the molam/sim-* images present").set_defaults(handler=_list)


def _say(line: str) -> None:
    print(line, flush=True)


def _build(args: argparse.Namespace) -> int:
    client = docker_client()
    try:
        outcomes = build_images(
            client,
            languages=args.language,
            offline=args.offline,
            force=args.force,
            mirror=args.mirror,
            report=_say,
        )
    except ImageBuildError as exc:
        # The error is one line; the build's own last lines say why, so show them first.
        for line in exc.log_tail:
            print(f"  | {line}", file=sys.stderr)
        raise
    built = sum(1 for o in outcomes if o.built)
    _say(f"{built} built, {len(outcomes) - built} up to date")
    return 0


def _list(args: argparse.Namespace) -> int:
    client = docker_client(timeout=30)
    found = list_images(client)
    print(f"{'NAME':<32} {'IMAGE ID':<12} {'SIZE':>9}  CREATED (UTC)")
    for image in found:
        size = f"{image.size / 1_000_000:.1f}MB"
        print(f"{image.name:<32} {image.id:<12} {size:>9}  {image.created}")
    names = {image.name for image in found}
    for name in sandbox_images():
        if name not in names:
            print(f"simcore: {name} is missing (run: simcore images build)", file=sys.stderr)
    return 0
