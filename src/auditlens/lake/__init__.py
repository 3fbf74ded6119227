"""The trail as a Hive-partitioned Parquet lake: sync, verify, read (``docs/SCALE.md``).

* :func:`sync_lake` — incremental, compacted copy of the store (``auditlens lake sync``);
* :func:`verify_lake` — the lake checked from its files and manifests alone
  (``auditlens verify --lake``);
* :func:`open_lake` — read it back with polars, with the store's filters.

Example:
    >>> import tempfile
    >>> import auditlens as al
    >>> store = al.open_store("sqlite://")
    >>> _ = store.append([{"actor": {"type": "system"}, "action": "auth.login",
    ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11", "result": "success"}])
    >>> lake = tempfile.mkdtemp()
    >>> sync_lake(store, lake).rows, verify_lake(lake).ok, open_lake(lake).query().height
    (1, True, 1)
"""

from __future__ import annotations

from auditlens.lake.read import Lake, filter_expr, open_lake
from auditlens.lake.sync import TARGET_FILE_BYTES, SyncResult, sync_lake
from auditlens.lake.verify import verify_lake

__all__ = [
    "TARGET_FILE_BYTES",
    "Lake",
    "SyncResult",
    "filter_expr",
    "open_lake",
    "sync_lake",
    "verify_lake",
]
