"""`simcore sira pending|export`: anonymized error signatures for SIRA's training."""

from __future__ import annotations

import argparse

from simcore.commands._common import local_service, table
from simcore.errors import InvalidInput
from simcore.service import SimulatorService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("sira", help="anonymized errors for SIRA: pending, export")
    cmds = parser.add_subparsers(dest="sira_command", metavar="ACTION", required=True)
    cmds.add_parser(
        "pending", help="signatures waiting for export (the runbook's query)"
    ).set_defaults(handler=_pending)
    export = cmds.add_parser("export", help="export the pending rows as one JSON-lines batch")
    export.add_argument(
        "--out", help="a folder or s3://bucket/prefix (default: sira/ in the artifact store)"
    )
    export.set_defaults(handler=_export)


def _local(service: object) -> SimulatorService:
    if not isinstance(service, SimulatorService):
        raise InvalidInput("sira", "this command needs local mode for now")
    return service


def _pending(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        svc = _local(service)
        from simcore.auth import Permission

        who.require(Permission.READ_ANONYMIZED, "read anonymized errors")
        with svc.db.transaction() as conn:
            rows = conn.execute(
                "SELECT error_signature, sdk_language, AVG(frequency) AS avg_frequency, "
                "COUNT(*) AS occurrences FROM sdk_anonymized_errors "
                "WHERE exported_to_sira = false GROUP BY error_signature, sdk_language "
                "ORDER BY occurrences DESC LIMIT 20"
            ).fetchall()
    print(
        table(
            ["signature", "lang", "avg frequency", "occurrences"],
            [
                (
                    r["error_signature"],
                    r["sdk_language"],
                    f"{r['avg_frequency']:.3f}",
                    r["occurrences"],
                )
                for r in rows
            ],
        )
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    with local_service() as (service, who):
        result = _local(service).export_sira(who, args.out)
    if result.count == 0:
        print("nothing to export")
        return 0
    print(f"exported {result.count} rows as batch {result.batch_id} to {result.location}")
    return 0
