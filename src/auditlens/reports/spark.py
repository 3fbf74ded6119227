"""Reports at scale: the period's entries read from the lake by Spark (``engine="spark"``).

:func:`load_lake_input` makes a :class:`LakeReportInput`: the same questions as the
single-machine :class:`~auditlens.reports.evidence.ReportInput`, answered by a Spark (or
SQLFrame) DataFrame over the lake's Parquet files instead of one polars frame loaded
from the store. What runs where (``docs/SCALE.md``, "Reports on Spark"):

* **selection** — always Spark: the organization's files are taken from the lake's
  manifests (partition pruning on ``organization_id`` and the ``date``/``month`` folder:
  other files are never opened), then filtered on the period's ``timestamp`` bounds;
* **aggregated in Spark** (:data:`AGGREGATED`): ``activity`` and ``authentication``
  count, group and count distinct values in Spark; the driver receives the aggregates,
  the population rows (five narrow columns: they *are* the population file) and the
  exception rows;
* **selected in Spark** (:data:`SELECTED`): ``role_changes``, ``log_access``,
  ``subject_access`` and ``provisioning`` read only some actions (and, for provisioning,
  the successful actions of the users suspended in the period: their ids are collected,
  then Spark filters on them); Spark selects those rows and the single-machine function
  runs on them — the same code, so the same result;
* **selected, with one detector in Spark** (:data:`DETECTED`): ``data_exports``
  (``mass_export``) and ``change_management`` (``bulk_deletions``): the detector runs alone
  in Spark, Spark selects the item's actions and the findings' evidence entries, and the
  single-machine function runs on those;
* **findings**: the detectors :data:`auditlens.engines.spark.PORTED` run in Spark
  (:func:`auditlens.engines.spark.detect`); ``off_hours``, ``unusual_access`` and
  ``privilege_escalation`` are not ported yet and run in polars on the collected period;
* **fallback**: every other evidence item, the report's charts and the unported
  detectors read :attr:`LakeReportInput.frame`, the whole period collected once (lazily:
  an evidence selection without them never collects it).

Facts that only the store holds (the organization's context, chain verification,
checkpoints and keys, the retention plan and log, the report's own review entry) are read
from the store, which is required: the lake copies the entries, not those tables. Before
anything is computed the lake must hold exactly the store's entries of the period, else
:class:`~auditlens.errors.ArchiveError` asks for a ``lake sync``.

Example:
    >>> import tempfile
    >>> import auditlens as al
    >>> from auditlens.reports import collect_evidence
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"action": "auth.failed", "result": "failure",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11",
    ...     "actor": {"email": "jane@company.com", "type": "user"},
    ...     "timestamp": "2025-01-20T10:30:00Z"}])
    >>> lake = tempfile.mkdtemp()
    >>> _ = al.sync_lake(store, lake)
    >>> ev = collect_evidence(store, start="2025-01-01", end="2025-01-31",
    ...     names=["authentication"], charts=False, engine="spark", lake=lake, spark="duckdb")
    >>> ev["authentication"].metrics["failed_logins"]
    1
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from auditlens import detect, plots
from auditlens.detect.exfiltration import EXPORT_ACTIONS
from auditlens.detect.findings import empty_findings
from auditlens.engines import spark as engine
from auditlens.errors import ArchiveError, ConfigError, DetectorError
from auditlens.frames import FRAME_SCHEMA
from auditlens.lake.layout import read_state
from auditlens.lake.sync import TIME_PARTITIONS
from auditlens.reports import evidence as evi
from auditlens.reports.evidence import Evidence, EvidenceSpec, EvidenceTable, ReportInput

if TYPE_CHECKING:
    from auditlens.store.store import Store

__all__ = [
    "AGGREGATED",
    "DETECTED",
    "SELECTED",
    "LakeReportInput",
    "lake_entries",
    "load_lake_input",
    "spark_session",
]

#: a Spark (or SQLFrame) DataFrame / Column: typed loosely, pyspark is not a dependency.
SparkFrame = Any
SparkColumn = Any

_FRAME_TYPES = {f.name: f.type for f in FRAME_SCHEMA}
_POPULATION = ("audit_id", "seq", "timestamp", "action", "actor_email", "actor_user_id")


def spark_session(spark: Any = None) -> tuple[Any, bool]:
    """The session to read the lake with, and whether this call made it (then the
    report stops it when done).

    ``spark``: a session you made (PySpark, Spark Connect or SQLFrame), ``"sc://…"``
    (a Spark Connect server), ``"local"`` (PySpark ``local[2]``; a JVM), ``"duckdb"``
    (SQLFrame on DuckDB, no JVM); None: ``"local"`` if PySpark is installed, else
    ``"duckdb"``. Sessions made here run with ``spark.sql.session.timeZone=UTC``;
    ``"local"`` uses the process's active PySpark session when there is one (and does
    not stop it).

    Raises:
        ConfigError: an unknown session name, or PySpark/SQLFrame not installed.

    Example:
        >>> spark_session("yarn")
        Traceback (most recent call last):
        ...
        auditlens.errors.ConfigError: spark='yarn': give a session, sc://host:port, local or duckdb
    """
    if spark is not None and not isinstance(spark, str):
        return spark, False
    name = spark or ("local" if _has_pyspark() else "duckdb")
    if name == "duckdb":
        try:
            import duckdb  # lazy: SQLFrame only for engine="spark" without a cluster
            from sqlframe.duckdb import DuckDBSession  # lazy: as duckdb
        except ImportError:
            raise ConfigError(
                "spark='duckdb' needs SQLFrame: pip install 'auditlens[spark]'"
            ) from None
        return DuckDBSession(conn=duckdb.connect()), True
    if name == "local" or name.startswith("sc://"):
        if not _has_pyspark():
            raise ConfigError(f"spark={name!r} needs PySpark: pip install pyspark") from None
        from pyspark.sql import SparkSession  # lazy: a JVM or a Connect client only on demand

        active = SparkSession.getActiveSession()
        if active is not None and name == "local":  # someone's session: use it, never stop it
            return active, False
        builder = (
            SparkSession.builder.appName("auditlens-report")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
        )
        builder = builder.remote(name) if name.startswith("sc://") else builder.master("local[2]")
        return builder.getOrCreate(), True
    raise ConfigError(f"spark={spark!r}: give a session, sc://host:port, local or duckdb")


def _has_pyspark() -> bool:
    try:
        import pyspark  # noqa: F401  # lazy: only probing whether PySpark is installed
    except ImportError:
        return False
    return True


def _in_period(path: str, partition: str, start: datetime, end: datetime) -> bool:
    """Whether a file's time partition (``date=…``/``month=…`` folder) meets ``[start, end)``."""
    fmt = TIME_PARTITIONS[partition]
    for part in path.split("/"):
        key, _, value = part.partition("=")
        if key == partition:
            first = start.strftime(fmt)
            last = (end - timedelta(milliseconds=1)).strftime(fmt)
            return first <= value <= last
    return True  # no time folder: keep the file, the timestamp filter decides


def lake_entries(
    session: Any,
    lake: str | os.PathLike[str],
    organization_id: str,
    start: datetime,
    end: datetime,
) -> SparkFrame:
    """The lake's entries of one organization in ``[start, end)`` as a lazy Spark DataFrame
    (the columns of :data:`auditlens.frames.FRAME_SCHEMA`).

    Only the files the manifests list for the organization whose time partition meets the
    period are read (never a folder listing: a compaction in progress would show a file
    twice); the ``timestamp`` bounds are a filter Spark pushes into the Parquet scan.

    Raises:
        ArchiveError: ``lake`` is not a lake, or holds no file at all.
    """
    root = Path(lake)
    if not root.is_dir():
        raise ArchiveError(f"{root}: no such folder (a lake is a folder sync_lake wrote)")
    state = read_state(root)
    if not state.files:
        raise ArchiveError(f"{root}: the lake holds no entries; run `auditlens lake sync` first")
    own = [
        f.path
        for f in state.files_of(organization_id)
        if _in_period(f.path, state.partition, start, end)
    ]
    # nothing to read: one file of the lake gives the schema, a false filter the empty period
    paths = [str(root / p) for p in own or [sorted(state.files)[0]]]
    if type(session).__module__.startswith("pyspark."):
        raw = session.read.option("basePath", str(root)).parquet(*paths)
    else:  # SQLFrame: read_parquet([...]) of its engine
        raw = session.read.load(paths, format="parquet")
    F = engine.spark_api(raw).F
    cols = [
        F.lit(organization_id).alias(name) if name == "organization_id" else F.col(name)
        for name in FRAME_SCHEMA.names
    ]
    keep = (F.col("timestamp") >= F.lit(start)) & (F.col("timestamp") < F.lit(end))
    return raw.filter(keep if own else F.lit(False)).select(*cols)


def _arrow_to_polars(table: pa.Table) -> pl.DataFrame:
    """A collected table as polars: the frame's own types by name, timestamps in UTC ms."""
    fields = []
    for f in table.schema:
        if f.name in _FRAME_TYPES:
            fields.append(pa.field(f.name, _FRAME_TYPES[f.name]))
        elif pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, pa.timestamp("ms", "UTC")))
        else:
            fields.append(f)
    frame = pl.from_arrow(table.cast(pa.schema(fields)))
    assert isinstance(frame, pl.DataFrame)
    return frame


class LakeReportInput(ReportInput):
    """A :class:`ReportInput` whose entries are a Spark DataFrame over the lake.

    :attr:`frame` (the whole period as polars) is collected only when something needs it
    (a fallback evidence item, the charts, an unported detector); :attr:`collected` records
    every collection (what → rows), so what reached the driver is known.
    """

    def __init__(
        self,
        store: Store,
        organization_id: str,
        start: datetime,
        end: datetime,
        entries: SparkFrame,
        extracted_at: datetime,
        *,
        lake: Path,
        session: Any,
        charts: bool = True,
        detectors: dict[str, Any] | None = None,
    ) -> None:
        # the dataclass fields, except ``frame`` (lazy here)
        self.store = store
        self.organization_id = organization_id
        self.start = start
        self.end = end
        self.extracted_at = extracted_at
        self.charts = charts
        self.detectors = dict(detectors or {})
        self.entries = entries  #: the period's entries, a lazy Spark DataFrame
        self.lake = lake
        self.session = session
        self.api = engine.spark_api(entries)
        self.collected: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"LakeReportInput({self.organization_id!r}, {self.start:%Y-%m-%d}…"
            f"{self.end:%Y-%m-%d}, lake={str(self.lake)!r})"
        )

    # -- collecting ---------------------------------------------------------------
    def collect(self, what: str, df: SparkFrame) -> pl.DataFrame:
        """Collect a (small) Spark result into polars, recording ``what`` and its rows."""
        to_arrow = getattr(df, "toArrow", None)  # PySpark ≥ 4.0, Spark Connect, SQLFrame
        if to_arrow is not None:
            table = to_arrow()
        else:  # PySpark 3.5: through pandas (the session runs in UTC)
            table = pa.Table.from_pandas(df.toPandas(), preserve_index=False)
        frame = _arrow_to_polars(table)
        self.collected[what] = self.collected.get(what, 0) + frame.height
        return frame

    def rows_of(self, what: str, cond: SparkColumn, *columns: str) -> pl.DataFrame:
        """The period's entries matching ``cond`` (``columns``; default all), in the
        single-machine frame's order (time, then seq)."""
        cols = list(columns or FRAME_SCHEMA.names)
        return self.collect(what, self.entries.filter(cond).select(*cols)).sort(
            ["timestamp", "seq"]
        )

    @cached_property
    def frame(self) -> pl.DataFrame:  # type: ignore[override]
        """The whole period collected as polars (the fallback; see the module docs)."""
        return self.collect("frame", self.entries).sort(["timestamp", "seq"])

    def action_cond(self, *names: str) -> SparkColumn:
        """Spark's :meth:`ReportInput.actions` condition (exact names, ``category.*``)."""
        F = self.api.F
        exact = [n for n in names if not n.endswith(".*")]
        cond = F.col("action").isin(exact) if exact else F.lit(False)
        for p in (n[:-1] for n in names if n.endswith(".*")):
            cond = cond | F.col("action").startswith(p)
        return cond

    # -- what the report reads ------------------------------------------------------
    @cached_property
    def _totals(self) -> tuple[int, int | None, int | None]:
        F = self.api.F
        row = self.entries.agg(
            F.count(F.lit(1)).alias("n"), F.min("seq").alias("lo"), F.max("seq").alias("hi")
        ).collect()[0]
        self.collected["totals"] = 1
        return int(row["n"]), row["lo"], row["hi"]

    @property
    def rows(self) -> int:
        """How many entries the period holds (counted by Spark)."""
        return self._totals[0]

    def seq_range(self) -> list[int] | None:
        """The first and last seq of the period (Spark's min/max)."""
        n, lo, hi = self._totals
        return [int(lo), int(hi)] if n and lo is not None and hi is not None else None

    def timestamps(self) -> pl.Series:
        """Every entry's time, sorted: one column collected (the completeness statement)."""
        if "frame" in self.__dict__:
            return super().timestamps()
        ts = self.collect("timestamps", self.entries.select("timestamp"))["timestamp"]
        return ts.sort()

    def organization_names(self) -> pl.Series:
        """The organization's names from its entries about itself (selected by Spark)."""
        F = self.api.F
        rows = self.rows_of(
            "organization names",
            (F.col("resource_type") == "organization") & F.col("resource_name").isNotNull(),
            "timestamp",
            "seq",
            "resource_name",
        )
        return rows["resource_name"]

    @cached_property
    def input_sha256(self) -> str:
        """SHA-256 over the period's entry hashes in chain order (two columns collected)."""
        if "frame" in self.__dict__:
            hashes = self.frame.sort("seq")["entry_hash"]
        else:
            got = self.collect("entry hashes", self.entries.select("seq", "entry_hash"))
            hashes = got.sort("seq")["entry_hash"]
        digest = hashlib.sha256()
        for h in hashes.to_list():
            digest.update(h.encode("ascii") + b"\n")
        return digest.hexdigest()

    @cached_property
    def findings(self) -> pl.DataFrame:
        """Every detector's findings, as :func:`auditlens.detect.run_all` gives them: the
        ported detectors in Spark, the others in polars on :attr:`frame`."""
        config = self.detector_config
        ported = [n for n in detect.DETECTORS if n in engine.PORTED and config.get(n) is not False]
        params = {n: dict(config[n]) for n in ported if isinstance(config.get(n), Mapping)}
        by_spark: pl.DataFrame | None = None
        if ported:
            try:
                found = engine.detect(self.session, self.entries, ported, **params)
                by_spark = engine.to_polars(found)
                self.collected["findings"] = by_spark.height
            except DetectorError:  # a parameter the port refuses: polars does it
                by_spark = None
        parts = []
        for name in detect.DETECTORS:
            p = config.get(name, {})
            if p is False:
                continue
            if by_spark is not None and name in ported:
                parts.append(by_spark.filter(pl.col("detector") == name))
            else:
                kw = p if isinstance(p, Mapping) else {}
                parts.append(detect.run(name, self.frame, **kw))
        if not parts:
            return empty_findings()
        # run_all's order (detect.findings.return_like)
        return pl.concat(parts).sort(["window_start", "detector", "subject"])

    def findings_of(self, detector: str) -> pl.DataFrame:
        """One detector's findings: :attr:`findings`' rows when they are computed, else the
        detector alone in Spark (a ported one), in :func:`~auditlens.detect.run_all`'s order."""
        if "findings" in self.__dict__ or detector not in engine.PORTED:
            return self.findings.filter(pl.col("detector") == detector)
        params = self.detector_config.get(detector, {})
        if params is False:
            return empty_findings()
        kw = dict(params) if isinstance(params, Mapping) else {}
        try:
            found = engine.to_polars(
                engine.detect(self.session, self.entries, [detector], **{detector: kw})
            )
        except DetectorError:  # a parameter the port refuses: every detector in polars
            return self.findings.filter(pl.col("detector") == detector)
        self.collected[f"findings: {detector}"] = found.height
        return found.sort(["window_start", "detector", "subject"])

    def compute(self, spec: EvidenceSpec) -> Evidence:
        """Aggregated in Spark, selected by Spark, or the fallback on :attr:`frame`."""
        if spec.name in AGGREGATED:
            return AGGREGATED[spec.name](self)
        if spec.name in SELECTED:
            rows = self.rows_of(spec.name, SELECTED[spec.name](self))
            return spec.compute(self.narrowed(rows))
        if spec.name in DETECTED:
            select, detector = DETECTED[spec.name]
            found = self.findings_of(detector)
            ids = found["audit_ids"].explode().drop_nulls().unique().to_list()
            cond = select(self)
            if ids:  # the findings' evidence entries (joined to their findings by audit_id)
                cond = cond | self.api.F.col("audit_id").isin(ids)
            sub = self.narrowed(self.rows_of(spec.name, cond))
            sub.__dict__["findings"] = found
            return spec.compute(sub)
        return spec.compute(self)

    def narrowed(self, rows: pl.DataFrame) -> ReportInput:
        """A single-machine input over ``rows`` (what Spark selected), sharing the context."""
        sub = ReportInput(
            self.store,
            self.organization_id,
            self.start,
            self.end,
            rows,
            self.extracted_at,
            self.charts,
            self.detectors,
        )
        sub.__dict__["profile"] = self.profile
        return sub

    def provenance(self) -> dict[str, Any]:
        """What the report's provenance adds for this input: the engine and the lake."""
        return {
            "engine": {
                "name": "spark",
                "session": self.api.engine,
                "lake": str(self.lake),
                "collected": dict(self.collected),
            }
        }

    def release(self) -> None:
        """Collect what the report may read after its session is stopped: with charts,
        :attr:`frame` and :attr:`findings` (the overview charts plot them)."""
        if self.charts:
            _ = self.frame, self.findings


def load_lake_input(
    store: Store,
    lake: str | os.PathLike[str],
    organization_id: str,
    start: datetime,
    end: datetime,
    *,
    session: Any,
    charts: bool = True,
    detectors: dict[str, Any] | None = None,
) -> LakeReportInput:
    """The period ``[start, end)`` of one organization, read from ``lake`` by ``session``.

    Raises:
        ArchiveError: the lake does not hold exactly the store's entries of the period
            (sync it: ``auditlens lake sync --to LAKE``).
    """
    extracted = datetime.now(UTC)
    entries = lake_entries(session, lake, organization_id, start, end)
    inp = LakeReportInput(
        store,
        organization_id,
        start,
        end,
        entries,
        extracted,
        lake=Path(lake),
        session=session,
        charts=charts,
        detectors=detectors,
    )
    stored = store.count(
        organization_id=organization_id, start=start, end=end - timedelta(milliseconds=1)
    )
    if stored != inp.rows:
        raise ArchiveError(
            f"{lake}: the lake holds {inp.rows:,} entries of organization {organization_id} in "
            f"the period, the store {stored:,}; bring it up to date with "
            f"`auditlens lake sync --to {lake}` and run the report again"
        )
    return inp


# -- evidence aggregated in Spark -----------------------------------------------------
def _who(F: Any) -> SparkColumn:
    return F.coalesce(F.col("actor_email"), F.col("actor_user_id"), F.lit("(system)"))


def _n_unique(F: Any, col: str) -> SparkColumn:
    """polars' ``n_unique``: distinct values, null counted as one."""
    null = F.max(F.when(F.col(col).isNull(), F.lit(1)).otherwise(F.lit(0)))
    return F.countDistinct(F.col(col)) + F.coalesce(null, F.lit(0))


def _count_if(F: Any, cond: SparkColumn) -> SparkColumn:
    return F.coalesce(F.sum(F.when(cond, F.lit(1)).otherwise(F.lit(0))), F.lit(0))


def _activity(inp: LakeReportInput) -> Evidence:
    """:func:`auditlens.reports.evidence.activity` with its counts in Spark."""
    F = inp.api.F
    failed = F.col("result") == "failure"
    tot = inp.collect(
        "activity: totals",
        inp.entries.agg(
            F.count(F.lit(1)).alias("entries"),
            _count_if(F, failed).alias("failures"),
            F.countDistinct(_who(F)).alias("actors"),
        ),
    ).row(0, named=True)
    by_cat = (
        inp.collect(
            "activity: by category",
            inp.entries.groupBy("category").agg(
                F.count(F.lit(1)).alias("entries"),
                _count_if(F, failed).alias("failures"),
                _n_unique(F, "actor_email").alias("actors"),
            ),
        )
        .select("category", "entries", "failures", "actors")
        .sort(["entries", "category"], descending=[True, False])
    )
    entries, failures, actors = int(tot["entries"]), int(tot["failures"]), int(tot["actors"])
    pop = inp.collect("activity: population", inp.entries.select(*_POPULATION))
    fails = inp.rows_of("activity: failures", failed, *_POPULATION)
    ev = Evidence(
        "activity",
        "Activity overview",
        f"{entries:,} entries by {actors:,} actors; {failures:,} failed.",
        {
            "entries": entries,
            "actors": actors,
            "failures": failures,
            "failure_rate": evi._rate(failures, entries),
        },
        [EvidenceTable.of("Entries by category", by_cat)],
        test="Every entry of the organization in the period was counted by category and result.",
        population=inp.population(pop),
        exceptions={"failures": inp.exceptions(fails, evi._format("{} failed", pl.col("action")))},
    )
    if inp.charts and entries:  # the charts plot every entry: the fallback frame
        ev.charts += [plots.activity_by_category(inp.frame), plots.top_actors(inp.frame)]
    return ev


def _authentication(inp: LakeReportInput) -> Evidence:
    """:func:`auditlens.reports.evidence.authentication` with its counts in Spark."""
    F = inp.api.F
    is_failed = F.col("action") == "auth.failed"
    auth = inp.entries.filter(inp.action_cond("auth.login", "auth.failed"))
    tot = inp.collect(
        "authentication: totals",
        auth.agg(
            _count_if(F, F.col("action") == "auth.login").alias("logins"),
            _count_if(F, is_failed).alias("failed"),
        ),
    ).row(0, named=True)
    fail_rows = inp.entries.filter(is_failed)
    sources = inp.collect(
        "authentication: sources", fail_rows.agg(_n_unique(F, "ip_address").alias("n"))
    ).item(0, "n")
    targets = (
        inp.collect(
            "authentication: by account",
            fail_rows.groupBy(_who(F).alias("actor")).agg(
                F.count(F.lit(1)).alias("failed"),
                _n_unique(F, "ip_address").alias("source_ips"),
                F.min("timestamp").alias("first"),
                F.max("timestamp").alias("last"),
            ),
        )
        .select("actor", "failed", "source_ips", "first", "last")
        .sort(["failed", "actor"], descending=[True, False])
    )
    logins, n_failed = int(tot["logins"]), int(tot["failed"])
    failed = inp.rows_of("authentication: failures", is_failed)  # the exceptions (and chart)
    pop = inp.rows_of(
        "authentication: population", inp.action_cond("auth.login", "auth.failed"), *_POPULATION
    )
    attempts = logins + n_failed
    ev = Evidence(
        "authentication",
        "Authentication",
        f"{logins:,} sign-ins and {n_failed:,} failed attempts "
        f"against {targets.height:,} accounts.",
        {
            "logins": logins,
            "failed_logins": n_failed,
            "failure_rate": evi._rate(n_failed, attempts),
            "accounts_targeted": targets.height,
            "source_ips": int(sources) if n_failed else 0,
        },
        [EvidenceTable.of("Failed sign-ins by account", targets)],
        test="Every sign-in and failed sign-in of the period was counted by account and source.",
        population=inp.population(pop),
        population_query="action:auth.login,auth.failed",
        exceptions=dict.fromkeys(
            ("failed_logins", "failure_rate", "accounts_targeted"),
            inp.exceptions(
                failed,
                evi._format(
                    "failed sign-in from {}", pl.col("ip_address").fill_null("an unknown address")
                ),
            ),
        ),
    )
    if inp.charts and n_failed:
        ev.charts.append(plots.failed_logins(failed))
    return ev


#: evidence computed with Spark aggregations (the driver gets aggregates, population and
#: exception rows).
AGGREGATED: dict[str, Callable[[LakeReportInput], Evidence]] = {
    "activity": _activity,
    "authentication": _authentication,
}


# -- evidence on the rows Spark selects -----------------------------------------------
def _provisioning_rows(inp: LakeReportInput) -> SparkColumn:
    """User lifecycle entries, and successful actions of the users suspended in the period
    (their ids are collected — a handful — and Spark filters on them: only those users'
    actions reach the driver)."""
    F = inp.api.F
    suspended = inp.entries.filter(F.col("action") == "user.suspended").select(
        F.col("resource_id").alias("_sid")
    )
    ids = [r["_sid"] for r in suspended.distinct().collect() if r["_sid"] is not None]
    inp.collected["provisioning: suspended users"] = len(ids)
    lifecycle = inp.action_cond("user.invited", "user.joined", "user.suspended", "user.removed")
    if not ids:
        return lifecycle
    return lifecycle | ((F.col("result") == "success") & F.col("actor_user_id").isin(ids))


def _exports(inp: LakeReportInput) -> SparkColumn:
    F = inp.api.F
    return F.col("action").rlike(EXPORT_ACTIONS) & (F.col("result") == "success")


#: evidence computed by the single-machine function on the rows Spark selects plus the
#: evidence entries of one ported detector's findings, that detector run alone in Spark
#: (the function reads only those rows and that detector's findings).
DETECTED: dict[str, tuple[Callable[[LakeReportInput], SparkColumn], str]] = {
    "data_exports": (_exports, "mass_export"),
    "change_management": (lambda inp: inp.action_cond(*evi._CHANGES), "bulk_deletions"),
}

#: evidence computed by the single-machine function on the rows Spark selects (the
#: function reads nothing else: its actions, and for provisioning the suspended users'
#: successful actions).
SELECTED: dict[str, Callable[[LakeReportInput], SparkColumn]] = {
    "role_changes": lambda inp: inp.action_cond("user.role_changed"),
    "log_access": lambda inp: inp.action_cond("audit_log.*"),
    "subject_access": lambda inp: inp.action_cond("audit_log.exported"),
    "provisioning": _provisioning_rows,
}
