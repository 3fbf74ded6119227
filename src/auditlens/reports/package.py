"""The auditor's evidence package: one zip with the report, every population, every
exception and the proof that each exception is in the signed log.

Layout (``auditlens.package.v1``)::

    MANIFEST.json           format, organization, period, exception counts, the exceptions no
                            checkpoint covers yet, SHA-256 of every other member, and a seal
                            (SHA-256 of the manifest's own canonical text)
    report.json             the results file (:meth:`Report.to_json`)
    report.pdf              the PDF, when one was given
    framework.yaml          the framework file the report assessed
    populations/<ev>.csv    each evidence item's population (audit_id, seq, timestamp, action,
                            actor in seq order); its SHA-256 is in report.json
    exceptions.csv          every exception of every check: requirement, check, audit_id, seq,
                            timestamp, actor, deviation, proof
    evidence-bundle.zip     an unchanged :mod:`auditlens.chain.bundle` bundle of the exceptions'
                            entries with inclusion proofs against a signed checkpoint; extract it
                            and ``auditlens verify-bundle`` or ``tools/verify_bundle_stdlib.py``
                            check it as any bundle
    README.txt              how to verify

``auditlens verify-bundle PACKAGE.zip`` recognizes a package (by its ``MANIFEST.json``) and
runs :func:`verify_package`.

Example:
    >>> import auditlens as al, tempfile, pathlib
    >>> from auditlens.chain.notes import SigningKey
    >>> from auditlens.reports import build_report
    >>> store = al.open_store("sqlite://")
    >>> org = "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"
    >>> _ = store.append([{"action": "auth.failed", "result": "failure", "organization_id": org,
    ...     "actor": {"email": "jane@company.com", "type": "user"},
    ...     "timestamp": "2025-01-20T10:30:00Z"}])
    >>> key = SigningKey.generate("audit.example/log")
    >>> _ = store.checkpoint(org, key)
    >>> report = build_report(store, "soc2", org, "2025-01-01", "2025-01-31",
    ...     charts=False, record=False)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "package.zip"
    >>> result = write_package(store, report, out, keys=[key.verifier])
    >>> result.verified.ok, result.unproven
    (True, 0)
    >>> verify_package(out, keys=[key.verifier]).ok
    True
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditlens.chain.notes import VerifierKey, load_verifier
from auditlens.chain.zipped import member_digests, open_zip, write_zip
from auditlens.errors import IngestError, StoreError

if TYPE_CHECKING:
    from auditlens.chain.notes import VerifierKey
    from auditlens.reports.report import Report
    from auditlens.store.store import Store

__all__ = [
    "PACKAGE_FORMAT",
    "PackageProblem",
    "PackageReport",
    "PackageResult",
    "is_package",
    "verify_package",
    "write_package",
]

PACKAGE_FORMAT = "auditlens.package.v1"
MANIFEST = "MANIFEST.json"
BUNDLE = "evidence-bundle.zip"
#: columns of exceptions.csv
EXCEPTIONS_COLUMNS = (
    "requirement",
    "check",
    "audit_id",
    "seq",
    "timestamp",
    "actor",
    "deviation",
    "proof",
)
_PROVEN = "evidence-bundle.zip"

_README = """This is an auditlens evidence package ({fmt}).

Check it offline (no store needed):
  auditlens verify-bundle THIS.zip --key LOG_PUBLIC_KEY.vkey

What is checked: every member against MANIFEST.json (and the manifest against its seal);
each populations/<evidence>.csv against the SHA-256 that report.json gives it;
exceptions.csv against report.json; every exception of the report is in
evidence-bundle.zip with an inclusion proof to a signed checkpoint (or MANIFEST.json
lists it as not covered by any checkpoint yet); and the bundle itself, entry hashes,
proofs and checkpoint signatures against the key you pass.

The bundle is an ordinary auditlens bundle: extract evidence-bundle.zip and run
  python tools/verify_bundle_stdlib.py evidence-bundle.zip --key LOG_PUBLIC_KEY.vkey
for a check that shares no code with auditlens.
"""


@dataclass(frozen=True)
class PackageProblem:
    """One thing in a package that does not verify; ``member`` names the zip member."""

    member: str
    detail: str

    def __str__(self) -> str:
        return f"{self.member}: {self.detail}"


@dataclass
class PackageReport:
    """Result of :func:`verify_package`."""

    exceptions: int = 0
    #: exceptions found in the bundle with a valid inclusion proof
    proven: int = 0
    #: ``audit_id (seq N)`` of the exceptions no checkpoint covered when the package was made
    unproven: list[str] = field(default_factory=list)
    populations: int = 0
    #: the checkpoint signers per organization (from the bundle)
    signed_by: dict[str, list[str]] = field(default_factory=dict)
    keys_source: str = "given"
    problems: list[PackageProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed (unproven exceptions are listed, not problems)."""
        return not self.problems


@dataclass(frozen=True)
class PackageResult:
    """What :func:`write_package` wrote, and its verification right after."""

    path: Path
    sha256: str
    members: list[str]
    exceptions: int
    proven: int
    unproven: int
    verified: PackageReport


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2, sort_keys=True, default=str).encode()


def _seal(body: dict[str, Any]) -> bytes:
    """The manifest's text: ``body`` plus ``seal``, the SHA-256 of ``body``'s canonical text."""
    sealed = {**body, "seal": hashlib.sha256(_canonical(body)).hexdigest()}
    return _canonical(sealed) + b"\n"


def _sources(report: Report | str | os.PathLike[str]) -> tuple[bytes, dict[str, Any], Path]:
    """report.json's bytes, its data and the directory its population files are in."""
    from auditlens.reports.report import (
        Report,
    )  # lazy: verify_package runs without the report stack

    if isinstance(report, Report):
        data = report.to_json()
        text = json.dumps(data, indent=2, default=str).encode()
        return text, json.loads(text), Path()
    path = Path(report)
    try:
        text = path.read_bytes()
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise IngestError(f"{path}: not a readable results JSON ({exc})") from None
    return text, data, path.resolve().parent


def _exceptions(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for req in data.get("requirements", []):
        for check in req.get("checks", []):
            for e in check.get("exceptions") or []:
                rows.append({"requirement": req["id"], "check": check["evidence"], **e})
    return rows


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def write_package(
    store: Store,
    report: Report | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    keys: list[Any] | None = None,
    pdf: str | os.PathLike[str] | None = None,
) -> PackageResult:
    """Write the auditor's evidence package of ``report`` to ``path`` (a zip).

    Args:
        report: a :class:`Report`, or the results JSON :meth:`Report.save_json` wrote (its
            population files beside it) — what ``auditlens report`` has after the notebook ran.
        keys: verifier keys (:class:`~auditlens.chain.notes.VerifierKey` or ``.vkey`` paths)
            the package is verified with once written (default: the store's).
        pdf: the report's PDF, included as ``report.pdf``.

    Exceptions that no checkpoint covers yet cannot have a proof: the package lists them in
    ``MANIFEST.json`` (``unproven``) and exceptions.csv instead of failing.

    Raises:
        StoreError: an exception's audit_id and seq are not in the store.
    """
    from auditlens.chain.bundle import export_bundle  # lazy: verify_package runs without a store
    from auditlens.chain.checkpoints import (
        latest_checkpoint,
    )  # lazy: verify_package runs without a store
    from auditlens.reports.report import (
        Report,
    )  # lazy: verify_package runs without the report stack

    text, data, base = _sources(report)
    org = str(data["organization_id"])
    files: dict[str, bytes] = {"report.json": text}
    if pdf is not None:
        files["report.pdf"] = Path(pdf).read_bytes()
    fw_file = (
        report.framework.source
        if isinstance(report, Report)
        else data["provenance"].get("framework_file")
    )
    if fw_file and Path(fw_file).is_file():
        files["framework.yaml"] = Path(fw_file).read_bytes()
    for req in data["requirements"]:
        for check in req["checks"]:
            name, pop = check["evidence"], check.get("population")
            if pop is None or f"populations/{name}.csv" in files:
                continue
            if isinstance(report, Report):
                content = report.evidence[name].population_csv()
            else:
                if not pop.get("file"):
                    raise IngestError(f"{name}: report.json names no population file")
                content = (base / pop["file"]).read_bytes()
            files[f"populations/{name}.csv"] = content
    rows = _exceptions(data)
    ids = sorted({r["audit_id"] for r in rows})
    stored: dict[str, int] = {}
    if ids:
        found = store.query(organization_id=org, audit_id=ids, backend="polars")
        stored = dict(zip(found["audit_id"].to_list(), found["seq"].to_list(), strict=True))
    for r in rows:
        if stored.get(r["audit_id"]) != r["seq"]:
            raise StoreError(
                f"exception {r['audit_id']} (seq {r['seq']}) of {r['requirement']} is not an "
                f"entry of organization {org} in this store"
            )
    cp = latest_checkpoint(store, org) if ids else None
    covered_to = cp.tree_size if cp is not None else 0
    proven_ids = [a for a in ids if stored[a] <= covered_to]
    unproven = sorted((a for a in ids if stored[a] > covered_to), key=stored.__getitem__)
    for r in rows:
        r["proof"] = (
            _PROVEN
            if r["audit_id"] in proven_ids
            else f"none: no checkpoint covers seq {r['seq']} (run `auditlens checkpoint`)"
        )
    files["exceptions.csv"] = _csv(rows, EXCEPTIONS_COLUMNS)
    if proven_ids:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / BUNDLE
            export_bundle(store, None, out, organization_id=org, audit_id=proven_ids)
            files[BUNDLE] = out.read_bytes()
    files["README.txt"] = _README.format(fmt=PACKAGE_FORMAT).encode()
    body = {
        "format": PACKAGE_FORMAT,
        "created_at_ms": int(time.time() * 1000),
        "framework": data.get("framework"),
        "organization_id": org,
        "period": data.get("period"),
        "exceptions": len(rows),
        "proven": len(proven_ids),
        "unproven": [{"audit_id": a, "seq": stored[a]} for a in unproven],
        "checkpoint_tree_size": covered_to or None,
        "files": member_digests(files),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = write_zip(target, MANIFEST, _seal(body), files)
    trusted = [k if isinstance(k, VerifierKey) else load_verifier(k) for k in keys or []] or None
    return PackageResult(
        target,
        digest,
        [MANIFEST, *sorted(files)],
        len(rows),
        len(proven_ids),
        len(unproven),
        verify_package(target, keys=trusted),
    )


def is_package(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a zip with a package ``MANIFEST.json`` (not a bundle)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return MANIFEST in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _read(zf: zipfile.ZipFile, name: str, report: PackageReport) -> bytes | None:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zlib.error, OSError) as exc:
        report.problems.append(PackageProblem(name, f"cannot be read ({exc})"))
        return None


def verify_package(
    path: str | os.PathLike[str], keys: list[VerifierKey] | None = None
) -> PackageReport:
    """Check a package offline: manifest and seal, populations, exceptions, the bundle.

    Without ``keys`` the bundle's keys are used and ``keys_source`` says so.

    Raises:
        IngestError: ``path`` is not a readable zip.
    """
    from auditlens.chain.bundle import (  # lazy: verify_package runs without a store
        BundleReport,
        verify_bundle,
    )

    report = PackageReport()
    add = report.problems.append
    with open_zip(path) as zf:
        names = set(zf.namelist())
        raw = _read(zf, MANIFEST, report) if MANIFEST in names else None
        try:
            manifest = json.loads(raw or b"")
            if not isinstance(manifest, dict):
                raise ValueError
        except ValueError:
            add(PackageProblem(MANIFEST, "missing or not JSON"))
            return report
        body = {k: v for k, v in manifest.items() if k != "seal"}
        if manifest.get("seal") != hashlib.sha256(_canonical(body)).hexdigest() or raw != _seal(
            body
        ):
            add(PackageProblem(MANIFEST, "does not match its seal (the manifest was changed)"))
        if manifest.get("format") != PACKAGE_FORMAT:
            add(PackageProblem(MANIFEST, f"unknown format {manifest.get('format')!r}"))
        listed: dict[str, str] = manifest.get("files") or {}
        content: dict[str, bytes] = {}
        for name, digest in sorted(listed.items()):
            if name not in names:
                add(PackageProblem(name, "listed in MANIFEST.json but missing"))
                continue
            data = _read(zf, name, report)
            if data is None:
                continue
            content[name] = data
            if hashlib.sha256(data).hexdigest() != digest:
                add(PackageProblem(name, "does not match its SHA-256 in MANIFEST.json"))
        for extra in sorted(names - set(listed) - {MANIFEST}):
            add(PackageProblem(extra, "not listed in MANIFEST.json"))
    try:
        results = json.loads(content["report.json"])
    except (KeyError, ValueError):
        add(PackageProblem("report.json", "missing or not JSON"))
        return report
    try:  # a changed report.json may still parse: its shape is checked, never trusted
        _check_populations(results, content, report)
        expected = _exceptions(results)
    except (KeyError, TypeError, AttributeError) as exc:
        add(PackageProblem("report.json", f"not a report's results (missing or bad {exc})"))
        return report
    report.exceptions = len(expected)
    _check_exceptions_csv(expected, content, report)
    unproven = {str(u.get("audit_id")): u.get("seq") for u in manifest.get("unproven") or []}
    report.unproven = [f"{a} (seq {s})" for a, s in unproven.items()]
    proven_in_bundle: dict[str, int] = {}
    if BUNDLE in content:
        with tempfile.TemporaryDirectory() as tmp:
            nested = Path(tmp) / BUNDLE
            nested.write_bytes(content[BUNDLE])
            try:
                bundle = verify_bundle(nested, keys=keys)
                with zipfile.ZipFile(nested) as bz:
                    lines = bz.read("entries.jsonl").splitlines() if bundle.entries else []
            except (IngestError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
                add(PackageProblem(BUNDLE, f"not a readable bundle ({exc})"))
                bundle, lines = BundleReport(keys_source="given"), []
        report.keys_source, report.signed_by = bundle.keys_source, bundle.signed_by
        bad = {p.audit_id for p in bundle.problems if p.audit_id}
        for p in bundle.problems:
            add(PackageProblem(BUNDLE, str(p)))
        for line in lines:
            try:
                e = json.loads(line)
                if e["audit_id"] not in bad:
                    proven_in_bundle[str(e["audit_id"])] = int(e["seq"])
            except (ValueError, KeyError, TypeError):
                continue  # verify_bundle reported it
    for e in {x["audit_id"]: x for x in expected}.values():
        aid = e["audit_id"]
        if aid in unproven:
            continue
        if proven_in_bundle.get(aid) != e["seq"]:
            add(
                PackageProblem(
                    BUNDLE,
                    f"exception {aid} (seq {e['seq']}) has no entry with a valid inclusion "
                    "proof in the bundle",
                )
            )
        else:
            report.proven += 1
    return report


def _check_populations(
    results: dict[str, Any], content: dict[str, bytes], report: PackageReport
) -> None:
    seen: set[str] = set()
    for req in results.get("requirements", []):
        for check in req.get("checks", []):
            name, pop = check.get("evidence"), check.get("population")
            member = f"populations/{name}.csv"
            if pop is None or member in seen:
                continue
            seen.add(member)
            data = content.get(member)
            if data is None:
                report.problems.append(PackageProblem(member, "missing"))
            elif hashlib.sha256(data).hexdigest() != pop.get("sha256"):
                report.problems.append(
                    PackageProblem(member, "its SHA-256 is not the one report.json gives")
                )
            else:
                report.populations += 1


def _check_exceptions_csv(
    expected: list[dict[str, Any]], content: dict[str, bytes], report: PackageReport
) -> None:
    data = content.get("exceptions.csv")
    if data is None:
        report.problems.append(PackageProblem("exceptions.csv", "missing"))
        return
    try:
        listed = list(csv.DictReader(data.decode().splitlines()))
        got = [(r["requirement"], r["check"], r["audit_id"], int(r["seq"])) for r in listed]
    except (UnicodeDecodeError, KeyError, ValueError, csv.Error):
        report.problems.append(PackageProblem("exceptions.csv", "not a readable exceptions CSV"))
        return
    want = [(e["requirement"], e["check"], e["audit_id"], int(e["seq"])) for e in expected]
    if got != want:
        report.problems.append(
            PackageProblem("exceptions.csv", "does not list the exceptions of report.json")
        )
