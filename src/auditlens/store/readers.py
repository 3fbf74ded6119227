"""Fast columnar reads: a SQLAlchemy SELECT straight into an Arrow table.

The statement is compiled by SQLAlchemy with bound parameters and executed through
ADBC, whose drivers build Arrow buffers in C (SQLite) or from PostgreSQL's binary
protocol, with no Python object per value. Where ADBC cannot reach the database (an
in-memory SQLite store, a missing driver) rows are fetched through SQLAlchemy and
turned into Arrow column by column.

SQLite has no column types at run time and the ADBC SQLite driver infers each
column's type from the first rows it sees (apache/arrow-adbc#581); a query whose
first rows hold NULL in a text column would fail later. The reader therefore puts
one typed prototype row in front of the result (``UNION ALL``) and drops it.

The ADBC SQLite driver links its own copy of SQLite, and two copies in one process
can corrupt a database (their POSIX locks collide), so SQLite reads run in a helper
process (``_adbc_worker``) that streams Arrow IPC back; PostgreSQL reads run in
process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

import pyarrow as pa
from sqlalchemy import Select, func, select
from sqlalchemy.engine import Engine, make_url

from auditlens.errors import StoreError
from auditlens.store.engine import libpq_uri, sqlite_path

__all__ = ["RANGE_ROWS", "ArrowReader"]

#: rows per range of a ranged read (two ranges are in memory at once)
RANGE_ROWS = 200_000


class ArrowReader:
    """Runs SELECT statements of one engine into Arrow tables."""

    def __init__(self, engine: Engine, schema: pa.Schema, *, slot: int = 0) -> None:
        self._engine = engine
        self._schema = schema
        self._dialect = engine.dialect.name
        self._lock = threading.RLock()
        self._conn: Any = None
        self._adbc_ok: bool | None = None
        self._slot = slot  # which SQLite helper process (ranged reads use a second one)
        self._peer: ArrowReader | None = None

    # -- connections -------------------------------------------------------
    def _adbc(self) -> Any:
        if self._adbc_ok is False:
            return None
        if self._conn is not None:
            return self._conn
        url = self._engine.url
        try:
            if self._dialect == "sqlite":
                path = sqlite_path(url)
                if path is None:
                    self._adbc_ok = False
                    return None
                import adbc_driver_sqlite  # noqa: F401 - fail here, not in the worker  # lazy: SQLite stores only

                self._conn = _SqliteWorker.of_slot(self._slot)(path)
            else:
                import adbc_driver_postgresql.dbapi as adbc_pg  # lazy: PostgreSQL stores only

                self._conn = adbc_pg.connect(libpq_uri(make_url(url)), autocommit=True)
        except ImportError:
            self._adbc_ok = False
            return None
        self._adbc_ok = True
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._peer is not None:
                self._peer.close()

    # -- compilation -------------------------------------------------------
    def _compile(self, stmt: Select[Any]) -> tuple[str, list[Any]]:
        if self._dialect == "sqlite":
            from sqlalchemy.dialects import (
                sqlite,
            )  # lazy: only the dialect of the store's backend is loaded

            dialect: Any = sqlite.dialect(paramstyle="qmark")
        else:
            from sqlalchemy.dialects.postgresql import (
                psycopg,
            )  # lazy: only the dialect of the store's backend is loaded

            dialect = psycopg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.params
        order: Sequence[str] = compiled.positiontup or []
        return str(compiled), [params[name] for name in order]

    def _prototype(self) -> str:
        cols = []
        for f in self._schema:
            literal = "0" if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type) else "''"
            cols.append(f'{literal} AS "{f.name}"')
        return "SELECT " + ", ".join(cols)

    # -- reading -------------------------------------------------------------
    def read(self, stmt: Select[Any]) -> pa.Table:
        """All rows of ``stmt`` as one Arrow table with the reader's schema."""
        batches = list(self.batches(stmt))
        return pa.Table.from_batches(batches, schema=self._schema)

    def batches(self, stmt: Select[Any], batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Rows of ``stmt`` as record batches (constant memory for any result size)."""
        with self._lock:
            conn = self._adbc()
            if conn is None:
                yield from self._batches_sqlalchemy(stmt, batch_size)
                return
            sql, params = self._compile(stmt)
            if self._dialect == "sqlite":
                sql = f"{self._prototype()} UNION ALL SELECT * FROM ({sql})"
            if isinstance(conn, _SqliteWorker):
                for batch in conn.query(sql, params, batch_size):
                    yield self._conform(batch)
                return
            cur = conn.cursor()
            try:
                cur.execute(sql, params)
                for batch in cur.fetch_record_batch():
                    yield self._conform(batch)
            finally:
                cur.close()

    def ranged_batches(
        self, stmts: Sequence[Select[Any]], batch_size: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """Batches of each statement in turn (disjoint ranges of one result, in order),
        two statements read at once by two readers (two SQLite helper processes, or two
        PostgreSQL connections).

        Each range is read whole into memory by a background thread while the caller
        consumes the one before it, so memory holds about two ranges: keep them bounded
        (a few hundred thousand rows). Without ADBC the ranges are read one by one.
        """
        if len(stmts) < 2 or self._adbc() is None:
            for stmt in stmts:
                yield from self.batches(stmt, batch_size)
            return
        if self._peer is None:
            self._peer = ArrowReader(self._engine, self._schema, slot=self._slot + 1)
        readers = (self, self._peer)
        from concurrent.futures import Future, ThreadPoolExecutor

        def read(i: int) -> list[pa.RecordBatch]:
            return list(readers[i % 2].batches(stmts[i], batch_size))

        with ThreadPoolExecutor(2, thread_name_prefix="auditlens-read") as pool:
            pending: dict[int, Future[list[pa.RecordBatch]]] = {}
            try:
                for i in range(len(stmts)):
                    for j in (i, i + 1):  # this range and the next one, each in its reader
                        if j < len(stmts) and j not in pending:
                            pending[j] = pool.submit(read, j)
                    batches = pending.pop(i).result()
                    while batches:
                        yield batches.pop(0)
            finally:
                for fut in pending.values():
                    fut.cancel()

    def split_by_time(
        self, stmt: Select[Any], ts: Any, where: Any, *, descending: bool = False
    ) -> list[Select[Any]]:
        """``stmt`` (ordered by ``ts`` first) as consecutive time ranges of about
        :data:`RANGE_ROWS` matching rows each, for :meth:`ranged_batches`.

        The ranges cut the span between the first and last matching time evenly, as many
        as the count of matching rows asks for; one statement when it is small.
        """
        with self._engine.connect() as conn:
            lo, hi, n = conn.execute(
                select(func.min(ts), func.max(ts), func.count()).where(where)
            ).one()
        parts = -(-int(n or 0) // RANGE_ROWS)
        if parts < 2 or lo is None or hi <= lo:
            return [stmt]
        step = -(-(int(hi) - int(lo) + 1) // parts)
        cuts = [int(lo) + k * step for k in range(parts)]
        ranges = [stmt.where(ts >= a, ts < a + step) for a in cuts]
        return ranges[::-1] if descending else ranges

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for f, arr in zip(self._schema, batch.columns, strict=True):
            if arr.type != f.type:
                arr = arr.cast(f.type)
            arrays.append(arr)
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def _batches_sqlalchemy(self, stmt: Select[Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for chunk in result.partitions(batch_size):
                columns: list[Sequence[Any]] = (
                    list(zip(*chunk, strict=True)) if chunk else [[] for _ in self._schema]
                )
                arrays = [
                    pa.array(col, type=pa.int64() if pa.types.is_timestamp(f.type) else f.type)
                    for f, col in zip(self._schema, columns, strict=True)
                ]
                yield self._conform(pa.RecordBatch.from_arrays(arrays, schema=_raw(self._schema)))


class _SqliteWorker:
    """The process's ``_adbc_worker`` (one for every SQLite file), as seen by one file.

    A helper that died (killed, out of memory, a crash in the driver) is replaced: a
    read whose request it never answered is sent again, once, to a new helper. A read
    that dies while its batches are being consumed is not repeated (the caller has
    part of the answer already): it raises :class:`StoreError` and the next read gets
    a new helper.
    """

    _proc: subprocess.Popen[bytes] | None = None
    _lock = threading.Lock()
    _owner: int | None = None  # thread streaming a result right now
    _stopper_registered = False

    def __init__(self, path: str) -> None:
        self.path = str(Path(path).resolve())

    _slots: ClassVar[dict[int, type[_SqliteWorker]]] = {}

    @classmethod
    def of_slot(cls, slot: int) -> type[_SqliteWorker]:
        """The helper of ``slot`` (0: the process's usual one; 1: the second reader of
        ranged reads), each its own process with its own lock."""
        if slot == 0:
            return cls
        if slot not in cls._slots:
            cls._slots[slot] = type(
                f"_SqliteWorker{slot}",
                (cls,),
                {
                    "_proc": None,
                    "_lock": threading.Lock(),
                    "_owner": None,
                    "_stopper_registered": False,
                },
            )
        return cls._slots[slot]

    @classmethod
    def _pipes(cls) -> tuple[IO[bytes], IO[bytes]]:
        proc = cls._proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                _stop(proc)  # reap the dead one, close its pipes
            # run the file as a script: importing the auditlens package would cost ~1 s
            proc = cls._proc = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
                [sys.executable, str(Path(__file__).with_name("_adbc_worker.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=1 << 20,  # large reads: fewer, bigger pipe reads
            )
            if not cls._stopper_registered:
                atexit.register(cls._stop_current)
                cls._stopper_registered = True
        assert proc.stdin is not None and proc.stdout is not None
        return proc.stdin, proc.stdout

    @classmethod
    def _stop_current(cls) -> None:
        if cls._proc is not None:
            _stop(cls._proc)

    @classmethod
    def _discard(cls) -> str:
        """End the current helper (it broke the protocol or died); how it ended, for messages."""
        proc, cls._proc = cls._proc, None
        if proc is None:
            return "no helper"
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        _stop(proc)
        return f"exit code {code}" if code >= 0 else f"signal {-code}"

    def query(self, sql: str, params: list[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Run one query; yields its record batches (always reads the stream to the end)."""
        if type(self)._owner == threading.get_ident():
            raise StoreError(
                "a SQLite read was started while another read's batches are still being "
                "consumed in this thread; finish (or close) the first one"
            )
        with self._lock:
            type(self)._owner = threading.get_ident()
            try:
                yield from self._query(sql, params, batch_rows)
            finally:
                type(self)._owner = None

    def _send(self, request: bytes) -> tuple[IO[bytes], dict[str, Any] | None]:
        """Send one request; the helper's stdout and its header, or None if it died first."""
        stdin, stdout = self._pipes()
        try:
            stdin.write(request)
            stdin.flush()
            line = stdout.readline()
        except (BrokenPipeError, ConnectionResetError):
            return stdout, None
        if not line:
            return stdout, None
        header: dict[str, Any] = json.loads(line)
        return stdout, header

    def _query(self, sql: str, params: list[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        request = {
            "op": "query",
            "path": self.path,
            "sql": sql,
            "params": params,
            "batch_rows": batch_rows,
        }
        payload = json.dumps(request, default=str).encode() + b"\n"
        stdout, header = self._send(payload)
        if header is None:  # the helper died before answering: a new one, once
            ended = self._discard()
            stdout, header = self._send(payload)
            if header is None:
                again = self._discard()
                raise StoreError(
                    f"SQLite read failed: the reader process exited before answering "
                    f"({ended}, then {again} on a retry with a new process)"
                )
        if not header.get("ok"):
            raise StoreError(f"SQLite read failed: {header.get('error')}")
        done = False
        reader: pa.ipc.RecordBatchStreamReader | None = None
        try:
            reader = pa.ipc.open_stream(stdout)
            yield from reader
            done = True
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            ended = self._discard()
            done = True  # nothing left to drain: the helper is gone
            raise StoreError(
                f"SQLite read failed: the reader process broke off the result ({ended}): {exc}"
            ) from exc
        finally:
            if not done:  # the caller stopped early: drain so the next answer starts clean
                try:
                    for _ in reader or ():
                        pass
                except (pa.ArrowInvalid, OSError, EOFError):
                    self._discard()

    def close(self) -> None:
        """Let the worker close this file."""
        if type(self)._owner == threading.get_ident():
            return  # a read of this thread is suspended mid-result (holding the lock)
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            stdin, stdout = self._pipes()
            try:
                stdin.write(json.dumps({"op": "close", "path": self.path}).encode() + b"\n")
                stdin.flush()
                stdout.readline()
            except (BrokenPipeError, ConnectionResetError):
                self._discard()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a helper by closing its stdin (killed if it does not exit), and close its pipes."""
    if proc.poll() is None:
        if proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None and not pipe.closed:
            with contextlib.suppress(BrokenPipeError):
                pipe.close()


def _raw(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        [pa.field(f.name, pa.int64() if pa.types.is_timestamp(f.type) else f.type) for f in schema]
    )
