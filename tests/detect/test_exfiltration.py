"""mass_export: exported rows or exports per actor, at the edges of its limits and window."""

from __future__ import annotations

import json

import polars as pl
import pytest

import auditlens as al
from auditlens.detect import mass_export
from tests.detect.timeline import as_entries, evidence_back, timeline

IP = "10.0.0.5"


def export(minute: float, rows: int | None, actor: str | None = "eve@x.io", **kw) -> tuple:
    return (
        minute,
        kw.get("action", "audit_log.exported"),
        kw.get("result", "success"),
        actor,
        IP,
        None,
        ("audit_log", "org-1", "export.csv"),
        {"rows": rows} if rows is not None else {},
    )


def test_rows_above_the_limit_only() -> None:
    assert mass_export(timeline(export(0, 6000), export(10, 4000))).height == 0  # exactly 10,000
    f = mass_export(timeline(export(0, 6000), export(10, 4001)))
    assert f.height == 1 and f["count"][0] == 2 and f["severity"][0] == "high"
    assert json.loads(f["details"][0]) == {"rows": 10001}
    assert "exported 10001 rows in 2 export(s) within 10 minutes" in f["summary"][0]
    assert mass_export(timeline(export(0, 100_000)))["severity"].to_list() == ["critical"]


def test_the_window_excludes_its_start() -> None:
    assert mass_export(timeline(export(0, 6000), export(60, 6000))).height == 0
    assert mass_export(timeline(export(0, 6000), export(59.99, 6000))).height == 1
    assert mass_export(timeline(export(0, 6000), export(0, 6000))).height == 1  # ties


def test_many_exports_without_row_counts() -> None:
    many = [export(i * 2, None, action="s3.get_object") for i in range(21)]
    assert mass_export(timeline(*many)).height == 1
    assert mass_export(timeline(*many[:20])).height == 0  # exactly 20 exports
    assert mass_export(timeline(*many), exports=25).height == 0


def test_failures_other_actions_actors_and_organizations() -> None:
    refused = timeline(export(0, 50_000, result="failure"))
    assert mass_export(refused).height == 0
    viewed = timeline(export(0, 50_000, action="audit_log.viewed"))
    assert mass_export(viewed).height == 0
    split = timeline(export(0, 6000, actor="a@x.io"), export(1, 6000, actor="b@x.io"))
    assert mass_export(split).height == 0
    machine = mass_export(timeline(export(0, 20_000, actor=None)))
    assert machine["subject"].to_list() == ["(unknown)"]
    two = pl.concat(
        [
            timeline(export(0, 6000), org="org-a"),
            timeline(export(1, 6000), org="org-b").with_columns(pl.lit("e100").alias("audit_id")),
        ]
    )
    assert mass_export(two).height == 0


def test_parameters_are_validated() -> None:
    with pytest.raises(al.FilterError, match="rows must be"):
        mass_export(timeline(export(0, 1)), rows=0)
    with pytest.raises(al.FilterError, match="actions"):
        mass_export(timeline(export(0, 1)), actions="(")


def test_through_the_store(store: al.AuditStore) -> None:
    tl = timeline(export(0, 25_000), export(10, 30_000), export(200, 10))
    store.append(as_entries(tl))
    f = store.detect("mass_export")
    assert evidence_back(f, tl) == [["e000", "e001"]]
