"""The runbook's SQL, read from the committed copy of the runbook (docs/runbook.md)."""

from __future__ import annotations

import re
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parent.parent / "docs" / "runbook.md"


def sql_block_statements() -> list[str]:
    """Statements of the ```sql fences, comments dropped, split on ';'."""
    text = RUNBOOK.read_text(encoding="utf-8")
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", text, flags=re.S):
        body = "\n".join(line for line in block.splitlines() if not line.strip().startswith("--"))
        statements.extend(s.strip() + ";" for s in body.split(";") if s.strip())
    return statements


def psql_commands() -> list[str]:
    """The SQL of every ``psql -d molam_connect -c "..."`` of the runbook."""
    text = RUNBOOK.read_text(encoding="utf-8")
    return [m.strip() for m in re.findall(r'psql -d molam_connect -c "(.*?)"', text, flags=re.S)]


def psql_shell_lines() -> list[str]:
    """The whole ``psql -d molam_connect -c "..."`` shell commands, as written."""
    text = RUNBOOK.read_text(encoding="utf-8")
    return re.findall(r'psql -d molam_connect -c ".*?"', text, flags=re.S)
