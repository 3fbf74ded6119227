"""Every auditlens error lives in ``auditlens.errors``, is reachable as ``auditlens.<Name>``,
and derives from both :class:`AuditLensError` and a builtin exception."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import auditlens as al
import auditlens.errors as errors

#: the records carried by errors (not exceptions themselves)
RECORDS = {"EntryProblem", "DuplicateConflict"}
BUILTINS = (ValueError, RuntimeError, KeyError, LookupError, OSError, TypeError)

ERROR_NAMES = [name for name in errors.__all__ if name not in RECORDS]


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_every_error_has_the_root_a_builtin_and_a_top_level_name(name: str) -> None:
    cls = getattr(errors, name)
    assert inspect.isclass(cls) and issubclass(cls, BaseException), name
    assert issubclass(cls, al.AuditLensError), name
    if cls is not al.AuditLensError:
        assert issubclass(cls, BUILTINS), name
    assert cls.__module__ == "auditlens.errors", name
    assert cls.__doc__, name
    assert name in al.__all__, name
    assert getattr(al, name) is cls, name


def test_every_exception_class_in_errors_is_listed() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == "auditlens.errors"
    }
    assert defined == set(ERROR_NAMES)


def _modules() -> list[str]:
    names = ["auditlens"]
    for info in pkgutil.walk_packages(al.__path__, "auditlens."):
        names.append(info.name)
    return sorted(set(names) - {"auditlens.errors"})


def test_no_module_defines_an_exception_outside_errors() -> None:
    strays: list[str] = []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional dependency that is not installed
            if exc.name and exc.name.startswith("auditlens"):
                raise
            continue
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not issubclass(value, Warning)  # warnings are not errors
                and not attr.startswith("_")  # private control flow, never escapes
            ):
                strays.append(f"{name}.{attr}")
    assert strays == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("auditlens.alerts", "RuleError"),
        ("auditlens.alerts.rules", "RuleError"),
        ("auditlens.alerts", "DeliveryError"),
        ("auditlens.chain.checkpoints", "WitnessError"),
        ("auditlens.retention", "ArchiveError"),
        ("auditlens.yamlnodes", "YamlFileError"),
        ("auditlens.reports.frameworks", "FrameworkError"),
        ("auditlens.reports.notebook", "NotebookError"),
    ],
)
def test_old_import_paths_still_work(path: str, name: str) -> None:
    assert getattr(importlib.import_module(path), name) is getattr(errors, name)


def test_merkle_and_notes_raise_honest_value_errors() -> None:
    from auditlens.chain.notes import parse_checkpoint, parse_note
    from auditlens.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion

    tree = MerkleTree([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])
    with pytest.raises(al.ProofError, match=r"tree size 9 is outside 0\.\.3"):
        tree.root(9)
    with pytest.raises(ValueError, match="leaf index 3"):
        tree.inclusion_proof(3)
    with pytest.raises(al.ProofError, match="cannot prove consistency"):
        tree.consistency_proof(2, 1)
    # the verifiers never raise
    assert verify_inclusion(b"x", 7, 3, [b"bad"], b"r") is False
    assert verify_consistency(5, 3, [b"bad"], b"r", b"r") is False

    with pytest.raises(al.NoteFormatError, match="no blank line"):
        parse_note("no signatures here\n")
    with pytest.raises(ValueError, match="bad tree size"):
        parse_checkpoint("origin\nx\nAAAA\ntime 1\n")
    with pytest.raises(al.NoteFormatError, match="not base64"):
        parse_checkpoint("origin\n1\n!!!\ntime 1\n")


def test_detector_and_export_format_errors_keep_their_old_classes(tmp_path: Path) -> None:
    import polars as pl

    from auditlens import detect
    from auditlens.cli.app import EXIT_USAGE, exit_code_for
    from auditlens.export.writers import export

    with pytest.raises(al.DetectorError, match="unknown detector 'nope'"):
        detect.run("nope", pl.DataFrame())
    with pytest.raises(al.ExportFormatError, match="format must be one of"):
        export(al.open_store("sqlite://"), tmp_path / "out.xml", format="xml")
    assert issubclass(al.DetectorError, al.FilterError)
    assert issubclass(al.ExportFormatError, al.FilterError)
    assert exit_code_for(al.DetectorError("x")) == EXIT_USAGE
    assert exit_code_for(al.ExportFormatError("x")) == EXIT_USAGE
    assert exit_code_for(al.RuleError("r.yaml", 1, "f", "bad")) == EXIT_USAGE
