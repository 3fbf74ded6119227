"""The engines the Spark port is tested on: SQLFrame on DuckDB and a real Spark ``local[2]``.

``engine`` is parametrized: every test that takes it runs on SQLFrame's DuckDB session (the
PySpark DataFrame API without a JVM) and on Apache Spark itself (one ``local[2]`` session for
the whole run, :func:`spark_session`). Real-Spark tests carry the ``spark`` marker and one
``xdist_group``, so under ``-n 2 --dist loadgroup`` a single worker (one JVM) runs them all.
They are skipped, with the reason, when pyspark or Java is missing — unless
``AUDITLENS_REQUIRE_SPARK`` is set (CI sets it), in which case they fail.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from auditlens.engines import spark

#: marks of every test on a real Spark session: selectable with ``-m spark``, one JVM
SPARK = (pytest.mark.spark, pytest.mark.xdist_group("spark"))
_names = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every ``spark`` test into the ``spark`` xdist group, by node id.

    ``--dist loadgroup`` groups by an ``@group`` suffix that pytest-xdist 3.8 writes into
    the item's old ``_nodeid`` field, which pytest 9.2's structured node ids no longer read
    (pytest-dev/pytest-xdist#1386): the marks alone leave the Spark tests spread over both
    workers, each starting a JVM. Until xdist follows, the suffix is set here; the marks
    stay for the day it does (and for ``-m spark``).
    """
    if not getattr(config.option, "loadgroup", False):  # set in xdist workers under loadgroup
        return
    for item in items:
        node_id = item.nodeid
        if item.get_closest_marker("spark") is None or node_id.endswith("@spark"):
            continue
        if hasattr(item, "_id"):  # pytest >= 9.2: the structured id
            from _pytest.nodeid import coerce_node_id  # lazy: pytest >= 9.2 only

            item._id = coerce_node_id(f"{node_id}@spark")
        else:
            item._nodeid = f"{node_id}@spark"


def spark_missing() -> str | None:
    """Why a local Spark session cannot start here (None: it can)."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'auditlens[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "no java on PATH or in JAVA_HOME (Spark needs Java 17+)"
    return None


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One Spark ``local[2]`` session for the test run: UTC, no UI, 2 shuffle partitions."""
    missing = spark_missing()
    if missing:
        if os.environ.get("AUDITLENS_REQUIRE_SPARK"):
            pytest.fail(f"Spark required (AUDITLENS_REQUIRE_SPARK) but {missing}")
        pytest.skip(f"{missing}; set AUDITLENS_REQUIRE_SPARK=1 to make this a failure")
    session = spark.local_session(
        2, memory="1g", conf={"spark.sql.shuffle.partitions": "2"}, app_name="auditlens-tests"
    )
    yield session
    session.stop()


class Engine:
    """A session of one engine and a way to put a polars frame into it."""

    #: ``sqlframe-duckdb`` or ``pyspark``
    name = ""
    session: Any

    def frame(self, entries: pl.DataFrame) -> Any:
        raise NotImplementedError

    def examples(self, n: int) -> int:
        """Hypothesis examples for a test that runs ``n`` on SQLFrame (a Spark job per
        example costs a second or more: fewer there)."""
        return n

    def findings(self, entries: pl.DataFrame, name: str, params: dict[str, Any]) -> pl.DataFrame:
        found = spark.detect(self.session, self.frame(entries), [name], **{name: params})
        return spark.to_polars(found)


class SQLFrameEngine(Engine):
    """SQLFrame's DuckDB session (no JVM)."""

    name = "sqlframe-duckdb"

    def __init__(self) -> None:
        import duckdb  # lazy: an optional test dependency (the spark extra)
        from sqlframe.duckdb import DuckDBSession  # lazy: as above

        self.con = duckdb.connect()
        self.session = DuckDBSession(conn=self.con)

    def frame(self, entries: pl.DataFrame) -> Any:
        name = f"entries_{next(_names)}"
        self.con.register("_incoming", entries.to_arrow())
        self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM _incoming")
        self.con.unregister("_incoming")
        return self.session.table(name)


class PySparkEngine(Engine):
    """Apache Spark, ``local[2]``."""

    name = "pyspark"

    def __init__(self, session: Any) -> None:
        self.session = session

    def frame(self, entries: pl.DataFrame) -> Any:
        return self.session.createDataFrame(entries.to_arrow())

    def examples(self, n: int) -> int:
        return max(2, n // 8)


@pytest.fixture(scope="module", params=["sqlframe-duckdb", pytest.param("pyspark", marks=SPARK)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each engine in turn: SQLFrame on DuckDB, then real Spark."""
    if request.param == "pyspark":
        yield PySparkEngine(request.getfixturevalue("spark_session"))
        return
    pytest.importorskip("sqlframe.duckdb")
    eng = SQLFrameEngine()
    yield eng
    eng.session.stop()  # SQLFrame keeps one session per process: stop() closes it and lets
    # the next DuckDBSession(conn=...) (another module, a doctest) take its own connection
