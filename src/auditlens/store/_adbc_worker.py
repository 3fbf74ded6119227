"""Helper process that runs read queries on a SQLite file through ADBC.

Why a separate process: the ADBC SQLite driver carries its own copy of SQLite. Two
copies of SQLite in one process share that process's POSIX locks on the database
file, and closing a file in one copy drops the other's locks — a documented way to
corrupt a database (sqlite.org/howtocorrupt.html §2.2.1). In its own process the
driver is just another SQLite client.

One worker serves every SQLite file of its parent process. Protocol on
stdin/stdout, one JSON line per request: ``{"op": "query", "path": ..., "sql": ...,
"params": [...], "batch_rows": n}`` is answered by ``{"ok": true}`` and an Arrow IPC
stream of the result (its first row, the typed prototype row of ``readers.py``,
dropped), or by ``{"ok": false, "error": "..."}``; ``{"op": "close", "path": ...}``
closes that file and is answered by ``{"ok": true}``.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
from typing import Any


def _param(pa: Any, value: object) -> Any:
    """A bound parameter as a one-value Arrow array, built from its bytes for the usual
    types: ``pa.array`` on Python values imports pandas on first use (~1 CPU-second in every
    helper process, more than most reads cost)."""
    if isinstance(value, str):
        data = value.encode()
        offsets = struct.pack("<ii", 0, len(data))
        return pa.Array.from_buffers(
            pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(struct.pack("<q", value))])
    if isinstance(value, float):
        return pa.Array.from_buffers(
            pa.float64(), 1, [None, pa.py_buffer(struct.pack("<d", value))]
        )
    if value is None:
        return pa.nulls(1)
    return pa.array([value])


def main() -> None:
    # Ctrl-C (or a notebook kernel being interrupted) reaches the whole process group;
    # the parent decides when this helper ends, by closing its stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the low-level driver API: adbc_driver_manager.dbapi would import pandas (~1.5 s)
    import adbc_driver_manager as adbc  # lazy: only in the helper process
    import adbc_driver_sqlite  # lazy: only the driver of the store's backend is loaded
    import pyarrow as pa  # lazy: only in the helper process

    open_files: dict[str, tuple[object, object]] = {}
    out = open(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
    for line in sys.stdin.buffer:
        req = json.loads(line)
        path = req["path"]
        if req["op"] == "close":
            handles = open_files.pop(path, None)
            if handles is not None:
                for h in reversed(handles):
                    h.close()  # type: ignore[attr-defined]
            out.write(b'{"ok": true}\n')
            out.flush()
            continue
        stmt = None
        sent_header = False
        try:
            if path not in open_files:
                database = adbc_driver_sqlite.connect(path)
                open_files[path] = (database, adbc.AdbcConnection(database))
            stmt = adbc.AdbcStatement(open_files[path][1])
            stmt.set_sql_query(req["sql"])
            stmt.set_options(**{"adbc.sqlite.query.batch_rows": str(req.get("batch_rows", 65536))})
            params = req["params"]
            if params:
                stmt.bind(
                    pa.record_batch(
                        [_param(pa, v) for v in params], names=[str(i) for i in range(len(params))]
                    )
                )
            stream, _ = stmt.execute_query()
            # The result stream points into the statement (its bound parameters, its
            # sqlite3_stmt): it must be released before the statement is closed. A reader
            # left alive past ``stmt.close()`` was released on the next request and
            # called through freed memory (a segfault, seen as "reader exited").
            try:
                reader = pa.RecordBatchReader.from_stream(stream)
                try:
                    out.write(b'{"ok": true}\n')
                    sent_header = True
                    writer = pa.ipc.new_stream(out, reader.schema)
                    first = True
                    for batch in reader:
                        if first:
                            batch = batch.slice(1)
                            first = False
                        writer.write_batch(batch)
                    writer.close()
                finally:
                    reader.close()
                    del reader
            finally:
                stream.release()  # if from_stream did not take it over
                del stream
        except Exception as exc:
            if sent_header:
                # part of an Arrow stream is on the pipe: an error line now would be read
                # as Arrow data. End the process; the parent sees a broken stream, reports
                # it and starts a new helper.
                sys.stderr.write(f"auditlens SQLite reader: {type(exc).__name__}: {exc}\n")
                sys.stderr.flush()
                os._exit(70)
            error = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(error).encode() + b"\n")
        finally:
            if stmt is not None:
                stmt.close()
        out.flush()
    for handles in open_files.values():
        for h in reversed(handles):
            h.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
