"""The CLI stays thin: it calls the public API and features, never SQL or the tables."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "auditlens" / "cli"


def test_no_sql_in_the_cli() -> None:
    found = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(
                    n.split(".")[0] == "sqlalchemy" or n == "auditlens.store.tables" for n in names
                ):
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.Attribute) and node.attr in (
                "execute",
                "exec_driver_sql",
                "engine",
            ):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert not found, "SQL in cli/ (move it to the feature module):\n" + "\n".join(found)
