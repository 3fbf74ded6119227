"""Reading vendor files: JSON Lines streamed, documents whole, record lines, gzip by content."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from auditlens.errors import IngestError
from auditlens.importers.entries import iso_ms
from auditlens.importers.files import iter_files, json_records
from auditlens.schema import format_timestamp, parse_timestamp


def _read(path: Path) -> list[tuple[int, object]]:
    return [
        (line, v if isinstance(v, Exception) else v.get("id"))  # type: ignore[union-attr]
        for line, v, _ in json_records(path, ("Records",))
    ]


def test_json_lines_keep_their_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "lake.jsonl"
    f.write_text('\n{"id": 1}\n\n{"id": 2}\n[3]\n{"id": \n')
    got = _read(f)
    assert [(line, v) for line, v in got[:2]] == [(2, 1), (4, 2)]
    assert got[2][0] == 5 and "must be a JSON object" in str(got[2][1])
    assert got[3][0] == 6 and "not valid JSON" in str(got[3][1])


def test_documents_one_line_or_pretty_and_broken(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text('{"Records": [{"id": 1}, {"id": 2}]}')
    assert _read(one) == [(1, 1), (1, 2)]
    pretty = tmp_path / "pretty.json"
    pretty.write_text('\n{\n "Records": [\n  {"id": 1},\n  {\n   "id": 2\n  }\n ]\n}\n')
    assert _read(pretty) == [(4, 1), (5, 2)]
    array = tmp_path / "array.json"
    array.write_text('[\n{"id": "a"},\n{"id": "b"}\n]')
    assert _read(array) == [(2, "a"), (3, "b")]
    broken = tmp_path / "broken.json"
    broken.write_text('{"Records": [\n{"id": 1},\n')
    assert all(isinstance(v, IngestError) for _, v in _read(broken))


def test_gzip_is_recognised_by_content_and_folders_skip_digests(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log.json").write_bytes(gzip.compress(b'{"id": 7}\n'))  # no .gz suffix
    (tmp_path / "a" / ".hidden.json").write_text('{"id": 0}')
    (tmp_path / "CloudTrail-Digest").mkdir()
    (tmp_path / "CloudTrail-Digest" / "d.json.gz").write_bytes(gzip.compress(b"{}"))
    files = list(iter_files(tmp_path))
    assert [p.name for p in files] == ["log.json"]
    assert _read(files[0]) == [(1, 7)]
    with pytest.raises(IngestError, match="no such file or folder"):
        list(iter_files(tmp_path / "missing"))


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01T10:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2024-02-29T12:00:00Z",
        "2023-02-29T12:00:00Z",  # no such day
        "2024-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T23:59:60Z",  # a leap second
        "2024-03-01T10:00:00.5Z",
        "2024-03-01T10:00:00+02:00",
        "2024-03-01T10:00:00",
        "2024-03-01 10:00:00Z",
        "2024-03-01T10:00:00z",
        1709287200,
    ],
)
def test_whole_second_utc_times_are_read_as_any_other_time(value: object) -> None:
    # iso_ms skips parsing CloudTrail's plain form; result and error are those of the parser
    try:
        expected: object = format_timestamp(parse_timestamp(value))
    except ValueError as exc:
        expected = str(exc)
    try:
        got: object = iso_ms(value)
    except ValueError as exc:
        got = str(exc)
    assert got == expected
