"""The public front door stays honest: everything in __all__ exists, errors share one root."""

from __future__ import annotations
import __future__

import inspect
import subprocess
import sys
import types

import pytest

import auditlens as al


def _all_sort_key(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then everything else, each alphabetical (ruff RUF022)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_every_name_in_all_resolves() -> None:
    # in a fresh interpreter, so that each name is resolved by the lazy loader itself
    probe = (
        "import auditlens as al\n"
        "missing = [n for n in al.__all__ if getattr(al, n, None) is None]\n"
        "print(missing, sorted(set(al.__all__) - set(dir(al))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[] []"
    for name in al.__all__:
        assert getattr(al, name) is not None, name
    assert al.__all__ == sorted(al.__all__, key=_all_sort_key)
    assert len(set(al.__all__)) == len(al.__all__)


def test_every_public_name_is_listed() -> None:
    for name in al.__all__:
        getattr(al, name)  # load every lazy name first
    public = {
        name
        for name, value in vars(al).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # subpackages, reached as auditlens.x
        and value is not __future__.annotations
    }
    assert public <= set(al.__all__), sorted(public - set(al.__all__))
    assert set(al._LAZY) <= set(al.__all__)  # no name loads lazily without being listed


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        al.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_every_error_derives_from_the_root_and_a_builtin() -> None:
    import auditlens.alerts
    import auditlens.chain.checkpoints
    import auditlens.retention  # noqa: F401 - feature modules define their own errors

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    errors = set(subclasses(al.AuditLensError))
    names = {e.__name__ for e in errors}
    assert {
        "ValidationError",
        "QuerySyntaxError",
        "StoreError",
        "RuleError",
        "DeliveryError",
        "WitnessError",
        "ArchiveError",
    } <= names
    for err in errors:
        assert any(issubclass(err, b) for b in (ValueError, RuntimeError, KeyError)), err
    for name in al.__all__:
        if name.endswith("Error"):
            assert issubclass(getattr(al, name), al.AuditLensError)


def test_every_error_class_is_exported_at_top_level() -> None:
    import auditlens.errors as errors

    classes = {
        name
        for name in errors.__all__
        if inspect.isclass(getattr(errors, name))
        and issubclass(getattr(errors, name), BaseException)
    }
    assert classes <= set(al.__all__), sorted(classes - set(al.__all__))
    for name in classes:
        assert getattr(al, name) is getattr(errors, name)


def test_public_functions_have_docstrings() -> None:
    for name in al.__all__:
        obj = getattr(al, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, name
