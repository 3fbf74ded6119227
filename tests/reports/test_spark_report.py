"""Reports with ``engine="spark"``: the period read from the lake by Spark gives the same
report JSON as the single-machine path on the same data (the demo), collecting only what
the evidence needs.

Spark runs through SQLFrame on DuckDB (no JVM) on every run; with PySpark and a JVM
installed, one test runs the same on a real ``local[2]`` session.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import auditlens as al
from auditlens import demo
from auditlens.chain.checkpoints import create_checkpoint
from auditlens.chain.notes import generate_keys, load_signing_key
from auditlens.cli import app
from auditlens.errors import ArchiveError, ConfigError
from auditlens.reports import build_report, collect_evidence
from auditlens.reports.evidence import Evidence, compute
from auditlens.reports.report import period
from auditlens.reports.spark import AGGREGATED, DETECTED, SELECTED, load_lake_input
from tests.helpers import ORG

duckdb = pytest.importorskip("duckdb")
DuckDBSession = pytest.importorskip("sqlframe.duckdb").DuckDBSession
pytestmark = [
    pytest.mark.slow,
    # one worker builds the demo lake once (make test: --dist loadgroup)
    pytest.mark.xdist_group("spark_report"),
    # SQLFrame on DuckDB warns that to_json() options are ignored (the detectors' details)
    pytest.mark.filterwarnings("ignore::UserWarning"),
    # PySpark 4.x warns that pandas 3 is not fully supported (it is not used here)
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

runner = CliRunner()
_JVM = pytest.mark.skipif(shutil.which("java") is None, reason="PySpark needs a JVM (java)")
START, END = "2025-01-30", "2025-02-28"
#: what legitimately differs between the two paths' JSON: when the input was extracted,
#: the Spark path's engine record, and what depends on the extraction time (the age of the
#: latest checkpoint, in its metric and its sentence)
DIFFERS = (
    "provenance.extracted_at",
    "provenance.engine",
    "metrics.hours_since_checkpoint",
    "evidence.log_integrity.summary (the checkpoint's age)",
)


@dataclass
class Demo:
    store: al.AuditStore
    lake: Path
    org: str
    other: str


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """Two demo tenants over 30 days in a SQLite store, checkpointed, synced to a lake."""
    root = tmp_path_factory.mktemp("spark-report")
    data = demo.generate(orgs=2, days=30, end=date(2025, 3, 1))
    store = al.open_store(f"sqlite:///{root / 'demo.db'}")
    store.append(data.entries)
    org, other = (o["organization_id"] for o in data.organizations)
    generate_keys(root, "demo.local/log")
    create_checkpoint(store, org, load_signing_key(root / "signing.key"))
    lake = root / "lake"
    al.sync_lake(store, lake)
    yield Demo(store, lake, org, other)
    store.close()


def _normalized(results: dict[str, Any]) -> dict[str, Any]:
    """The report JSON less what legitimately differs (:data:`DIFFERS`)."""
    out = copy.deepcopy(results)
    out["provenance"].pop("extracted_at")
    out["provenance"].pop("engine", None)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            if "hours_since_checkpoint" in node.get("metrics", {}):
                node["metrics"]["hours_since_checkpoint"] = None
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(out)
    integrity = out["evidence"]["log_integrity"]
    integrity["summary"] = re.sub(r"\([0-9.]+ h old\)", "(… h old)", integrity["summary"])
    return out


def test_soc2_on_the_demo_is_the_same_json_both_ways(demo_lake: Demo, tmp_path: Path) -> None:
    kw: dict[str, Any] = {"charts": False, "record": False}
    one = build_report(demo_lake.store, "soc2", demo_lake.org, START, END, **kw)
    spark = build_report(
        demo_lake.store,
        "soc2",
        demo_lake.org,
        START,
        END,
        engine="spark",
        lake=demo_lake.lake,
        spark="duckdb",
        **kw,
    )
    a = one.to_json()
    b = spark.to_json()
    assert b["provenance"]["engine"]["name"] == "spark"
    assert b["provenance"]["engine"]["session"] == "duckdb"
    assert _normalized(b) == _normalized(a)
    # the report is not trivially equal: it tests populations and names exceptions
    checks = [c for r in a["requirements"] for c in r["checks"]]
    assert any(c["exceptions"] for c in checks)
    assert a["provenance"]["rows"] > 1000
    assert a["evidence"]["log_integrity"]["metrics"]["signed_checkpoints"] == 1
    # the population files written beside the results are the same bytes
    for report, name in ((one, "one"), (spark, "spark")):
        report.save_json(tmp_path / name / "r.json")
    files = sorted(p.name for p in (tmp_path / "one" / "r.populations").iterdir())
    assert files
    for f in files:
        mine = (tmp_path / "spark" / "r.populations" / f).read_bytes()
        assert mine == (tmp_path / "one" / "r.populations" / f).read_bytes(), f


def _assert_same_evidence(got: Evidence, expected: Evidence) -> None:
    assert got.to_json() == expected.to_json()
    assert got.population_sha256() == expected.population_sha256()
    assert set(got.exceptions) == set(expected.exceptions)
    for metric, rows in expected.exceptions.items():
        assert_frame_equal(got.exceptions[metric], rows, check_dtypes=False)


def test_spark_evidence_collects_only_what_it_needs(demo_lake: Demo) -> None:
    names = [*AGGREGATED, *SELECTED, *DETECTED]
    expected = collect_evidence(demo_lake.store, demo_lake.org, START, END, names, charts=False)
    lo, hi = period(demo_lake.store, demo_lake.org, START, END)
    session = DuckDBSession(conn=duckdb.connect())
    try:
        inp = load_lake_input(
            demo_lake.store, demo_lake.lake, demo_lake.org, lo, hi, session=session, charts=False
        )
        got = {name: compute(inp, name) for name in names}
    finally:
        session.stop()  # one SQLFrame session per process: the next test makes its own
    seen = inp.collected
    for name in names:
        _assert_same_evidence(got[name], expected[name])
    # never the whole period: aggregates, population rows and the selected actions only
    assert "frame" not in seen
    assert seen["authentication: by account"] < seen["authentication: failures"]
    rows = demo_lake.store.count(organization_id=demo_lake.org, start=START, end=END)
    assert seen["role_changes"] < rows / 10
    assert seen["provisioning"] < rows / 5
    # one detector alone in Spark, and only its evidence entries and the item's actions
    assert seen["findings: mass_export"] >= 1
    assert "findings" not in seen
    assert seen["data_exports"] < rows / 10


def test_the_other_organization_and_an_empty_period(demo_lake: Demo) -> None:
    """Files are pruned by organization and day: each tenant reads its own, and a period
    without entries reads none (and reports nothing)."""
    other = collect_evidence(
        demo_lake.store,
        demo_lake.other,
        "2025-02-10",
        "2025-02-12",
        ["activity"],
        charts=False,
        engine="spark",
        lake=demo_lake.lake,
        spark="duckdb",
    )
    expected = collect_evidence(
        demo_lake.store, demo_lake.other, "2025-02-10", "2025-02-12", ["activity"], charts=False
    )
    _assert_same_evidence(other["activity"], expected["activity"])
    empty = collect_evidence(
        demo_lake.store,
        demo_lake.org,
        "2024-06-01",
        "2024-06-30",
        ["activity", "authentication"],
        charts=False,
        engine="spark",
        lake=demo_lake.lake,
        spark="duckdb",
    )
    assert empty["activity"].metrics["entries"] == 0
    assert empty["authentication"].metrics == {
        "logins": 0,
        "failed_logins": 0,
        "failure_rate": 0.0,
        "accounts_targeted": 0,
        "source_ips": 0,
    }


def test_a_lake_behind_the_store_is_refused(demo_lake: Demo, tmp_path: Path) -> None:
    store = al.open_store(f"sqlite:///{tmp_path / 's.db'}")
    data = demo.generate(orgs=1, days=7, end=date(2025, 2, 1))
    store.append(data.entries[:100])
    org = data.organizations[0]["organization_id"]
    al.sync_lake(store, tmp_path / "lake")
    store.append(data.entries[100:])
    with pytest.raises(ArchiveError, match=r"lake sync --to .*lake"):
        collect_evidence(
            store,
            org,
            "2025-01-25",
            "2025-01-31",
            ["activity"],
            charts=False,
            engine="spark",
            lake=tmp_path / "lake",
            spark="duckdb",
        )
    store.close()


def test_engine_arguments_are_checked(demo_lake: Demo) -> None:
    with pytest.raises(ConfigError, match="give lake="):
        collect_evidence(demo_lake.store, demo_lake.org, START, END, ["activity"], engine="spark")
    with pytest.raises(ConfigError, match="go with engine='spark'"):
        collect_evidence(demo_lake.store, demo_lake.org, START, END, lake=demo_lake.lake)
    with pytest.raises(ConfigError, match="engine must be"):
        collect_evidence(demo_lake.store, demo_lake.org, START, END, engine="dask")
    with pytest.raises(ConfigError, match="sc://host:port"):
        collect_evidence(
            demo_lake.store,
            demo_lake.org,
            START,
            END,
            engine="spark",
            lake=demo_lake.lake,
            spark="yarn",
        )


@_JVM
def test_real_pyspark_gives_the_same_evidence(demo_lake: Demo) -> None:
    pytest.importorskip("pyspark")
    # the Spark-computed items and the semi-join; the detectors' parity is tests/engines'
    names = [*AGGREGATED, "provisioning"]
    expected = collect_evidence(demo_lake.store, demo_lake.org, START, END, names, charts=False)
    got = collect_evidence(
        demo_lake.store,
        demo_lake.org,
        START,
        END,
        names,
        charts=False,
        engine="spark",
        lake=demo_lake.lake,
        spark="local",
    )
    for name in names:
        _assert_same_evidence(got[name], expected[name])


def test_report_command_with_engine_spark(demo_lake: Demo, tmp_path: Path) -> None:
    """`auditlens report --engine spark --lake PATH` runs the notebook on Spark and writes
    the same results as the single-machine report (computed first: the command records
    its own review entry in the store)."""
    single = build_report(
        demo_lake.store, "soc2", demo_lake.org, START, END, charts=False, record=False
    )
    expected = json.loads(single.save_json(tmp_path / "single" / "soc2.json").read_text())
    out = tmp_path / "soc2.pdf"
    db = demo_lake.store.engine.url.render_as_string(hide_password=False)
    base = ["report", "soc2", "--org", demo_lake.org, "--start", START, "--end", END]
    res = runner.invoke(
        app,
        [
            *base,
            "--out",
            str(out),
            "--db",
            db,
            "--engine",
            "spark",
            "--lake",
            str(demo_lake.lake),
            "--spark-remote",
            "duckdb",
        ],
    )
    assert res.exit_code == 0, res.output
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["provenance"]["engine"]["lake"] == str(demo_lake.lake.resolve())
    got, want = _normalized(results), _normalized(expected)
    for key in want:
        assert got[key] == want[key], key
    assert got == want
    assert out.stat().st_size > 10_000
    # a lake without --engine spark, and --engine spark without a lake, are refused
    res = runner.invoke(app, [*base, "--db", db, "--lake", str(demo_lake.lake)])
    assert res.exit_code == 2 and "go with --engine spark" in res.output
    res = runner.invoke(app, [*base, "--db", db, "--engine", "spark"])
    assert res.exit_code == 2 and "give --lake PATH" in res.output


@pytest.mark.parametrize(
    ("partition", "session"),
    [("date", "duckdb"), ("month", "duckdb"), pytest.param("date", "local", marks=_JVM)],
)
def test_period_bounds_to_the_millisecond(tmp_path: Path, partition: str, session: str) -> None:
    """``[start, end)`` on the lake as in the store: the first millisecond of the first day
    and the last of the last day are in, one millisecond outside is out, whatever the
    lake's time partition."""
    store = al.open_store(f"sqlite:///{tmp_path / 's.db'}")
    times = [
        "2024-12-31T23:59:59.999Z",
        "2025-01-01T00:00:00.000Z",
        "2025-01-31T23:59:59.999Z",
        "2025-02-01T00:00:00.000Z",
    ]
    store.append(
        [
            {
                "action": "auth.failed",
                "result": "failure",
                "organization_id": ORG,
                "actor": {"email": f"u{i}@x.io", "type": "user"},
                "timestamp": t,
            }
            for i, t in enumerate(times)
        ]
    )
    if session == "local":
        pytest.importorskip("pyspark")
    al.sync_lake(store, tmp_path / "lake", partition=partition)
    kw: dict[str, Any] = {"names": ["activity", "authentication"], "charts": False}
    want = collect_evidence(store, ORG, "2025-01-01", "2025-01-31", **kw)
    got = collect_evidence(
        store,
        ORG,
        "2025-01-01",
        "2025-01-31",
        engine="spark",
        lake=tmp_path / "lake",
        spark=session,
        **kw,
    )
    assert want["activity"].metrics["entries"] == 2
    for name in ("activity", "authentication"):
        _assert_same_evidence(got[name], want[name])
    store.close()
