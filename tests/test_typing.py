"""The public API is typed: no public function or method returns a bare ``Any``.

"Public" is every name in ``auditlens.__all__``, the ``__all__`` of the modules listed
there (``al.context``, ``al.plots``…), and the public methods and properties of the
classes among them. A container of ``Any`` (``dict[str, Any]`` for JSON-shaped entries)
is allowed; ``Any`` itself, or ``X | Any``, is not.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterator

import auditlens as al


def _top_level_parts(annotation: str) -> list[str]:
    """``"A | dict[str, B | C]"`` → ``["A", "dict[str, B | C]"]``."""
    parts, depth = [""], 0
    for ch in annotation:
        depth += (ch == "[") - (ch == "]")
        if ch == "|" and depth == 0:
            parts.append("")
        else:
            parts[-1] += ch
    return [p.strip() for p in parts]


def returns_any(fn: Callable[..., object]) -> bool:
    try:
        annotation = inspect.signature(fn).return_annotation
    except (TypeError, ValueError):
        return False
    if annotation is inspect.Signature.empty:
        return False
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return any(p in ("Any", "typing.Any") for p in _top_level_parts(text))


def _public() -> Iterator[tuple[str, object]]:
    for name in al.__all__:
        value = getattr(al, name)
        if isinstance(value, types.ModuleType):
            for sub in getattr(value, "__all__", ()):
                yield f"al.{name}.{sub}", getattr(value, sub)
        else:
            yield f"al.{name}", value


def _functions() -> Iterator[tuple[str, Callable[..., object]]]:
    seen: set[int] = set()
    for qual, obj in _public():
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if inspect.isfunction(obj):
            yield qual, obj
        elif inspect.isclass(obj) and obj.__module__.startswith("auditlens"):
            for name, member in inspect.getmembers(obj):
                if name.startswith("_"):
                    continue
                if isinstance(member, property) and member.fget is not None:
                    yield f"{qual}.{name}", member.fget
                elif (inspect.isfunction(member) or inspect.ismethod(member)) and getattr(
                    member, "__module__", ""
                ).startswith("auditlens"):
                    yield f"{qual}.{name}", member


def test_the_checker_sees_a_bare_any() -> None:
    def loose() -> object: ...

    loose.__annotations__["return"] = "Any"
    assert returns_any(loose)
    loose.__annotations__["return"] = "pl.DataFrame | Any"
    assert returns_any(loose)
    loose.__annotations__["return"] = "list[dict[str, Any]]"
    assert not returns_any(loose)


def test_no_public_function_or_method_returns_any() -> None:
    checked = dict(_functions())
    assert "al.AuditStore.query" in checked and "al.AuditStore.detect" in checked
    assert "al.AuditStore.checkpoint" in checked and "al.plots.top_actors" in checked
    assert "al.detect.run" in checked and not returns_any(checked["al.detect.run"])
    loose = sorted(q for q, fn in checked.items() if returns_any(fn))
    assert not loose, f"public functions returning Any: {loose}"
