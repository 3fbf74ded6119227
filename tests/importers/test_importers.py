"""The importer registry: formats, organizations by name, docs kept in step, frames, search."""

from __future__ import annotations

from pathlib import Path

import pytest

import auditlens as al
from auditlens.errors import AmbiguousOrganizationError, ConfigError, FilterError
from auditlens.importers import (
    FORMATS,
    frame,
    import_files,
    mappings_markdown,
    read,
    resolve_organization,
)
from auditlens.resources import samples_dir

ROOT = Path(__file__).parents[2]
ORG = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
OTHER = "5f0e7c2a-9d1b-4e8f-a3c6-7b2d1e0f9a84"


def test_docs_show_every_mapping_table_as_the_code_declares_it() -> None:
    doc = (ROOT / "docs" / "IMPORTERS.md").read_text()
    assert mappings_markdown() in doc, "regenerate: python tools/importer_docs.py"


def test_format_modules_are_reached_from_the_package() -> None:
    entries = list(al.importers.workspace.read(samples_dir() / "workspace"))
    assert len(entries) == 7


def test_unknown_format_is_named() -> None:
    with pytest.raises(ConfigError, match="expected one of cloudtrail, okta"):
        list(read("splunk", "x"))


def test_every_format_has_a_sample_that_imports_cleanly() -> None:
    options = {"sshd": {"year": 2024, "timezone": "Europe/Berlin", "organization_id": ORG}}
    options["okta"] = {"okta_org": "acme.okta.com"}
    for fmt in FORMATS:
        entries = list(read(fmt, samples_dir() / fmt, **options.get(fmt, {})))
        assert entries, fmt


def test_frame_has_the_store_columns_without_a_store() -> None:
    f = frame("cloudtrail", samples_dir() / "cloudtrail")
    assert f.height == 8
    assert str(f.schema["timestamp"]) == "Datetime(time_unit='ms', time_zone='UTC')"
    assert f.columns == [c for c in al.COLUMNS if c not in ("seq", "prev_hash", "entry_hash")]
    assert "role" in f["actor_type"].to_list()


def test_org_by_name(store: al.AuditStore) -> None:
    with pytest.raises(FilterError, match="no organization is named 'Acme'"):
        resolve_organization(store, "Acme")
    store.set_org_profile(ORG, name="Acme", timezone="Europe/Berlin")
    assert resolve_organization(store, "acme") == ORG
    store.set_org_profile(OTHER, name="ACME")
    with pytest.raises(AmbiguousOrganizationError):
        import_files(store, "cloudtrail", [samples_dir() / "cloudtrail"], organization="Acme")


def test_actors_without_email_are_found_by_their_id(store: al.AuditStore) -> None:
    import_files(store, "cloudtrail", [samples_dir() / "cloudtrail"])
    alice = "arn:aws:iam::123456789012:user/alice"
    assert store.count(actor=alice) == 4
    found = store.search(f"actor:{alice} result:failure", backend="polars")
    assert sorted(found["action"].to_list()) == ["auth.failed", "iam.create_access_key"]
    assert store.count(actor_type="role") == 3


def test_every_sample_round_trips_through_the_store(store: al.AuditStore) -> None:
    from auditlens.schema import normalize_entry, row_to_entry

    options: dict[str, dict[str, object]] = {
        "okta": {"okta_org": "acme.okta.com"},
        "sshd": {"year": 2024, "timezone": "Europe/Berlin"},
    }
    for fmt in FORMATS:
        org = ORG if fmt == "sshd" else None
        report = import_files(
            store, fmt, [samples_dir() / fmt], organization=org, **options.get(fmt, {})
        )
        assert report.ok and report.appended > 0, fmt
        read_options = dict(options.get(fmt, {}), **({"organization_id": ORG} if org else {}))
        for entry in read(fmt, samples_dir() / fmt, **read_options):
            stored = store.get(entry["audit_id"])
            assert stored is not None, (fmt, entry)
            for key in ("seq", "prev_hash", "entry_hash"):
                stored.pop(key)
            assert stored == row_to_entry(normalize_entry(entry)), fmt
    assert al.verify(store).ok
