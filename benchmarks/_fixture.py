"""Large benchmark stores, built fast and valid.

Ingest runs at ~10,000 entries/s, so a 10,000,000-entry store would take hours. This
builds a small demo store through the normal ingest once (the *base*), then copies its
rows as many times as needed, each copy under new organization and audit ids
(``<copy:08x>`` + the rest of the original id): content hashes are recomputed
column-wise, links chained per organization in seq order, and the rows bulk-inserted
with the store's secondary indexes dropped and built again afterwards. The stores are
cached under ``benchmarks/.data`` (gitignored). The text-search index is left empty
(exports, loads and verification do not use it).

The result is a valid store: :func:`check_sample` verifies a few organizations.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
BASE_ENTRIES = 200_000


def _base() -> Path:
    """A demo store of BASE_ENTRIES entries through the normal append path (cached)."""
    db = DATA / f"base-{BASE_ENTRIES}.db"
    if db.exists():
        return db
    import auditlens as al
    from auditlens.demo import generate

    DATA.mkdir(exist_ok=True)
    data = generate(orgs=14, days=300, seed=1, end=date(2025, 12, 31))
    entries = data.entries[:BASE_ENTRIES]
    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with al.open_store(f"sqlite:///{tmp}") as store:
        for i in range(0, len(entries), 20_000):
            store.append(entries[i : i + 20_000])
    tmp.rename(db)
    return db


def _columns() -> tuple[str, ...]:
    from auditlens.schema import ROW_FIELDS

    return (*ROW_FIELDS, "seq", "prev_hash", "entry_hash")


def build(db: Path, entries: int) -> Path:
    """A SQLite store of ``entries`` entries at ``db`` (returned at once if it exists)."""
    if db.exists():
        return db
    import polars as pl

    import auditlens as al
    from auditlens.chain.canonical import content_hashes

    base = _base()
    cols = _columns()
    src = sqlite3.connect(base)
    rows = src.execute(
        f"SELECT {', '.join(c for c in cols if c not in ('prev_hash', 'entry_hash'))} "
        "FROM audit_entries ORDER BY id"
    ).fetchall()
    src.close()
    names = [c for c in cols if c not in ("prev_hash", "entry_hash")]
    frame = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
    del rows
    tmp = db.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    al.open_store(f"sqlite:///{tmp}").close()  # the schema, triggers and indexes
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='audit_entries' "
        "AND sql IS NOT NULL AND name NOT LIKE '%audit_id%'"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    insert = f"INSERT INTO audit_entries ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    copies = -(-entries // frame.height)
    tips: dict[str, bytes] = {}
    zero = bytes(32)
    sha = hashlib.sha256
    done, step = 0, max(1, 200_000 // copies)
    # copies interleaved row by row: ids follow time, as in a store ingested as it happened
    for start in range(0, frame.height, step):
        chunk = frame.slice(start, step).with_row_index("_row")
        part = (
            pl.concat(
                [
                    chunk.with_columns(
                        pl.lit(c).alias("_copy"),
                        (pl.lit(f"{c:08x}") + pl.col("organization_id").str.slice(8)).alias(
                            "organization_id"
                        ),
                        (pl.lit(f"{c:08x}") + pl.col("audit_id").str.slice(8)).alias("audit_id"),
                    )
                    for c in range(copies)
                ]
            )
            .sort("_row", "_copy")
            .head(entries - done)
        )
        contents = content_hashes(part)
        prev_col, hash_col = [], []
        for org, content in zip(part["organization_id"].to_list(), contents, strict=True):
            prev = tips.get(org, zero)
            h = sha(prev + content).digest()
            tips[org] = h
            prev_col.append(prev.hex())
            hash_col.append(h.hex())
        part = part.with_columns(
            pl.Series("prev_hash", prev_col), pl.Series("entry_hash", hash_col)
        ).select(cols)
        conn.execute("BEGIN")
        conn.executemany(insert, part.iter_rows())
        conn.execute("COMMIT")
        done += part.height
        if done // 1_000_000 != (done - part.height) // 1_000_000:
            print(f"built {done:,} / {entries:,}", file=sys.stderr, flush=True)
        if done >= entries:
            break
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    tmp.rename(db)
    check_sample(db)
    return db


def check_sample(db: Path, orgs: int = 3) -> None:
    """Verify the chains of a few organizations of ``db`` (raises if one is broken)."""
    import auditlens as al
    from auditlens.chain.verify import verify

    with al.open_store(f"sqlite:///{db}") as store:
        names = [o["organization_id"] for o in store.organizations()]
        for org in names[:orgs] + names[-1:]:
            report = verify(store, org)
            if not report.ok:
                raise SystemExit(f"fixture {db} is not valid: {report}")


def pg_build(url: str, entries: int) -> None:
    """Fill the (empty) PostgreSQL store at ``url`` with ``entries`` entries (same rows)."""
    import auditlens as al

    sqlite_db = build(DATA / f"demo-{entries}.db", entries)
    cols = _columns()
    with al.open_store(url) as store:
        if store.count() >= entries:
            return
    src = sqlite3.connect(sqlite_db)
    import psycopg
    from sqlalchemy.engine import make_url

    from auditlens.store.engine import libpq_uri

    copy_sql = f"COPY audit_entries ({', '.join(cols)}) FROM STDIN"
    with (
        psycopg.connect(libpq_uri(make_url(url))) as pg,
        pg.cursor() as cur,
        cur.copy(copy_sql) as copy,
    ):
        for row in src.execute(f"SELECT {', '.join(cols)} FROM audit_entries ORDER BY id"):
            copy.write_row(row)
    src.close()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(build(DATA / f"demo-{n}.db", n))
