"""The lake's layout on disk, and its state read back from its manifests.

```
<root>/organization_id=<org>/date=YYYY-MM-DD/part-s<sync>-<first seq>-<last seq>.parquet
       (or …/month=YYYY-MM/…: a lake partitioned by month)
<root>/manifests/sync-000001.json, sync-000002.json, …
```

Parquet files hold the entry frame (:data:`auditlens.frames.FRAME_SCHEMA`) without the
partition columns (``organization_id`` and ``date``/``month`` come from the folder names, as Hive,
Trino, Athena, Spark and polars expect), plus ``ip_key`` (the sortable address key CIDR
filters compare). One manifest per sync lists, per organization, the seq range it added,
the ``prev_hash`` of its first entry, its last ``entry_hash`` and the newest signed
checkpoint that the lake covers; every file it wrote with rows, seq range and SHA-256;
the files it replaced (compaction); and the SHA-256 of the previous manifest, so the
manifests form a chain. The lake is its own state: the next sync starts after the last
seq the manifests record, and the current files are those written and not replaced.
Retention adds manifests of its own to the chain (``"kind": "retention"``): they add no
rows and no files (the files they list must be current, with the same SHA-256), and record
a range it archived (see :mod:`auditlens.retention`).

One writer at a time: ``sync_lake`` and retention hold the lake's lock
(``<root>/.auditlens-lake.lock``, :func:`lake_lock`) while they read the manifests and
write; another writer meanwhile is refused rather than numbering its manifest after the
same last one. On S3 there is no lock: every manifest is written put-if-absent
(:meth:`LakeStorage.create`), so of two writers that numbered their manifests alike, the
second is refused and removes what it wrote; a manifest is never replaced.

The lake lives in a local folder or under an ``s3://bucket/prefix`` (any S3-compatible
store), reached through :class:`LakeStorage` (``pyarrow.fs``). S3 has no rename: data files
get names no earlier sync used (``part-s<sync>-…``) and the manifest, written last as one
object, is the commit point; readers and verify trust only files a manifest lists.

Example:
    >>> manifest_name(3)
    'sync-000003.json'
    >>> LakeStorage.at("/data/lake").uri("manifests/sync-000001.json")
    '/data/lake/manifests/sync-000001.json'
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pyarrow.fs as pafs

from auditlens.errors import ArchiveError, ConfigError

__all__ = [
    "FORMAT",
    "MANIFESTS",
    "LakeFile",
    "LakeState",
    "LakeStorage",
    "OrgHead",
    "atomic_write",
    "file_sha256",
    "lake_lock",
    "manifest_name",
    "one_writer",
    "read_state",
]

FORMAT = "auditlens.lake.v1"
MANIFESTS = "manifests"
LOCK = ".auditlens-lake.lock"  #: the writers' lock file (Hive readers skip dot files)
_MANIFEST_RE = re.compile(r"sync-(\d{6,})\.json")


def s3_endpoint() -> str | None:
    """The S3 endpoint the environment names: ``AUDITLENS_S3_ENDPOINT_URL`` (as the exports
    and the archive), else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (as boto3); None: AWS.

    Example:
        >>> s3_endpoint() is None or s3_endpoint().startswith("http")
        True
    """
    for var in ("AUDITLENS_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return os.environ[var]
    return None


def s3_region() -> str | None:
    """The region the environment names (``AUDITLENS_S3_REGION``, ``AWS_REGION``,
    ``AWS_DEFAULT_REGION``); None: the SDK's own resolution.

    Example:
        >>> s3_region() is None or isinstance(s3_region(), str)
        True
    """
    for var in ("AUDITLENS_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(var):
            return os.environ[var]
    return None


class LakeStorage:
    """Where a lake lives: a local folder, or ``s3://bucket/prefix`` through ``pyarrow.fs``.

    Paths given to the methods are relative to the lake's root, with ``/``. On S3 the
    endpoint and region come from the environment (:func:`s3_endpoint`, :func:`s3_region`),
    the credentials from the AWS SDK's usual chain (``AWS_ACCESS_KEY_ID``/…, profiles,
    instance metadata), as boto3 finds them.

    Example:
        >>> import tempfile
        >>> where = LakeStorage.at(tempfile.mkdtemp())
        >>> where.write("a/b.txt", b"hi"); where.read("a/b.txt"), where.listing("a")
        (b'hi', ['a/b.txt'])
    """

    def __init__(self, fs: pafs.FileSystem, base: str, url: str, *, local: bool) -> None:
        self.fs = fs
        self.base = base.rstrip("/")  #: the root in ``fs``'s terms (``bucket/prefix`` on S3)
        self.url = url  #: the root as the user wrote it (messages)
        self.local = local
        self._made: set[str] = set()  # local folders known to exist
        self._client: Any = None  # boto3's S3 client, for put-if-absent (create)

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> LakeStorage:
        """The storage of the lake at ``root`` (a folder, or an ``s3://`` URL).

        Raises:
            ConfigError: an ``s3://`` URL without a bucket.
        """
        text = os.fspath(root)
        if text.startswith("s3://"):
            bucket, _, prefix = text[len("s3://") :].partition("/")
            if not bucket:
                raise ConfigError(f"{text}: no bucket name in the lake's s3:// URL")
            endpoint = s3_endpoint()
            scheme = "http" if endpoint and endpoint.startswith("http://") else "https"
            fs = pafs.S3FileSystem(
                region=s3_region(),
                endpoint_override=endpoint.split("://", 1)[1] if endpoint else None,
                scheme=scheme,
            )
            base = f"{bucket}/{prefix.strip('/')}".rstrip("/")
            return cls(fs, base, text.rstrip("/"), local=False)
        path = Path(text).absolute()
        return cls(pafs.LocalFileSystem(), path.as_posix(), str(path), local=True)

    @property
    def root(self) -> Path | str:
        """The root as a :class:`~pathlib.Path` (local) or the ``s3://`` URL."""
        return Path(self.base) if self.local else self.url

    def full(self, rel: str) -> str:
        """``rel`` in ``fs``'s terms."""
        return f"{self.base}/{rel}" if rel else self.base

    def uri(self, rel: str) -> str:
        """``rel`` as a path (local) or an ``s3://`` URL (what polars and messages take)."""
        return self.full(rel) if self.local else f"s3://{self.full(rel)}"

    def _local(self, rel: str) -> Path:
        return Path(self.full(rel))

    def read(self, rel: str) -> bytes:
        """The bytes of a file (``OSError`` if it is missing)."""
        if self.local:
            return self._local(rel).read_bytes()
        with self.fs.open_input_stream(self.full(rel)) as fh:
            return bytes(fh.read())

    def write(self, rel: str, data: bytes | Any) -> None:
        """Write a whole file so that no reader sees it half written: locally through a
        temporary name and a rename, on S3 as one PUT (an object appears whole or not)."""
        if self.local:
            path = self._local(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda p: p.write_bytes(data))
            return
        with self.fs.open_output_stream(self.full(rel)) as fh:
            fh.write(data)

    def create(self, rel: str, data: bytes) -> None:
        """Write a whole file that must not exist yet (a manifest: the commit point), so that
        two writers can never both write the same name; the loser gets ``FileExistsError``.

        Locally: a temporary file hard-linked to the name (the link fails if the name is
        taken). On S3: one ``PutObject`` with ``If-None-Match: *`` (put-if-absent, through
        boto3: AWS S3 and recent S3-compatible stores refuse it with 412 when the key
        exists); without boto3, a check then a PUT, which does not stop a writer racing it.

        Example:
            >>> import tempfile
            >>> where = LakeStorage.at(tempfile.mkdtemp())
            >>> where.create("m.json", b"1")
            >>> try:
            ...     where.create("m.json", b"2")
            ... except FileExistsError:
            ...     print(where.read("m.json"))
            b'1'
        """
        if self.local:
            path = self._local(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                tmp.write_bytes(data)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise
                except OSError:  # no hard links here (some network file systems)
                    if path.exists():
                        raise FileExistsError(str(path)) from None
                    os.replace(tmp, path)  # the writers' lock keeps others out meanwhile
            finally:
                tmp.unlink(missing_ok=True)
            return
        client = self._boto3()
        if client is None:
            if self.info(rel) is not None:
                raise FileExistsError(self.uri(rel))
            self.write(rel, data)
            return
        bucket, _, key = self.full(rel).partition("/")
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except Exception as exc:  # botocore's ClientError: 412 taken, 409 a racing put
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412):
                raise FileExistsError(self.uri(rel)) from None
            raise OSError(f"{self.uri(rel)}: cannot write ({type(exc).__name__}: {exc})") from exc

    def _boto3(self) -> Any:
        """A boto3 S3 client for the lake's endpoint and region (None without boto3)."""
        if self._client is None:
            try:
                import boto3  # lazy: boto3 (the s3 extra) only for put-if-absent on S3
            except ImportError:
                return None
            self._client = boto3.client("s3", endpoint_url=s3_endpoint(), region_name=s3_region())
        return self._client

    def write_new(self, rel: str, data: bytes | Any) -> None:
        """Write a file under a name nothing uses (a data file: ``part-s<sync>-…``) in
        place: locally straight to its name (no temporary file; a half-written file is one
        no manifest lists, removed by the next sync), on S3 as one PUT."""
        if not self.local:
            self.write(rel, data)
            return
        # strings and bare system calls (no pathlib, no buffered file: its fstat): a sync
        # writes thousands of small files
        path = self.full(rel)
        folder = path.rpartition("/")[0]
        if folder not in self._made:
            try:
                os.mkdir(folder)  # usually only the last level is new
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        # a new name: never through a planted symlink, never over an existing file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def remove(self, rel: str) -> None:
        """Delete a file; a missing one is not an error."""
        if self.local:
            self._local(rel).unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.full(rel))

    def info(self, rel: str) -> int | None:
        """A file's size, None if it is missing."""
        if self.local:
            p = self._local(rel)
            return p.stat().st_size if p.is_file() else None
        found = self.fs.get_file_info(self.full(rel))
        return int(found.size) if found.type == pafs.FileType.File else None

    def listing(self, sub: str = "") -> list[str]:
        """Every file under ``sub`` (recursively), relative to the root, sorted."""
        if self.local:
            folder = self._local(sub)
            if not folder.is_dir():
                return []
            base = Path(self.base)
            return sorted(p.relative_to(base).as_posix() for p in folder.rglob("*") if p.is_file())
        selector = pafs.FileSelector(self.full(sub), allow_not_found=True, recursive=True)
        n = len(self.base) + 1
        return sorted(
            i.path[n:] for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File
        )


def manifest_name(number: int) -> str:
    """The file name of sync ``number``'s manifest."""
    return f"sync-{number:06d}.json"


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary name in the same folder, then rename into place."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_HELD = "_auditlens_lake_locks"  # a thread's attribute: the lakes it holds, real path → depth
_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def lake_lock(root: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lake's writer lock: one sync or retention run writes a lake at a time.

    Two writers that both read the manifests before either wrote would number their
    manifests alike, and the later one would replace the other's (a retention record,
    whose entries are already gone from the store). The lock is an exclusive ``flock`` on
    ``<root>/.auditlens-lake.lock`` (the file stays; the lock goes with the process). It is
    re-entrant in one thread (retention runs the lake's sync under its own lock); any
    other holder, another process or thread, is refused at once.

    Raises:
        ArchiveError: another writer holds the lock (the message names the lake).

    Example:
        >>> import tempfile
        >>> lake = tempfile.mkdtemp()
        >>> with lake_lock(lake), lake_lock(lake):  # re-entrant in one thread
        ...     pass
    """
    key = os.path.realpath(root)
    # recorded on the thread object itself, so the record is one per thread even when this
    # module is loaded twice (pytest's doctest collection does that)
    depth: dict[str, int] = threading.current_thread().__dict__.setdefault(_HELD, {})
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    Path(key).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(key) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveError(
                f"{key}: another lake sync or retention run is writing to this lake (it holds "
                f"{LOCK}); nothing was written: run again when it has finished"
            ) from None
        depth[key] = 1
        try:
            yield
        finally:
            depth.pop(key, None)
    finally:
        os.close(fd)  # releases the flock


def one_writer(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a writer (its second argument or ``to``: the lake's folder) under :func:`lake_lock`;
    an ``s3://`` lake is not locked here (its manifests are written put-if-absent:
    :meth:`LakeStorage.create`)."""

    @functools.wraps(fn)
    def locked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        to = kwargs["to"] if "to" in kwargs else args[1]
        if str(to).startswith("s3://"):
            return fn(*args, **kwargs)
        with lake_lock(str(to)):
            return fn(*args, **kwargs)

    return locked


@dataclass(frozen=True)
class LakeFile:
    """One Parquet file of the lake, as its manifest records it."""

    path: str  #: relative to the lake root, with ``/``
    organization_id: str
    rows: int
    first_seq: int
    last_seq: int
    sha256: str
    bytes: int
    sync: int  #: the sync whose manifest lists it

    def to_json(self) -> dict[str, Any]:
        """The manifest's record of the file."""
        return {k: v for k, v in self.__dict__.items() if k != "sync"}


@dataclass
class OrgHead:
    """Where an organization's part of the lake ends (and began)."""

    first_seq: int
    first_prev_hash: str
    last_seq: int
    last_entry_hash: str
    rows: int = 0
    checkpoint: str | None = None  #: the newest checkpoint note a manifest carries
    checkpoint_sync: int | None = None


@dataclass
class LakeState:
    """The lake as its manifests describe it."""

    root: Path | str  #: a local folder, or the ``s3://`` URL
    manifests: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)
    heads: dict[str, OrgHead] = field(default_factory=dict)
    files: dict[str, LakeFile] = field(default_factory=dict)  #: current files by path
    partition: str = "date"  #: the time partition (inner Hive folder): date or month
    #: what is wrong with the manifests themselves: (organization or "", detail)
    problems: list[tuple[str, str]] = field(default_factory=list)
    storage: LakeStorage | None = None  #: where the files are (None: the local ``root``)

    @property
    def where(self) -> LakeStorage:
        """The lake's :class:`LakeStorage`."""
        if self.storage is None:
            self.storage = LakeStorage.at(self.root)
        return self.storage

    @property
    def last_sync(self) -> int:
        """The number of the newest sync (0: none yet)."""
        return self.manifests[-1][0] if self.manifests else 0

    @property
    def last_sha256(self) -> str | None:
        """SHA-256 of the newest manifest (the next one records it)."""
        return self.manifests[-1][2] if self.manifests else None

    def files_of(self, organization_id: str) -> list[LakeFile]:
        """An organization's current files, in seq order."""
        return sorted(
            (f for f in self.files.values() if f.organization_id == organization_id),
            key=lambda f: (f.first_seq, f.path),
        )


def _load(where: LakeStorage, rel: str) -> tuple[dict[str, Any], str]:
    try:
        data = where.read(rel)
        meta = json.loads(data)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} manifest")
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{where.uri(rel)}: unreadable lake manifest ({exc})") from None
    return meta, hashlib.sha256(data).hexdigest()


def read_state(root: str | os.PathLike[str] | LakeStorage) -> LakeState:
    """Read every manifest of the lake at ``root`` (a folder, an ``s3://`` URL or a
    :class:`LakeStorage`; none yet: an empty state).

    Manifest problems (a number missing, a broken link to the previous manifest, an
    organization's range that does not continue its previous one) are collected in
    ``problems``, not raised: :func:`auditlens.lake.verify_lake` reports them.

    Raises:
        ArchiveError: a manifest file is not JSON or not a lake manifest.

    Example:
        >>> import tempfile
        >>> read_state(tempfile.mkdtemp()).last_sync
        0
    """
    where = root if isinstance(root, LakeStorage) else LakeStorage.at(root)
    state = LakeState(where.root, storage=where)
    numbered = sorted(
        (int(m[1]), rel)
        for rel in where.listing(MANIFESTS)
        if (m := _MANIFEST_RE.fullmatch(rel.rsplit("/", 1)[-1]))
    )
    previous: str | None = None
    for expected, (number, rel) in enumerate(numbered, start=1):
        meta, sha = _load(where, rel)
        path = Path(rel)
        if number != expected:
            state.problems.append(("", f"manifest {manifest_name(expected)} is missing"))
        if meta.get("sync") != number:
            state.problems.append(("", f"{path.name}: records sync {meta.get('sync')}"))
        if meta.get("previous_sha256") != previous:
            state.problems.append(
                ("", f"{path.name}: the previous manifest's SHA-256 differs from the one recorded")
            )
        previous = sha
        if not state.manifests:
            state.partition = str(meta.get("partition", "date"))
        state.manifests.append((number, meta, sha))
        for rel in meta.get("replaces", []):
            state.files.pop(rel, None)
        record = meta.get("kind") == "retention"  # names current files, adds none
        for f in meta.get("files", []):
            if record:
                held = state.files.get(f.get("path"))
                if held is None or held.sha256 != f.get("sha256"):
                    what = "with another SHA-256 than" if held else "not among the files of"
                    state.problems.append(
                        (
                            str(meta.get("organization_id", "")),
                            f"{path.name}: the retention record lists {f.get('path')} "
                            f"{what} the syncs before it",
                        )
                    )
                continue
            state.files[f["path"]] = LakeFile(**f, sync=number)
        for org, seg in meta.get("organizations", {}).items():
            head = state.heads.get(org)
            if head is None:
                head = OrgHead(
                    int(seg["first_seq"]), seg["prev_hash"], int(seg["first_seq"]) - 1, ""
                )
                head.last_entry_hash = seg["prev_hash"]
                state.heads[org] = head
            elif int(seg["first_seq"]) != head.last_seq + 1 or seg["prev_hash"] != (
                head.last_entry_hash
            ):
                state.problems.append(
                    (
                        org,
                        f"{path.name}: seq {seg['first_seq']} does not continue seq "
                        f"{head.last_seq} of the previous syncs",
                    )
                )
            head.last_seq, head.last_entry_hash = int(seg["last_seq"]), seg["last_entry_hash"]
            head.rows += int(seg["rows"])
            if seg.get("checkpoint"):
                head.checkpoint, head.checkpoint_sync = seg["checkpoint"], number
    return state
