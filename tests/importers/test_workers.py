"""Imports read in worker processes give exactly what reading in the calling process gives:
entries, seq order, hashes, rejects with file:line, errors at the same place."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import auditlens as al
from auditlens.errors import IngestAbortedError, IngestError
from auditlens.importers import ImportReport, import_files, workers

DATA = Path(__file__).parent / "data" / "cloudtrail"
_THIRD = "111122223333_CloudTrail_002.json"


def _record(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventTime": f"2024-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "eventID": f"e-{i}",
        "recipientAccountId": "111122223333" if i % 3 else "444455556666",
        "sourceIPAddress": f"198.51.100.{i % 256}" if i % 4 else "AWS Internal",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/u{i % 7}"},
        "requestParameters": {"bucketName": "b", "key": f"k{i}"},
        **extra,
    }


def _folder(root: Path, files: int = 6, per: int = 40) -> Path:
    """Gzipped and plain CloudTrail files with a bad record, a non-object and a repeat."""
    folder = root / "AWSLogs"
    folder.mkdir()
    for f in range(files):
        recs: list[Any] = [_record(f * per + i) for i in range(per)]
        if f == 2 and per > 11:
            recs[5] = {k: v for k, v in recs[5].items() if k != "eventTime"}  # rejected
            recs[9] = [1, 2]  # not an object
            recs[11] = _record(3, errorCode="AccessDenied")  # e-3 again, changed: a conflict
        text = json.dumps({"Records": recs}, indent=1).encode()
        name = f"111122223333_CloudTrail_{f:03d}.json"
        if f % 2:
            (folder / f"{name}.gz").write_bytes(gzip.compress(text))
        else:
            (folder / name).write_bytes(text)
    return folder


def _run(db: Path, paths: list[Path], n: int, **kw: Any) -> tuple[ImportReport, list[Any]]:
    with al.open_store(str(db)) as store:
        report = import_files(store, "cloudtrail", paths, workers=n, **kw)
        rows = [
            (e["audit_id"], e["organization_id"], e["seq"], e["prev_hash"], e["entry_hash"])
            for e in store.entries(limit=None)
        ]
        assert al.verify(store).ok
    return report, rows


def _summary(r: ImportReport) -> tuple[Any, ...]:
    rejects = [(r.file, r.line, r.reason, r.raw) for r in r.rejected]
    return (r.read, r.appended, r.duplicates, r.files, r.skipped, r.organizations, rejects)


@pytest.mark.parametrize("n", [1, 2])
def test_workers_import_the_same_entries_in_the_same_order(tmp_path: Path, n: int) -> None:
    folder = _folder(tmp_path)
    kw = {"batch_size": 25, "since": "2024-03-01T10:00:02Z"}
    inline, inline_rows = _run(tmp_path / "inline.db", [folder, DATA], 0, **kw)
    pooled, pooled_rows = _run(tmp_path / "pooled.db", [folder, DATA], n, **kw)
    assert pooled_rows == inline_rows  # same ids, organizations, seq and hashes
    assert _summary(pooled) == _summary(inline)
    assert pooled.files == 11 and pooled.skipped > 0
    mine = [(r.line, r.reason) for r in pooled.rejected if r.file == str(folder / _THIRD)]
    assert [line for line, _ in mine] == [88, 155, 176]  # where each record starts
    assert "eventTime is missing" in mine[0][1]
    assert "must be a JSON object" in mine[1][1]
    assert "already exists with different content" in mine[2][1]

    again, again_rows = _run(tmp_path / "pooled.db", [folder, DATA], n, **kw)
    assert (again.appended, again.duplicates) == (0, pooled.appended)  # re-import: a no-op
    assert again_rows == pooled_rows


def test_order_is_stable_across_runs(tmp_path: Path) -> None:
    folder = _folder(tmp_path, files=8, per=25)
    runs = [_run(tmp_path / f"run{i}.db", [folder], 2)[1] for i in range(2)]
    assert runs[0] == runs[1]


def test_an_unreadable_file_stops_the_import_where_it_is_in_the_order(tmp_path: Path) -> None:
    folder = _folder(tmp_path, files=4, per=10)
    (folder / "111122223333_CloudTrail_001.json.gz").write_bytes(b"\x1f\x8b broken")
    results = []
    for n in (0, 2):
        db = tmp_path / f"w{n}.db"
        with pytest.raises(IngestError, match=r"CloudTrail_001\.json\.gz: cannot be read") as err:
            _run(db, [folder], n, batch_size=5)
        with al.open_store(str(db)) as store:
            results.append((str(err.value), store.count()))
    assert results[0] == results[1]
    assert results[1][1] == 10  # the file before it was appended


def test_a_missing_path_is_named_after_the_paths_before_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path, files=3, per=10)
    for n in (0, 2):
        db = tmp_path / f"m{n}.db"
        with pytest.raises(IngestError, match="nope: no such file or folder"):
            _run(db, [folder, tmp_path / "nope"], n, batch_size=5)
        with al.open_store(str(db)) as store:
            assert store.count() == 30


def test_large_files_are_read_in_the_calling_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, files=4, per=20)
    inline, inline_rows = _run(tmp_path / "a.db", [folder], 0)
    monkeypatch.setattr(workers, "POOLED_MAX_BYTES", 5_000)  # the plain files are larger
    pooled, pooled_rows = _run(tmp_path / "b.db", [folder], 2)
    assert (_summary(pooled), pooled_rows) == (_summary(inline), inline_rows)


def _die(*_: Any) -> None:
    os._exit(3)


def test_a_worker_that_dies_is_an_ingest_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, files=2, per=5)
    monkeypatch.setattr(workers, "_read_file", _die)
    with pytest.raises(IngestError, match=r"CloudTrail_000\.json: the reader process stopped"):
        _run(tmp_path / "d.db", [folder], 1)


def test_a_refused_batch_leaves_store_and_chain_as_one_process_does(tmp_path: Path) -> None:
    folder = _folder(tmp_path, files=4, per=10)
    doc = json.loads((folder / "111122223333_CloudTrail_002.json").read_text())
    doc["Records"][3]["requestParameters"]["bucketName"] = "boom"
    (folder / "111122223333_CloudTrail_002.json").write_text(json.dumps(doc, indent=1))
    outcomes = []
    for n in (0, 2):
        db = tmp_path / f"r{n}.db"
        with al.open_store(str(db)) as store, store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_it BEFORE INSERT ON audit_entries WHEN NEW.resource_id "
                "= 'boom' BEGIN SELECT RAISE(ABORT, 'refused boom'); END"
            )
        with pytest.raises(IngestAbortedError) as err:
            _run(db, [folder], n, batch_size=15)
        with al.open_store(str(db)) as store:
            rows = [(e["audit_id"], e["seq"], e["entry_hash"]) for e in store.entries()]
            assert al.verify(store).ok
        outcomes.append((str(err.value), err.value.appended, rows))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][1] == 15 and len(outcomes[1][2]) == 15  # batch 1 stays; batch 2 not


def test_the_handed_over_blocks_are_removed_also_after_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    folder = _folder(tmp_path, files=4, per=10)
    _run(tmp_path / "ok.db", [folder], 2)
    (folder / "111122223333_CloudTrail_003.json.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(IngestError, match="cannot be read"):
        _run(tmp_path / "err.db", [folder], 2)
    assert list(spool.iterdir()) == []


def _no_room(*_: Any, **__: Any) -> Any:
    raise OSError(28, "No space left on device")


def test_blocks_go_through_the_pipe_when_they_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    inline, inline_rows = _run(tmp_path / "inline.db", [folder], 0)
    monkeypatch.setattr(tempfile, "mkstemp", _no_room)  # in the forked workers too
    pooled, pooled_rows = _run(tmp_path / "pooled.db", [folder], 2)
    assert (_summary(pooled), pooled_rows) == (_summary(inline), inline_rows)
