"""OCSF 1.5 events from audit entries, and Detection Findings from detector findings.

Each entry becomes one event of the class its action belongs to:

===============================  =========================  ==================================
action                           class (``class_uid``)      ``activity_id``
===============================  =========================  ==================================
``auth.password_reset``,         Account Change (3001)      Password Reset 4, MFA Factor
``auth.mfa_*``, ``user.*``,                                 Enable 10 / Disable 11, Create 1,
``*.role_*``, ``*.member_*``                                Enable 2, Disable 5, Delete 6,
                                                            else Other 99
other ``auth.*``                 Authentication (3002)      Logon 1 (login, failed), Logoff 2
                                                            (logout, sessions_revoked), else 99
``*.created/updated/deleted``    Entity Management (3004)   Create 1, Update 3, Delete 4
with a resource
everything else                  API Activity (6003)        Create 1, Read 2, Update 3,
                                                            Delete 4, Other 99 (by the verb)
===============================  =========================  ==================================

``type_uid = class_uid * 100 + activity_id``, ``time`` is epoch milliseconds,
``status_id`` comes from ``result`` (success 1, failure 2, partial 99 "Partial"),
``metadata`` carries the product, the OCSF version, ``uid`` = ``audit_id``,
``tenant_uid`` = ``organization_id``, ``sequence`` = the chain ``seq``, and
``unmapped`` keeps what OCSF has no place for (``details`` as stored, ``category``,
``application_id``, ``result``, ``entry_hash``).

Events are built column-wise: JSON Lines are assembled as text by polars expressions
(absent values are left out, not written as ``null``; ``details`` is spliced in as
stored), Parquet as nested structs, one file per class. Findings (few rows) go through
``py-ocsf-models``' ``DetectionFinding``.

Example:
    >>> import polars as pl, orjson
    >>> from datetime import datetime, UTC
    >>> frame = pl.DataFrame({"audit_id": ["a1"], "timestamp": [datetime(2025, 1, 20, tzinfo=UTC)],
    ...     "actor_user_id": [None], "actor_email": ["jane@company.com"], "actor_type": ["user"],
    ...     "action": ["auth.login"], "category": ["authentication"], "resource_type": [None],
    ...     "resource_id": [None], "resource_name": [None], "organization_id": ["org-1"],
    ...     "application_id": [None], "ip_address": ["10.0.0.1"], "user_agent": [None],
    ...     "details": ["{}"], "result": ["success"], "seq": [1], "prev_hash": ["0"],
    ...     "entry_hash": ["h"]}, schema_overrides={"timestamp": pl.Datetime("ms", "UTC")})
    >>> event = orjson.loads(ocsf_json_lines(frame)[0])
    >>> event["class_uid"], event["type_uid"], event["time"], event["metadata"]["uid"]
    (3002, 300201, 1737331200000, 'a1')
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Unpack

import orjson
import polars as pl
import pyarrow.parquet as pq

from auditlens import __version__
from auditlens.errors import ConfigError, ExportFormatError
from auditlens.export.writers import ExportResult
from auditlens.review import check_review, record_review

if TYPE_CHECKING:
    import pyarrow as pa

    from auditlens.query.keywords import FilterKeywords
    from auditlens.store.store import Store

__all__ = [
    "CLASSES",
    "OCSF_VERSION",
    "export_ocsf_parquet",
    "findings_to_ocsf",
    "ocsf_json_lines",
    "ocsf_tables",
    "write_ocsf_jsonl",
]

#: the OCSF schema version the events follow.
OCSF_VERSION = "1.5.0"

#: class_uid → (class name, category_uid, category name, file stem for Parquet)
CLASSES: dict[int, tuple[str, int, str, str]] = {
    3001: ("Account Change", 3, "Identity & Access Management", "account_change"),
    3002: ("Authentication", 3, "Identity & Access Management", "authentication"),
    3004: ("Entity Management", 3, "Identity & Access Management", "entity_management"),
    6003: ("API Activity", 6, "Application Activity", "api_activity"),
}

_ACTIVITIES: dict[int, dict[int, str]] = {
    3001: {
        1: "Create",
        2: "Enable",
        3: "Password Change",
        4: "Password Reset",
        5: "Disable",
        6: "Delete",
        10: "MFA Factor Enable",
        11: "MFA Factor Disable",
        99: "Other",
    },
    3002: {1: "Logon", 2: "Logoff", 99: "Other"},
    3004: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
    6003: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
}
#: verb of an action (``mfa_enabled`` in ``auth.mfa_enabled``) → activity, per class
_VERBS: dict[int, dict[str, int]] = {
    3001: {
        "password_changed": 3,
        "password_reset": 4,
        "mfa_enabled": 10,
        "mfa_disabled": 11,
        "mfa_reset": 11,
        "mfa_removed": 11,
        "invited": 1,
        "created": 1,
        "joined": 2,
        "enabled": 2,
        "reactivated": 2,
        "suspended": 5,
        "disabled": 5,
        "removed": 6,
        "deleted": 6,
    },
    3002: {"login": 1, "failed": 1, "logout": 2, "sessions_revoked": 2},
}
#: auth.* actions that change the account rather than authenticate
_ACCOUNT_AUTH = ("password_reset", "password_changed", "mfa_enabled", "mfa_disabled", "mfa_reset")
_API_VERBS = (
    (r"(^|_)(created|added|invited|generated)$", 1),
    (r"(^|_)(viewed|read|exported|listed|downloaded|searched)$", 2),
    (r"(^|_)(updated|changed|set|applied|restored|triaged)$", 3),
    (r"(^|_)(deleted|removed|revoked)$", 4),
)
_USER_TYPE_IDS = {"user": 1, "service_account": 4, "system": 3}
_USER_TYPES = {"user": "User", "service_account": "Service", "system": "System"}
_SEVERITY = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_FINDING_SEVERITY = {"low": 2, "medium": 3, "high": 4, "critical": 5}

# A tree of the event: leaves are (kind, expression), kind "s" text (JSON-escaped), "t" text
# that never needs escaping (validated: UUIDs, actions, IPs, enums, captions), "i" integer,
# "b" true or absent, "j" JSON text spliced as is, ("c", python value) a constant;
# ("l", tree) is a one-element list of that object.
Node = tuple[str, Any] | dict[str, "Node"]
Tree = dict[str, Node]


def _product() -> dict[str, str]:

    return {"name": "auditlens", "vendor_name": "auditlens", "version": __version__}


def _classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``_class`` and ``_activity`` columns.

    They depend on the action and on whether the entry names a resource only, so they are
    worked out once per distinct pair (a few dozen) and joined back.
    """
    pairs = frame.select(
        pl.col("action"), pl.col("resource_type").is_not_null().alias("_has_resource")
    )
    kinds = _classify_pairs(pairs.unique())
    return frame.with_columns(pairs["_has_resource"]).join(
        kinds, on=["action", "_has_resource"], how="left", maintain_order="left"
    )


def _classify_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    action = pl.col("action")
    prefix = action.str.extract(r"^([^.]+)\.", 1)
    verb = action.str.extract(r"\.(.+)$", 1).fill_null("")
    account = (
        (prefix == "user")
        | ((prefix == "auth") & verb.is_in(_ACCOUNT_AUTH))
        | verb.str.contains(r"(^|_)(role|member|permission)(_|$)")
    )
    entity = verb.str.contains(r"(^|_)(created|updated|deleted)$") & pl.col("_has_resource")
    cls = (
        pl.when(account)
        .then(3001)
        .when(prefix == "auth")
        .then(3002)
        .when(entity)
        .then(3004)
        .otherwise(6003)
    )
    api: pl.Expr = pl.lit(99)
    for pattern, api_activity in reversed(_API_VERBS):
        api = pl.when(verb.str.contains(pattern)).then(api_activity).otherwise(api)
    entity_activity = (
        pl.when(verb.str.ends_with("created"))
        .then(1)
        .when(verb.str.ends_with("updated"))
        .then(3)
        .when(verb.str.ends_with("deleted"))
        .then(4)
        .otherwise(99)
    )
    activity = (
        pl.when(pl.col("_class") == 3001)
        .then(verb.replace_strict(_VERBS[3001], default=99, return_dtype=pl.Int64))
        .when(pl.col("_class") == 3002)
        .then(verb.replace_strict(_VERBS[3002], default=99, return_dtype=pl.Int64))
        .when(pl.col("_class") == 3004)
        .then(entity_activity)
        .otherwise(api)
    )
    return (
        pairs.with_columns(cls.cast(pl.Int64).alias("_class"))
        .with_columns(activity.cast(pl.Int64).alias("_activity"))
        .select("action", "_has_resource", "_class", "_activity")
    )


def _lookup(expr: pl.Expr, table: Mapping[int, str]) -> pl.Expr:
    return expr.replace_strict(dict(table), default=None, return_dtype=pl.Utf8)


def _actor_user() -> Tree:
    kind = pl.col("actor_type")
    return {
        "uid": ("s", pl.col("actor_user_id")),
        "name": ("s", pl.coalesce(pl.col("actor_email"), pl.col("actor_user_id"), kind)),
        "email_addr": ("s", pl.col("actor_email")),
        "type_id": ("i", kind.replace_strict(_USER_TYPE_IDS, default=0, return_dtype=pl.Int64)),
        "type": ("t", kind.replace_strict(_USER_TYPES, default=None, return_dtype=pl.Utf8)),
    }


def _tree(cls: int) -> Tree:
    """The event of one class as a tree of column expressions."""
    name, category_uid, category_name, _ = CLASSES[cls]
    activity = pl.col("_activity")
    type_uid = pl.lit(cls * 100) + activity
    failed = pl.col("result") == "failure"
    severity_id = pl.when(failed).then(2).otherwise(1)
    status_id = (
        pl.when(pl.col("result") == "success")
        .then(1)
        .when(failed)
        .then(2)
        .when(pl.col("result").is_null())
        .then(0)
        .otherwise(99)
    )
    status = (
        pl.when(status_id == 1)
        .then(pl.lit("Success"))
        .when(status_id == 2)
        .then(pl.lit("Failure"))
        .when(status_id == 0)
        .then(pl.lit("Unknown"))
        .otherwise(pl.col("result").str.to_titlecase())
    )
    activity_name = _lookup(activity, _ACTIVITIES[cls])
    product = _product()
    ip = pl.col("ip_address")
    tree: Tree = {
        "activity_id": ("i", activity),
        "activity_name": ("t", activity_name),
        "category_uid": ("c", category_uid),
        "category_name": ("c", category_name),
        "class_uid": ("c", cls),
        "class_name": ("c", name),
        "type_uid": ("i", type_uid),
        "type_name": ("t", pl.lit(f"{name}: ") + activity_name),
        "time": ("i", pl.col("timestamp").dt.epoch("ms")),
        "severity_id": ("i", severity_id),
        "severity": ("t", _lookup(severity_id, _SEVERITY)),
        "status_id": ("i", status_id),
        "status": ("t", status),
        "message": ("t", pl.col("action")),
        "metadata": {
            "version": ("c", OCSF_VERSION),
            "product": {k: ("c", v) for k, v in product.items()},
            "uid": ("t", pl.col("audit_id")),
            "tenant_uid": ("t", pl.col("organization_id")),
            "log_name": ("c", "audit_trail"),
            "original_time": ("t", pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")),
            "sequence": ("i", pl.col("seq")),
        },
        "actor": {"user": _actor_user()},
        "src_endpoint": {"ip": ("t", ip)},
        "http_request": {"user_agent": ("s", pl.col("user_agent"))},
    }
    if cls == 3002:
        tree["user"] = _actor_user()
        tree["service"] = {
            "uid": ("t", pl.coalesce(pl.col("application_id"), pl.col("organization_id")))
        }
        tree["status_detail"] = (
            "s",
            pl.col("details").str.json_path_match("$.reason").cast(pl.Utf8),
        )
        tree["is_mfa"] = ("b", pl.col("details").str.json_path_match("$.mfa") == "true")
    elif cls == 3001:
        target = pl.col("resource_type") == "user"
        actor_name = pl.coalesce(
            pl.col("actor_email"), pl.col("actor_user_id"), pl.col("actor_type")
        )
        tree["user"] = {
            "uid": ("s", pl.when(target).then(pl.col("resource_id")).otherwise("actor_user_id")),
            "name": (
                "s",
                pl.when(target)
                .then(pl.coalesce(pl.col("resource_name"), pl.col("resource_id")))
                .otherwise(actor_name),
            ),
            "email_addr": (
                "s",
                pl.when(target)
                .then(
                    pl.when(pl.col("resource_name").str.contains("@")).then(pl.col("resource_name"))
                )
                .otherwise(pl.col("actor_email")),
            ),
        }
    elif cls == 3004:
        tree["entity"] = {
            "uid": ("s", pl.col("resource_id")),
            "name": ("s", pl.col("resource_name")),
            "type": ("s", pl.col("resource_type")),
        }
    else:
        tree["api"] = {"operation": ("t", pl.col("action"))}
        tree["src_endpoint"] = {
            "ip": ("t", ip),
            "name": ("t", pl.when(ip.is_null()).then(pl.lit("unknown"))),
        }
        tree["resources"] = (
            "l",
            {
                "uid": ("s", pl.col("resource_id")),
                "name": ("s", pl.col("resource_name")),
                "type": ("s", pl.col("resource_type")),
            },
        )
    tree["unmapped"] = {
        "category": ("t", pl.col("category")),
        "application_id": ("t", pl.col("application_id")),
        "result": ("t", pl.col("result")),
        "entry_hash": ("t", pl.col("entry_hash")),
        "details": ("j", pl.col("details")),
    }
    return tree


def _json_str(expr: pl.Expr) -> pl.Expr:
    """JSON text of a string expression (quoted and escaped), null stays null."""
    encoded = pl.struct(expr.cast(pl.Utf8).alias("v")).struct.json_encode()  # {"v":"…"}
    return pl.when(expr.is_null()).then(None).otherwise(encoded.str.slice(5).str.head(-1))


def _json(node: Node) -> pl.Expr:
    """JSON text of a leaf (absent values are null, and left out of their object)."""
    assert isinstance(node, tuple)
    kind, value = node
    if kind == "c":
        return pl.lit(orjson.dumps(value).decode())
    expr: pl.Expr = value
    if kind == "s":
        return _json_str(expr)
    if kind == "t":
        return pl.concat_str([pl.lit('"'), expr.cast(pl.Utf8), pl.lit('"')])
    if kind == "i":
        return expr.cast(pl.Int64).cast(pl.Utf8)
    if kind == "b":
        return pl.when(expr).then(pl.lit("true"))
    return expr  # "j"


def _json_frame(frame: pl.DataFrame, tree: Tree) -> pl.Series:
    """The JSON text of ``tree`` for every row of ``frame``.

    Objects are built innermost first, each into a column of its own, so every value is
    computed once (an expression that used a nested object twice — once to test it for
    emptiness, once to wrap it — would compute its subtree twice per level).
    """
    columns: list[list[pl.Expr]] = []

    def build(node: Tree, name: str, depth: int) -> str:
        members = []
        for key, child in node.items():
            if isinstance(child, dict):
                text = pl.col(build(child, f"{name}.{key}", depth + 1))
            elif child[0] == "l":
                obj = pl.col(build(child[1], f"{name}.{key}", depth + 1))
                text = pl.lit("[") + obj + pl.lit("]")
            else:
                text = _json(child)
            members.append(pl.concat_str([pl.lit(f'"{key}":'), text]))  # null stays null
        inner = pl.concat_str(members, separator=",", ignore_nulls=True)
        while len(columns) <= depth:
            columns.append([])
        columns[depth].append(
            pl.when(inner == "").then(None).otherwise(pl.lit("{") + inner + pl.lit("}")).alias(name)
        )
        return name

    top = build(tree, "_json", 0)
    lazy = frame.lazy()
    for level in reversed(columns):
        lazy = lazy.with_columns(level)
    out: pl.Series = lazy.select(top).collect().to_series()
    return out


def _struct(node: Node) -> pl.Expr:
    """A typed (struct) column of a tree node, for Parquet."""
    if isinstance(node, dict):
        return pl.struct([_struct(child).alias(key) for key, child in node.items()])
    kind, value = node
    if kind == "l":
        present = pl.any_horizontal([leaf[1].is_not_null() for leaf in value.values()])
        return pl.when(present).then(pl.concat_list([_struct(value)]))
    if kind == "c":
        return pl.lit(value, pl.Int64 if isinstance(value, int) else pl.Utf8)
    expr: pl.Expr = value
    if kind == "i":
        return expr.cast(pl.Int64)
    if kind == "b":
        return pl.when(expr).then(pl.lit(True))
    return expr.cast(pl.Utf8)  # "s", "t", "j"


def ocsf_json_lines(frame: pl.DataFrame) -> list[str]:
    """One OCSF event (JSON text) per row of an entries frame, in the frame's order.

    The frame has the columns of :data:`auditlens.frames.COLUMNS` (``store.query``,
    ``store.batches``).
    """
    if frame.is_empty():
        return []
    classified = _classify(frame).with_row_index("_row")
    parts = []
    for cls in CLASSES:
        sub = classified.filter(pl.col("_class") == cls)
        if sub.height:
            parts.append(sub.select("_row").with_columns(_json_frame(sub, _tree(cls)).alias("j")))
    return pl.concat(parts).sort("_row")["j"].to_list()


def ocsf_tables(frame: pl.DataFrame) -> dict[int, pa.Table]:
    """The OCSF events of an entries frame as Arrow tables (nested structs), per class_uid."""
    classified = _classify(frame)
    out: dict[int, pa.Table] = {}
    for cls in CLASSES:
        sub = classified.filter(pl.col("_class") == cls)
        if sub.height:
            tree = _tree(cls)
            out[cls] = sub.select(
                [_struct(node).alias(key) for key, node in tree.items()]
            ).to_arrow()
    return out


def write_ocsf_jsonl(
    store: Store,
    sink: IO[bytes],
    where: Any,
    filters: Mapping[str, Any],
    batch_size: int,
    tally: Callable[[pl.DataFrame], None],
) -> None:
    """Stream matching entries to ``sink`` as OCSF JSON Lines (``export(format="ocsf")``);
    ``tally`` sees every batch (the export's counts and time range).

    Example:
        >>> import auditlens as al, io
        >>> store = al.open_store("sqlite://")
        >>> _ = store.append({"actor": {"email": "jane@company.com", "type": "user"},
        ...     "action": "webhook.deleted", "result": "success",
        ...     "resource": {"type": "webhook", "id": "wh-1", "name": "Hook"},
        ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"})
        >>> sink = io.BytesIO()
        >>> write_ocsf_jsonl(store, sink, None, {}, 1000, lambda batch: None)
        >>> orjson.loads(sink.getvalue())["type_uid"]
        300404
    """
    for rb in store.batches(where, order="asc", batch_size=batch_size, **filters):
        batch = pl.from_arrow(rb)
        assert isinstance(batch, pl.DataFrame)
        if batch.is_empty():
            continue
        tally(batch)
        sink.write(("\n".join(ocsf_json_lines(batch)) + "\n").encode())


def export_ocsf_parquet(
    store: Store,
    out: str | os.PathLike[str],
    *,
    where: Any = None,
    record: bool = True,
    manifest: bool = True,
    batch_size: int = 50_000,
    **filters: Unpack[FilterKeywords],
) -> ExportResult:
    """Export matching entries as OCSF Parquet: a folder ``out`` with one file per class.

    The result's ``fields`` are the files written, ``sha256`` is the manifest's (which
    holds each file's), ``bytes`` the files' total size.
    Files are ``<class>.parquet`` (``authentication.parquet``, ``account_change.parquet``,
    ``entity_management.parquet``, ``api_activity.parquet``) for the classes present, plus
    ``manifest.json`` (rows and SHA-256 per file). The folder is written under a temporary
    name and published once complete (and, with ``record``, once the export is recorded
    as an ``audit_log.exported`` entry per organization).

    Example:
        >>> import auditlens as al, tempfile, pathlib
        >>> store = al.open_store("sqlite://")
        >>> _ = store.append({"actor": {"email": "jane@company.com", "type": "user"},
        ...     "action": "auth.login", "result": "success",
        ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"})
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "ocsf.parquet"
        >>> res = export_ocsf_parquet(store, out, record=False)
        >>> sorted(p.name for p in out.iterdir()), res.rows
        (['authentication.parquet', 'manifest.json'], 1)
    """

    path = Path(out)
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportFormatError(
            f"OCSF Parquet writes a folder (one file per class): {path} exists and is not an "
            "empty folder; choose a new name"
        )
    if record:
        check_review(store, "audit_log.exported", _review(where, filters, {}), path.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    tmp.mkdir()
    writers: dict[int, Any] = {}
    schemas: dict[int, pa.Schema] = {}
    rows: dict[int, int] = {}
    orgs: dict[str, int] = {}
    span: list[Any] = []
    try:
        try:
            for rb in store.batches(where, order="asc", batch_size=batch_size, **filters):
                batch = pl.from_arrow(rb)
                assert isinstance(batch, pl.DataFrame)
                if batch.is_empty():
                    continue
                for org, n in batch.group_by("organization_id").len().iter_rows():
                    orgs[org] = orgs.get(org, 0) + n
                span.extend((batch["timestamp"].min(), batch["timestamp"].max()))
                for cls, table in ocsf_tables(batch).items():
                    if cls not in writers:
                        schemas[cls] = table.schema
                        writers[cls] = pq.ParquetWriter(
                            tmp / f"{CLASSES[cls][3]}.parquet", table.schema, compression="zstd"
                        )
                    writers[cls].write_table(table.cast(schemas[cls]))
                    rows[cls] = rows.get(cls, 0) + table.num_rows
        finally:
            for w in writers.values():
                w.close()
        files = {f"{CLASSES[c][3]}.parquet": n for c, n in sorted(rows.items())}
        digests = {name: hashlib.sha256((tmp / name).read_bytes()).hexdigest() for name in files}
        mpath = None
        if manifest:
            mpath = path / "manifest.json"
            (tmp / "manifest.json").write_text(
                json.dumps(
                    {
                        "format": "ocsf-parquet",
                        "ocsf_version": OCSF_VERSION,
                        "query": where if isinstance(where, str) else None,
                        "filters": {k: str(v) for k, v in filters.items() if v is not None} or None,
                        "rows": sum(rows.values()),
                        "files": {n: {"rows": files[n], "sha256": digests[n]} for n in files},
                        "organizations": orgs,
                        "created_at_ms": int(time.time() * 1000),
                    },
                    indent=2,
                )
            )
        if record:
            counts = dict(orgs)
            org_filter = filters.get("organization_id")
            if not counts and isinstance(org_filter, str):
                counts = {org_filter.lower(): 0}
            record_review(
                store, "audit_log.exported", counts, _review(where, filters, digests), path.name
            )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        path.rmdir()
    os.replace(tmp, path)
    stamp = "%Y-%m-%dT%H:%M:%S.%f"
    return ExportResult(
        path,
        "ocsf",
        sum(rows.values()),
        sum((path / name).stat().st_size for name in files),
        hashlib.sha256(mpath.read_bytes()).hexdigest() if mpath else "",
        list(files),
        min(span).strftime(stamp)[:-3] + "Z" if span else None,
        max(span).strftime(stamp)[:-3] + "Z" if span else None,
        orgs,
        mpath,
    )


def _review(where: Any, filters: Mapping[str, Any], digests: dict[str, str]) -> dict[str, Any]:
    return {
        "format": "ocsf-parquet",
        "fields": [],
        "query": where if isinstance(where, str) else None,
        "filters": {k: str(v) for k, v in filters.items() if v is not None},
        "sha256": digests,
    }


def findings_to_ocsf(findings: pl.DataFrame) -> list[dict[str, Any]]:
    """Detector findings (the findings frame) as OCSF Detection Finding (2004) events.

    Each finding is built and checked by ``py_ocsf_models``' ``DetectionFinding``
    (OCSF 1.5) and returned as its JSON form without absent values: ``finding_info``
    (uid = finding_id, title = summary, analytic = the detector, related_events = the
    evidence audit_ids), ``severity_id`` from the finding's severity, ``time`` = the
    window end in ms, ``metadata.tenant_uid`` = the organization.

    Example:
        >>> from auditlens.detect.findings import empty_findings
        >>> findings_to_ocsf(empty_findings())
        []
    """
    try:
        from py_ocsf_models.events.findings.detection_finding import (
            DetectionFinding,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
        )
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(
            "OCSF Detection Findings need py-ocsf-models: pip install 'auditlens[ocsf]'"
        ) from exc
    from py_ocsf_models.events.findings.detection_finding_type_id import (
        DetectionFindingTypeID,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )
    from py_ocsf_models.events.findings.severity_id import (
        SeverityID,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )
    from py_ocsf_models.objects.analytic import (
        Analytic,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )
    from py_ocsf_models.objects.finding_info import (
        FindingInformation,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )
    from py_ocsf_models.objects.metadata import (
        Metadata,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )
    from py_ocsf_models.objects.product import (
        Product,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )
    from py_ocsf_models.objects.related_event import (
        RelatedEvent,  # lazy: py-ocsf-models is the optional extra auditlens[ocsf]
    )

    product = Product(**_product())
    out: list[dict[str, Any]] = []
    for r in findings.iter_rows(named=True):
        start = int(r["window_start"].timestamp() * 1000)
        end = int(r["window_end"].timestamp() * 1000)
        severity_id = _FINDING_SEVERITY.get(r["severity"], 0)
        try:
            details = orjson.loads(r["details"]) if r["details"] else {}
        except orjson.JSONDecodeError:
            details = r["details"]
        event = DetectionFinding(
            activity_id=1,
            activity_name="Create",
            finding_info=FindingInformation(
                uid=r["finding_id"],
                title=r["summary"],
                desc=r["summary"],
                analytic=Analytic(uid=r["detector"], name=r["detector"], type_id=1, type="Rule"),
                first_seen_time=start,
                last_seen_time=end,
                related_events=[RelatedEvent(uid=a) for a in r["audit_ids"] or []],
                types=[r["detector"]],
            ),
            metadata=Metadata(
                product=product,
                uid=r["finding_id"],
                tenant_uid=r["organization_id"],
                log_name="findings",
                version=OCSF_VERSION,
            ),
            severity_id=SeverityID(severity_id),
            severity=_SEVERITY.get(severity_id, "Unknown"),
            status_id=1,
            status="New",
            time=end,
            start_time=start,
            end_time=end,
            count=r["count"],
            message=r["summary"],
            type_uid=DetectionFindingTypeID.Create,
            type_name="Detection Finding: Create",
            unmapped={
                "subject_type": r["subject_type"],
                "subject": r["subject"],
                "details": details,
            },
        )
        out.append(event.model_dump(mode="json", exclude_none=True))
    return out
