"""``verify_lake``: the lake checked from its files alone (no store needed).

For each organization: every current file exists, is Parquet and has the SHA-256 its
manifest records (``file_missing``, ``file_unreadable``, ``file_changed``, with the file's
seq range); the rows run from the first synced seq to the last without gap or repeat
(``missing``, ``inserted``); every content hash and link hash is recomputed column-wise from
the Parquet values, and each ``prev_hash`` is the previous row's ``entry_hash``
(``modified``, naming the seq and audit id); the last entry hash is the one the manifests
record (``truncated``). The manifests form a chain (each records the SHA-256 of the one
before) and each sync must continue the previous one (``manifest``). The newest signed
checkpoint a manifest carries is checked for its signature (with the keys you give) and for
its Merkle root, recomputed over the lake's entry hashes (``bad_signature``,
``checkpoint_mismatch``); with keys, an organization whose lake range no checkpoint signed
by them covers is ``no_checkpoint``. A manifest that records a range retention archived
(``"kind": "retention"``, see :mod:`auditlens.retention`) is checked against the lake's
rows: seq range, rows, boundary hashes and the Merkle root of the range (``archive``).

The result is the store verifier's :class:`~auditlens.chain.verify.VerificationReport`.

Example:
    >>> import tempfile
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.login",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "result": "success"}] * 3)
    >>> lake = tempfile.mkdtemp()
    >>> _ = al.sync_lake(store, lake)
    >>> report = verify_lake(lake)
    >>> report.ok, report.checked
    (True, 3)
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from typing import Any

import polars as pl
import polars_hash  # noqa: F401 - registers the .chash namespace
import pyarrow as pa
import pyarrow.compute as pc

from auditlens.chain.canonical import content_hash_expr
from auditlens.chain.notes import VerifierKey, parse_checkpoint, parse_note
from auditlens.chain.verify import OrganizationResult, Problem, VerificationReport
from auditlens.errors import ArchiveError
from auditlens.lake.layout import LakeState, OrgHead, read_state
from auditlens.merkle import MerkleTree, leaf_hash

__all__ = ["verify_lake"]

_MAX_ROW_PROBLEMS = 1000


def verify_lake(
    path: str | os.PathLike[str], *, keys: list[VerifierKey] | None = None
) -> VerificationReport:
    """Verify the lake at ``path`` (a folder or an ``s3://`` URL): files, seq continuity,
    every hash, checkpoints.

    Args:
        keys: verifier keys you trust for the checkpoints the manifests carry. Without
            them, signatures are not checked (``keys_source == "none"``), only the roots.

    Raises:
        ArchiveError: no manifest at ``path`` (not a lake, or never synced), or a manifest
            is not readable JSON.
    """
    started = time.time()
    t0 = time.perf_counter()
    state = read_state(path)
    if not state.manifests:
        raise ArchiveError(f"{path}: no lake manifest (manifests/sync-*.json): not a lake?")
    results = []
    records = _retention_records(state)
    orgs = sorted(set(state.heads) | {o for o, _ in state.problems if o} | set(records))
    for org in orgs:
        res = OrganizationResult(org)
        for o, detail in state.problems:
            if o == org:
                res.problems.append(Problem(org, None, None, "manifest", None, None, detail))
        head = state.heads.get(org)
        frame = _verify_org(state, org, head, res, keys) if head is not None else None
        _check_records(org, records.get(org, []), frame, res)
        results.append(res)
    general = [d for o, d in state.problems if not o]
    if general:
        res = OrganizationResult("(manifests)")
        res.problems.extend(Problem("", None, None, "manifest", None, None, d) for d in general)
        results.append(res)
    source = "given" if keys is not None else "none"
    return VerificationReport(results, started, time.perf_counter() - t0, source)


def _read_files(state: LakeState, org: str, res: OrganizationResult) -> pl.DataFrame | None:
    where = state.where
    frames = []
    for f in state.files_of(org):
        where_ = f"{f.path} (seq {f.first_seq}–{f.last_seq}, sync {f.sync})"
        try:
            data = where.read(f.path)
        except FileNotFoundError:
            res.problems.append(
                Problem(
                    org, f.first_seq, None, "file_missing", f.sha256, None, f"{where_}: missing"
                )
            )
            continue
        found = hashlib.sha256(data).hexdigest()  # one read: hashed, then decoded
        if found != f.sha256:
            res.problems.append(
                Problem(
                    org,
                    f.first_seq,
                    None,
                    "file_changed",
                    f.sha256,
                    found,
                    f"{where_}: SHA-256 differs from the manifest",
                )
            )
        try:
            frames.append(pl.read_parquet(io.BytesIO(data)))
        except (OSError, pl.exceptions.PolarsError) as exc:
            detail = f"{where_}: not readable as Parquet ({type(exc).__name__})"
            res.problems.append(
                Problem(org, f.first_seq, None, "file_unreadable", None, None, detail)
            )
    if not frames:
        return None
    return pl.concat(frames, how="vertical_relaxed").sort("seq")


def _verify_org(
    state: LakeState,
    org: str,
    head: OrgHead,
    res: OrganizationResult,
    keys: list[VerifierKey] | None,
) -> pl.DataFrame:
    frame = _read_files(state, org, res)
    if frame is None:
        frame = pl.DataFrame()
    res.entries = frame.height
    res.first_seq, res.last_seq = head.first_seq, head.last_seq
    if frame.height:
        _check_rows(org, head, frame, res)
    elif head.last_seq >= head.first_seq:
        detail = f"no readable file holds seq {head.first_seq}–{head.last_seq}"
        res.problems.append(Problem(org, head.first_seq, None, "missing", None, None, detail))
    _check_checkpoint(org, head, frame, res, keys)
    return frame


def _retention_records(state: LakeState) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """The manifests that record a range retention archived (and removed from the store)."""
    out: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for number, meta, _sha in state.manifests:
        if meta.get("kind") == "retention":
            out.setdefault(str(meta.get("organization_id")), []).append((number, meta))
    return out


def _check_records(
    org: str,
    records: list[tuple[int, dict[str, Any]]],
    frame: pl.DataFrame | None,
    res: OrganizationResult,
) -> None:
    """Each retention record (seq range, rows, boundary hashes, Merkle root of the range's
    leaves) against the lake's rows: an edited record is ``archive`` at its first seq."""
    for number, meta in records:
        name = f"sync-{number:06d}.json"
        first, through = meta.get("first_seq"), meta.get("through_seq")  # shown as recorded
        found: str | None = None
        try:
            first, through = int(meta["first_seq"]), int(meta["through_seq"])
            part = (
                frame.filter(pl.col("seq").is_between(first, through)).sort("seq")
                if frame is not None and frame.height
                else pl.DataFrame({"seq": [], "prev_hash": [], "entry_hash": []})
            )
            hashes = [str(h) for h in part["entry_hash"].to_list()]
            found = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in hashes]).root().hex()
            holds = (
                part["seq"].to_list() == list(range(first, through + 1))
                and int(meta["rows"]) == part.height
                and part["prev_hash"][0] == meta["first_prev_hash"]
                and hashes[-1] == meta["last_entry_hash"]
                and found == meta["merkle_root"]
            )
        except (KeyError, TypeError, ValueError, IndexError):
            holds = False
        if not holds:
            detail = (
                f"{name}: the retention record of seq {first}..{through} does not match the "
                "lake's entries (seq range, rows, boundary hashes or Merkle root)"
            )
            res.problems.append(
                Problem(
                    org,
                    first if isinstance(first, int) else None,
                    None,
                    "archive",
                    meta.get("merkle_root"),
                    found,
                    detail,
                )
            )


def _check_rows(org: str, head: OrgHead, frame: pl.DataFrame, res: OrganizationResult) -> None:
    problems: list[Problem] = []
    expected = pl.DataFrame({"seq": pl.int_range(head.first_seq, head.last_seq + 1, eager=True)})
    for (seq,) in expected.join(frame.select("seq"), on="seq", how="anti").head(50).iter_rows():
        problems.append(Problem(org, seq, None, "missing", None, None, "no row has this seq"))
    dup = frame.filter(pl.col("seq").is_duplicated()).unique("seq", maintain_order=True)
    for seq, aid in dup.select("seq", "audit_id").head(50).iter_rows():
        problems.append(
            Problem(org, seq, aid, "inserted", None, None, "several rows have this seq")
        )
    outside = frame.filter((pl.col("seq") < head.first_seq) | (pl.col("seq") > head.last_seq))
    for seq, aid in outside.select("seq", "audit_id").head(50).iter_rows():
        problems.append(
            Problem(org, seq, aid, "inserted", None, None, "outside the seq range synced")
        )
    rows = frame.with_columns(
        pl.lit(org).alias("organization_id"), pl.col("timestamp").dt.epoch("ms").alias("ts")
    )
    content = rows.select(content_hash_expr().str.decode("hex")).to_series().to_arrow()
    prev = rows.select(pl.col("prev_hash").str.decode("hex", strict=False)).to_series().to_arrow()
    joined = pc.binary_join_element_wise(
        prev.cast(pa.binary()), content.cast(pa.binary()), pa.scalar(b"", pa.binary())
    )
    link = pl.DataFrame(pa.table({"j": joined})).select(pl.col("j").chash.sha2_256()).to_series()  # type: ignore[attr-defined]
    checked = rows.with_columns(
        link.alias("_link"),
        pl.col("entry_hash").shift(1).fill_null(head.first_prev_hash).alias("_expected_prev"),
    )
    bad = checked.filter(
        (pl.col("_link") != pl.col("entry_hash"))
        | pl.col("_link").is_null()
        | (pl.col("prev_hash") != pl.col("_expected_prev"))
    )
    for seq, aid, stored, computed, p, ep in (
        bad.select("seq", "audit_id", "entry_hash", "_link", "prev_hash", "_expected_prev")
        .head(_MAX_ROW_PROBLEMS)
        .iter_rows()
    ):
        if stored != computed:
            detail = "the entry's values do not hash to its entry_hash (content changed)"
            problems.append(Problem(org, seq, aid, "modified", stored, computed, detail))
        else:
            detail = "prev_hash is not the previous entry's entry_hash"
            problems.append(Problem(org, seq, aid, "modified", ep, p, detail))
    last = str(frame["entry_hash"][-1])
    if int(frame["seq"][-1]) == head.last_seq and last != head.last_entry_hash:
        problems.append(
            Problem(
                org,
                head.last_seq,
                None,
                "truncated",
                head.last_entry_hash,
                last,
                "the last entry hash differs from the manifest",
            )
        )
    res.problems.extend(problems)
    res.omitted_problems = max(0, bad.height - _MAX_ROW_PROBLEMS)


def _check_checkpoint(
    org: str,
    head: OrgHead,
    frame: pl.DataFrame,
    res: OrganizationResult,
    keys: list[VerifierKey] | None,
) -> None:
    if head.checkpoint is None:
        if keys is not None and head.last_seq >= head.first_seq:
            res.problems.append(
                Problem(
                    org, None, None, "no_checkpoint", None, None,
                    "no manifest carries a checkpoint for this organization",
                )
            )  # fmt: skip
        return
    res.checkpoints = 1
    try:
        note = parse_note(head.checkpoint)
        cp = parse_checkpoint(note.body)
    except ValueError as exc:
        res.problems.append(
            Problem(org, None, None, "bad_signature", None, None, f"unreadable checkpoint: {exc}")
        )
        return
    res.latest_checkpoint_size = cp.size
    res.latest_checkpoint_root = cp.root.hex()
    res.latest_checkpoint_ms = cp.timestamp_ms
    if keys is not None:
        signed = note.verified_by(keys)
        res.signed_by = sorted(set(signed))
        if not signed or note.failed_known(keys):
            res.problems.append(
                Problem(
                    org, None, None, "bad_signature", None, None,
                    f"checkpoint of size {cp.size} (sync {head.checkpoint_sync}): no trusted "
                    "signature verifies",
                )
            )  # fmt: skip
    if head.first_seq != 1:
        return  # the lake starts after retention: the tree's first leaves are not here
    hashes = frame.filter(pl.col("seq") <= cp.size).sort("seq")["entry_hash"].to_list()
    try:
        root = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in hashes]).root()
    except (TypeError, ValueError):
        root = b""
    if len(hashes) != cp.size or root != cp.root:
        res.problems.append(
            Problem(
                org, None, None, "checkpoint_mismatch", cp.root.hex(), root.hex(),
                f"checkpoint of size {cp.size}: the root over the lake's entries differs",
            )
        )  # fmt: skip
