"""``ingest_records`` given a file's records as one ``RowBlock`` (how the import's reader
processes return them) does exactly what it does given them one ``SourceRecord`` each:
same entries, seq, hashes, duplicates, rejects (file:line, reason, raw), batches, and the
same report when the database refuses a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import auditlens as al
from auditlens.chain.canonical import content_tail
from auditlens.errors import IngestAbortedError, IngestError
from auditlens.ingest import RowBlock, SourceRecord, Validated, ingest_records, validate
from auditlens.schema import ROW_FIELDS
from tests.helpers import ORG, ORG2, make_entry


def _records(files: int = 3, per: int = 12) -> list[SourceRecord]:
    """Validated entries of two organizations, rejects in between, a resent entry (same
    content: already stored) and a changed one (a conflict)."""
    recs: list[SourceRecord] = []
    first: dict[str, Any] = {}
    for f in range(files):
        name = f"trail-{f}.json"
        for i in range(per):
            line = 3 + 7 * i
            raw = f"raw {f}:{i}".encode()
            if i % 5 == 4:
                recs.append(SourceRecord(name, line, IngestError(f"bad record {f}:{i}"), raw))
                continue
            entry = make_entry(organization_id=ORG2 if i % 3 else ORG, details={"f": f, "i": i})
            if f == 1 and i == 2:
                entry = first  # resent as it was
            elif f == 2 and i == 6:
                entry = {**first, "result": "failure"}  # resent changed
            elif f == 0 and i == 1:
                first = entry
            value = validate(entry)
            assert isinstance(value, Validated)
            recs.append(SourceRecord(name, line, value, raw))
    return recs


def _blocks(recs: list[SourceRecord]) -> list[RowBlock]:
    blocks: dict[str, RowBlock] = {}
    for rec in recs:
        assert rec.file is not None
        block = blocks.setdefault(rec.file, RowBlock(rec.file, [], [], [], [], []))
        if isinstance(rec.value, Validated):
            block.lines.append(rec.line)
            block.raws.append(rec.raw)
            block.rows.append(tuple(rec.value.row[f] for f in ROW_FIELDS))
            block.tails.append(content_tail(rec.value.row))
        else:
            block.rejected.append((rec.line, str(rec.value), rec.raw))
    return list(blocks.values())


def _outcome(db: Path, records: list[Any], batch_size: int) -> tuple[Any, ...]:
    done: list[int] = []
    with al.open_store(str(db)) as store:
        report = ingest_records(
            store, records, source="t", batch_size=batch_size, progress=done.append
        )
        chain = [
            (e["audit_id"], e["organization_id"], e["seq"], e["prev_hash"], e["entry_hash"])
            for e in store.entries(limit=None, order="asc")
        ]
        assert al.verify(store).ok
    rejects = [(r.file, r.line, r.reason, r.raw) for r in report.rejected]
    return report.read, report.appended, report.duplicates, rejects, sum(done), chain


@pytest.mark.parametrize("batch_size", [1, 5, 7, 100])
def test_blocks_ingest_as_their_records_do(tmp_path: Path, batch_size: int) -> None:
    recs = _records()
    one = _outcome(tmp_path / "records.db", recs, batch_size)
    blocks = _outcome(tmp_path / "blocks.db", _blocks(recs), batch_size)
    assert blocks == one
    assert one[1:3] == (28, 1) and len(one[3]) == 6 + 1  # 6 bad records, 1 conflict
    conflict = [r for r in one[3] if "already exists with different content" in r[2]]
    assert [(file, line) for file, line, _, _ in conflict] == [("trail-2.json", 45)]


def test_a_refused_batch_is_reported_as_with_records(tmp_path: Path) -> None:
    recs = _records()
    # the first row of the second file, in the third batch of 4; the fourth fills before
    # the second file's last reject is read
    bad = recs[12]
    assert isinstance(bad.value, Validated)
    recs[12] = bad._replace(value=Validated({**bad.value.row, "action": None}))  # NOT NULL
    errors = []
    for name, records in (("records", recs), ("blocks", _blocks(recs))):
        with pytest.raises(IngestAbortedError) as err:
            _outcome(tmp_path / f"{name}.db", records, 4)
        with al.open_store(str(tmp_path / f"{name}.db")) as store:
            kept = store.count()
        e = err.value
        errors.append((str(e), e.appended, e.rejected, e.rejected_lines, kept))
    assert errors[1] == errors[0]
    assert errors[0][1] == errors[0][4] == 8  # the two batches before it stay
    assert [line for line, _ in errors[0][3]] == [31, 66, 31]  # not the second file's 66
