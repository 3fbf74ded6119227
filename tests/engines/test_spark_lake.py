"""Spark over a lake: ``read_lake`` and ``auditlens detect --engine spark --lake PATH``.

A small demo store is synced to a lake; Spark reads it back with the columns and types the
detectors need, and the CLI finds on Spark what ``auditlens detect --db`` finds in the store
(for the detectors ported to Spark), in each output format.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from auditlens.demo import generate
from auditlens.engines import spark

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A SQLite store of the demo (2 organizations, 14 days) and the lake synced from it."""
    folder = tmp_path_factory.mktemp("spark-lake")
    url = f"sqlite:///{folder / 'audit.db'}"
    with al.open_store(url) as store:
        store.append(generate(orgs=2, days=14, seed=3, end=date(2025, 1, 31)).entries)
        al.sync_lake(store, folder / "lake")
    return url, folder / "lake"


@pytest.mark.usefixtures("spark_session")
@pytest.mark.spark
@pytest.mark.xdist_group("spark")
class TestOnSpark:
    def test_read_lake_has_the_entry_columns_and_types(
        self, spark_session: Any, synced: tuple[str, Path]
    ) -> None:
        url, lake = synced
        df = spark.read_lake(spark_session, lake)
        assert tuple(df.columns) == al.frames.COLUMNS
        types = dict(df.dtypes)
        assert (types["timestamp"], types["seq"], types["organization_id"]) == (
            "timestamp",
            "bigint",
            "string",
        )
        with al.open_store(url) as store:
            expected = store.query(backend="polars", order="asc")
        got = pl.DataFrame([r.asDict() for r in df.collect()], schema=expected.schema)
        key = ["organization_id", "seq"]
        assert got.sort(key).equals(expected.sort(key))  # every entry, times as in the store

    def test_read_lake_filters_by_organization_and_time(
        self, spark_session: Any, synced: tuple[str, Path]
    ) -> None:
        url, lake = synced
        with al.open_store(url) as store:
            org = store.query(backend="polars")["organization_id"][0]
            start, end = datetime(2025, 1, 20, tzinfo=UTC), date(2025, 1, 25)
            expected = store.query(
                backend="polars", organization_id=org, start=start, end="2025-01-24T23:59:59.999Z"
            )
        df = spark.read_lake(spark_session, lake, organization_id=org, start=start, end=end)
        assert sorted(r["audit_id"] for r in df.select("audit_id").collect()) == sorted(
            expected["audit_id"]
        )

    def test_detect_on_spark_finds_what_the_store_finds(self, synced: tuple[str, Path]) -> None:
        url, lake = synced
        code, out, err = run("detect", "--db", url, "--format", "json")
        assert code == 0, err
        expected = [r for r in json.loads(out) if r["detector"] in spark.PORTED]
        code, out, err = run("detect", "--engine", "spark", "--lake", str(lake), "-f", "json")
        assert code == 0, err
        got = json.loads(out)
        # the demo injects every kind; off_hours takes the context from the lake's entries
        assert {r["detector"] for r in got} == {r["detector"] for r in expected}
        assert {"off_hours", "brute_force_success"} <= {r["detector"] for r in got}
        by_id = sorted(expected, key=lambda r: r["finding_id"])
        assert sorted(got, key=lambda r: r["finding_id"]) == by_id

    def test_table_and_ocsf_output_and_params(self, synced: tuple[str, Path]) -> None:
        url, lake = synced
        args = ("detect", "--detector", "failed_login_spikes", "--param")
        param = "failed_login_spikes.threshold=3"
        code, db_out, _ = run(*args, param, "--db", url)
        assert code == 0
        code, out, err = run(*args, param, "--engine", "spark", "--lake", str(lake))
        assert code == 0, err
        assert out == db_out  # the same header (entries covered) and the same lines
        assert "finding(s) in" in out
        code, db_out, _ = run(*args, param, "--db", url, "-f", "ocsf")
        code, out, err = run(*args, param, "--engine", "spark", "--lake", str(lake), "-f", "ocsf")
        assert code == 0, err
        ocsf = [json.loads(line) for line in out.splitlines()]
        assert len(ocsf) == len(db_out.splitlines()) > 0
        assert {e["finding_info"]["uid"] for e in ocsf} == {
            json.loads(line)["finding_info"]["uid"] for line in db_out.splitlines()
        }


def test_detect_on_spark_refuses_what_is_not_ported(synced: tuple[str, Path]) -> None:
    _, lake = synced
    for args, message in (
        (("--sigma", "rules"), "does not take --sigma"),
        (("actor:jane@x.io",), "does not take a search query"),
        ((), "give --lake PATH"),
    ):
        lake_args = () if message == "give --lake PATH" else ("--lake", str(lake))
        code, _, err = run("detect", *args, "--engine", "spark", *lake_args)
        assert code != 0 and message in err, err
    code, _, err = run("detect", "--lake", str(lake))
    assert code != 0 and "go with --engine spark" in err


def test_without_pyspark_the_error_names_the_extra(
    synced: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # import pyspark.sql fails
    _, lake = synced
    code, _, err = run("detect", "--engine", "spark", "--lake", str(lake))
    assert code != 0
    assert "pip install 'auditlens[spark]'" in err


def test_spark_remote_is_wired_and_fails_clearly(synced: tuple[str, Path]) -> None:
    pytest.importorskip("pyspark")
    _, lake = synced
    code, _, err = run(
        "detect", "--engine", "spark", "--lake", str(lake), "--spark-remote", "sc://127.0.0.1:9"
    )
    assert code != 0
    assert "Spark Connect" in err  # its client packages missing, or the server unreachable
    code, _, err = run(
        "detect", "--engine", "spark", "--lake", str(lake), "--spark-remote", "spark:15002"
    )
    assert code != 0 and "must start with sc://" in err
