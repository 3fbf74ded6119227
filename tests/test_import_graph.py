"""The package's import graph has no cycle, and every import inside a function says why.

The graph is built from the source with :mod:`ast`: an edge ``a → b`` for each import that
runs when ``a`` is imported (module level, including ``try``/``if`` blocks). Imports under
``if TYPE_CHECKING:`` are left out: they never run, they only give the type checker
names. Importing ``auditlens.x.y`` also runs ``auditlens/x/__init__.py``, so a module
depends on the packages above what it imports (except its own packages, which Python has
already started importing).

Function-level imports are allowed where they buy start-up time (the CLI must not load
polars to print its help) or keep an optional dependency optional; each carries a
``# lazy: <reason>`` comment on its line (or the line of its closing parenthesis). An
import that only dodged an import cycle belongs at the top of the module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "auditlens"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name → (file, is a package ``__init__``)."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        out[".".join(parts)] = (path, is_package)
    return out


MODULES = _modules()


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement loads (``from a import b``: ``a.b`` if a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join([*base, *([node.module] if node.module else [])])
    else:
        prefix = node.module or ""
    return [
        f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
        for alias in node.names
    ]


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(
    body: list[ast.stmt], *, top: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in ``body`` and whether it runs at module import time."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.orelse, top=top)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, top
            continue
        inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for field in ("body", "orelse", "finalbody", "handlers"):
            sub = getattr(node, field, None)
            if isinstance(sub, list) and sub and isinstance(sub[0], ast.AST):
                yield from _imports(sub, top=inner)  # type: ignore[arg-type]


def _owner(name: str) -> str | None:
    """The auditlens module an imported dotted name lives in (None: not auditlens)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module → the auditlens modules importing it runs (see the module docstring)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, top in _imports(tree.body, top=True):
            if not top:
                continue
            for name in _imported(module, is_package, node):
                target = _owner(name)
                if target is None or target == module:
                    continue
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # a.b.c also runs a and a.b
                    dep = ".".join(parts[:i])
                    if dep in MODULES and dep != module and not module.startswith(dep + "."):
                        graph[module].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path ``[a, b, …, a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_storage_layer_imports_no_feature() -> None:
    """``auditlens.store`` sits below every feature: importing it loads none of them."""
    graph = import_graph()
    seen: set[str] = set()
    todo = ["auditlens.store.store"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    features = (
        "auditlens.alerts",
        "auditlens.chain.checkpoints",
        "auditlens.chain.verify",
        "auditlens.context",
        "auditlens.detect",
        "auditlens.export",
        "auditlens.facade",
        "auditlens.reports",
        "auditlens.retention",
        "auditlens.review",
    )
    assert not {m for m in seen if m.startswith(features)}, sorted(seen)


def test_importing_the_store_in_a_fresh_interpreter_loads_no_feature() -> None:
    probe = "import sys, auditlens.store.store; print(sorted(m for m in sys.modules if m.startswith('auditlens')))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    loaded = set(ast.literal_eval(out))
    assert not {m for m in loaded if m.startswith(("auditlens.detect", "auditlens.context"))}
    assert "auditlens.facade" not in loaded and "auditlens.export" not in loaded


def _stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def _lazy_imports() -> Iterator[tuple[str, int, str, bool]]:
    """(file, line, statement, has a ``# lazy:`` reason) of each function-level import of
    an auditlens or third-party module."""
    for module, (path, is_package) in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node, top in _imports(ast.parse(text).body, top=True):
            if top:
                continue
            names = _imported(module, is_package, node)
            if all(_stdlib(n) for n in names):
                continue
            span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
            reasoned = any("# lazy: " in line for line in span)
            yield str(path.relative_to(SRC)), node.lineno, ast.unparse(node), reasoned


def test_every_function_level_import_says_why() -> None:
    missing = [f"{f}:{line}: {stmt}" for f, line, stmt, ok in _lazy_imports() if not ok]
    assert not missing, (
        "function-level imports without a `# lazy: <reason>` comment (move imports that "
        "only dodged a cycle to the top of the module):\n" + "\n".join(missing)
    )
