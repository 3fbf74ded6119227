"""The storage layer is public: nothing outside ``auditlens/store/`` reaches behind it.

Outside ``src/auditlens/store/`` no module may
- use an underscore name of the store (``store._write()``, ``store._reader``, … — any private
  attribute or method of :class:`~auditlens.store.AuditStore`, on anything but ``self``),
- reach into a store's ``__dict__``,
- import ``auditlens.store.tables`` (the tables are reached through
  :mod:`auditlens.store.backend`), a private module of the store or a private name from it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import auditlens
from auditlens.store import store as store_module

SRC = Path(auditlens.__file__).parent
STORE_DIR = SRC / "store"


def _store_private_names() -> set[str]:
    """Every underscore attribute of the storage class `Store`: its private methods and attributes."""
    tree = ast.parse(Path(store_module.__file__).read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Store")
    names: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "self":
            names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.endswith("__")}


PRIVATE = _store_private_names()


def _names_a_store(node: ast.expr) -> bool:
    """``store``, ``side_store``, ``inp.store``: an expression that by its name is a store."""
    if isinstance(node, ast.Name):
        return node.id == "store" or node.id.endswith("_store") or node.id == "side"
    return isinstance(node, ast.Attribute) and node.attr == "store"


def violations(source: str, where: str = "<snippet>") -> list[str]:
    """What ``source`` does behind the storage layer's back, one line per use."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute):
            receiver = node.value
            is_self = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            if node.attr in PRIVATE and not is_self:
                found.append(f"{line}: private store name .{node.attr}")
            if node.attr == "__dict__" and _names_a_store(receiver):
                found.append(f"{line}: a store's __dict__")
        elif isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            names = [a.name for a in node.names]
            if mod == "auditlens.store.tables" or (mod == "auditlens.store" and "tables" in names):
                found.append(f"{line}: imports auditlens.store.tables")
            if mod.startswith("auditlens.store") and any(p.startswith("_") for p in mod.split(".")):
                found.append(f"{line}: imports the private module {mod}")
            if mod.startswith("auditlens.store"):
                found += [f"{line}: imports private {mod}.{n}" for n in names if n.startswith("_")]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                private = alias.name == "auditlens.store.tables" or "._" in alias.name
                if private and alias.name.startswith("auditlens.store"):
                    found.append(f"{line}: imports {alias.name}")
    return found


def test_the_checker_sees_what_it_forbids() -> None:
    """Each forbidden use is found; the public surface is not."""
    bad = """
from auditlens.store.tables import entries
from auditlens.store import tables
import auditlens.store.tables
from auditlens.store.store import _FTS_FILL
from auditlens.store._adbc_worker import main
with store._write() as conn: pass
rows = inp.store._reader.batches(stmt)
side_store.__dict__.pop("_merkle_trees", None)
"""
    assert len(violations(bad)) == 8
    good = """
from auditlens.store.backend import entries, insert_chained
with store.transaction() as conn: pass
rows = store.read_batches(store.select(FRAME_COLUMNS))
store.invalidate()
result = ExportResult(**{**result.__dict__, "path": path})
self._write()
"""
    assert violations(good) == []
    assert {"_write", "_filter", "_select", "_reader", "_append_rows"} <= PRIVATE


def test_no_module_outside_the_store_reaches_behind_it() -> None:
    found = [
        v
        for path in sorted(SRC.rglob("*.py"))
        if STORE_DIR not in path.parents
        for v in violations(path.read_text(), str(path.relative_to(SRC)))
    ]
    assert found == []
