"""The auditor's evidence package (both backends): what it holds, offline verification with
the API, the CLI and the stdlib verifier, and one changed byte in any member."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import auditlens as al
from auditlens.chain.bundle import verify_bundle
from auditlens.chain.notes import SigningKey, generate_keys, load_signing_key
from auditlens.cli import app
from auditlens.reports import verify_package, write_package
from tests.cli.widths import terminal_width  # noqa: F401 - the fixture
from tests.helpers import ORG
from tests.reports import scenario

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_bundle_stdlib.py"
runner = CliRunner()


def _report(store: al.AuditStore, tmp_path: Path) -> Path:
    """The scenario's SOC 2 report, saved as results JSON (+ population files)."""
    report = al.build_report(
        store, "soc2", ORG, scenario.START, scenario.END, charts=False, record=False
    )
    return report.save_json(tmp_path / "out" / "soc2.json")


def _signed(store: al.AuditStore, tmp_path: Path) -> tuple[SigningKey, Path]:
    _, _, vkey = generate_keys(tmp_path / "k", "audit.test/log")
    key = load_signing_key(tmp_path / "k" / "signing.key")
    store.checkpoint(ORG, key)
    return key, vkey


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rewrite(path: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)


def _flip(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def test_package_holds_the_evidence_and_verifies_offline(
    store: al.AuditStore, tmp_path: Path
) -> None:
    scenario.seed(store)
    key, vkey = _signed(store, tmp_path)
    results = _report(store, tmp_path)
    pdf = tmp_path / "soc2.pdf"
    pdf.write_bytes(b"%PDF-1.7 stand-in\n")
    out = tmp_path / "package.zip"
    res = write_package(store, results, out, keys=[key.verifier], pdf=pdf)
    assert res.verified.ok, res.verified.problems
    files = _members(out)
    data = json.loads(results.read_text())
    assert files["report.json"] == results.read_bytes()
    assert files["report.pdf"] == pdf.read_bytes()
    framework = files["framework.yaml"]
    assert framework == Path(data["provenance"]["framework_file"]).read_bytes()
    assert hashlib.sha256(framework).hexdigest() == data["provenance"]["framework_sha256"]
    assert {"MANIFEST.json", "exceptions.csv", "evidence-bundle.zip", "README.txt"} <= set(files)
    manifest = json.loads(files["MANIFEST.json"])
    assert manifest["format"] == "auditlens.package.v1" and manifest["unproven"] == []
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    # every exception of report.json is in exceptions.csv, and in the store with its seq
    want = [
        (r["id"], c["evidence"], e["audit_id"], e["seq"])
        for r in data["requirements"]
        for c in r["checks"]
        for e in c["exceptions"]
    ]
    assert len(want) >= 2  # CC6.2 and CC6.3 have exceptions in the scenario
    rows = list(csv.DictReader(io.StringIO(files["exceptions.csv"].decode())))
    assert [(r["requirement"], r["check"], r["audit_id"], int(r["seq"])) for r in rows] == want
    assert {r["proof"] for r in rows} == {"evidence-bundle.zip"}
    assert next(r for r in rows if r["requirement"] == "CC6.2")["actor"] == "carol@acme.example"
    every = store.query(organization_id=ORG, backend="polars")
    seq_of = dict(zip(every["audit_id"].to_list(), every["seq"].to_list(), strict=True))
    assert all(seq_of[r["audit_id"]] == int(r["seq"]) for r in rows)
    assert res.exceptions == len(want) and res.proven == len({w[2] for w in want})
    # a population's SHA-256, recomputed from the package's CSV, is the one report.json gives
    checked = 0
    for r in data["requirements"]:
        for c in r["checks"]:
            if c["population"] is not None:
                member = files[f"populations/{c['evidence']}.csv"]
                assert hashlib.sha256(member).hexdigest() == c["population"]["sha256"]
                assert len(member.decode().splitlines()) == c["population"]["count"] + 1
                checked += 1
    assert checked
    # offline: the API, and the nested bundle with both bundle verifiers, unchanged
    report = verify_package(out, keys=[key.verifier])
    assert report.ok and report.proven == res.proven and report.unproven == []
    assert report.signed_by == {ORG: ["audit.test/log"]}
    nested = tmp_path / "evidence-bundle.zip"
    nested.write_bytes(files["evidence-bundle.zip"])
    bundle = verify_bundle(nested, keys=[key.verifier])
    assert bundle.ok and bundle.entries == res.proven
    tool = subprocess.run(
        [sys.executable, str(TOOL), str(nested), "--key", vkey.read_text().strip()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tool.returncode == 0, tool.stdout + tool.stderr


def test_one_changed_byte_in_any_member_is_named(store: al.AuditStore, tmp_path: Path) -> None:
    scenario.seed(store)
    key, _ = _signed(store, tmp_path)
    out = tmp_path / "package.zip"
    write_package(store, _report(store, tmp_path), out, keys=[key.verifier])
    files = _members(out)
    population = next(n for n in files if n.startswith("populations/"))
    for member in [
        "report.json",
        population,
        "exceptions.csv",
        "evidence-bundle.zip",
        "framework.yaml",
        "README.txt",
    ]:
        _rewrite(out, {**files, member: _flip(files[member])})
        problems = verify_package(out, keys=[key.verifier]).problems
        assert [p.member for p in problems][:1] == [member], (member, problems)
        assert "SHA-256" in str(problems[0])
    # a change that still parses but breaks the report's shape is a problem, not a crash
    broken = files["report.json"].replace(b'"evidence"', b'"evidencf"')
    _rewrite(out, {**files, "report.json": broken})
    problems = verify_package(out, keys=[key.verifier]).problems
    assert problems[0].member == "report.json" and "SHA-256" in str(problems[0])
    assert any(str(p).startswith("report.json: not a report's results") for p in problems)
    # the manifest itself: a changed digit of its creation time breaks its seal
    text = files["MANIFEST.json"]
    at = text.index(b'"created_at_ms": ') + len(b'"created_at_ms": ') + 3
    _rewrite(out, {**files, "MANIFEST.json": _flip(text, at)})
    problems = verify_package(out, keys=[key.verifier]).problems
    assert [str(p) for p in problems] == [
        "MANIFEST.json: does not match its seal (the manifest was changed)"
    ]
    # a member added, a member removed
    _rewrite(out, {**files, "extra.txt": b"x"})
    assert [p.member for p in verify_package(out).problems] == ["extra.txt"]
    _rewrite(out, {n: b for n, b in files.items() if n != "exceptions.csv"})
    assert "exceptions.csv" in {p.member for p in verify_package(out).problems}
    _rewrite(out, files)
    assert verify_package(out, keys=[key.verifier]).ok


def test_a_population_changed_with_a_resealed_manifest_still_fails(
    store: al.AuditStore, tmp_path: Path
) -> None:
    """Someone who rewrites MANIFEST.json to match still contradicts report.json."""
    from auditlens.reports.package import _seal

    scenario.seed(store)
    key, _ = _signed(store, tmp_path)
    out = tmp_path / "package.zip"
    write_package(store, _report(store, tmp_path), out, keys=[key.verifier])
    files = _members(out)
    population = next(n for n in files if n.startswith("populations/"))
    files[population] = files[population].rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n"  # drop a row
    body = {k: v for k, v in json.loads(files["MANIFEST.json"]).items() if k != "seal"}
    body["files"][population] = hashlib.sha256(files[population]).hexdigest()
    files["MANIFEST.json"] = _seal(body)
    _rewrite(out, files)
    assert [str(p) for p in verify_package(out, keys=[key.verifier]).problems] == [
        f"{population}: its SHA-256 is not the one report.json gives"
    ]


def test_exceptions_no_checkpoint_covers_are_listed_not_fatal(
    store: al.AuditStore, tmp_path: Path
) -> None:
    scenario.seed(store)
    out = tmp_path / "package.zip"
    res = write_package(store, _report(store, tmp_path), out)
    assert res.proven == 0 and res.unproven == len(set(_exception_ids(out)))
    assert res.verified.ok
    files = _members(out)
    assert "evidence-bundle.zip" not in files
    manifest = json.loads(files["MANIFEST.json"])
    assert {u["audit_id"] for u in manifest["unproven"]} == set(_exception_ids(out))
    rows = list(csv.DictReader(io.StringIO(files["exceptions.csv"].decode())))
    assert all(r["proof"].startswith("none: no checkpoint covers seq ") for r in rows)
    report = verify_package(out)
    assert report.ok and len(report.unproven) == res.unproven and report.proven == 0
    # once signed, a new package proves them all
    key = SigningKey.generate("audit.test/log")
    store.checkpoint(ORG, key)
    res = write_package(store, _report(store, tmp_path), out, keys=[key.verifier])
    assert res.unproven == 0 and res.proven == len(set(_exception_ids(out)))


def _exception_ids(path: Path) -> list[str]:
    data = json.loads(_members(path)["report.json"])
    return [
        e["audit_id"] for r in data["requirements"] for c in r["checks"] for e in c["exceptions"]
    ]


def test_an_exception_not_in_the_store_is_refused(store: al.AuditStore, tmp_path: Path) -> None:
    scenario.seed(store)
    results = _report(store, tmp_path)
    data = json.loads(results.read_text())
    check = next(c for r in data["requirements"] for c in r["checks"] if c["exceptions"])
    check["exceptions"][0]["seq"] += 1000
    results.write_text(json.dumps(data))
    with pytest.raises(al.StoreError, match=r"is not an entry of organization"):
        write_package(store, results, tmp_path / "package.zip")
    assert not (tmp_path / "package.zip").exists()


@pytest.mark.usefixtures("terminal_width")
def test_verify_bundle_command_checks_a_package(store: al.AuditStore, tmp_path: Path) -> None:
    scenario.seed(store)
    key, vkey = _signed(store, tmp_path)
    out = tmp_path / "package.zip"
    write_package(store, _report(store, tmp_path), out, keys=[key.verifier])
    res = runner.invoke(app, ["verify-bundle", str(out), "--key", str(vkey)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[-1] == "package verifies"
    assert lines[0].startswith("evidence package: ") and "with an inclusion proof" in lines[0]
    files = _members(out)
    _rewrite(out, {**files, "exceptions.csv": _flip(files["exceptions.csv"])})
    res = runner.invoke(app, ["verify-bundle", str(out), "--key", str(vkey)])
    assert res.exit_code == 1
    assert "  exceptions.csv: does not match its SHA-256 in MANIFEST.json" in res.stdout
    assert res.stdout.splitlines()[-1] == "package does NOT verify: 1 problem(s)"


@pytest.mark.usefixtures("terminal_width")
def test_verify_bundle_warns_of_unproven_exceptions(store: al.AuditStore, tmp_path: Path) -> None:
    scenario.seed(store)
    out = tmp_path / "package.zip"
    res_w = write_package(store, _report(store, tmp_path), out)
    res = runner.invoke(app, ["verify-bundle", str(out)])
    assert res.exit_code == 0, res.output
    warning = next(x for x in res.stdout.splitlines() if x.startswith("warning: "))
    assert f"{res_w.unproven} exception(s) had no covering checkpoint" in warning


@pytest.mark.slow
@pytest.mark.usefixtures("terminal_width")
def test_report_command_writes_a_package_with_the_given_key(store_url: str, tmp_path: Path) -> None:
    _, _, vkey = generate_keys(tmp_path / "k", "audit.test/log")
    with al.open_store(store_url) as store:
        scenario.seed(store)
        store.checkpoint(ORG, load_signing_key(tmp_path / "k" / "signing.key"))
    out, package = tmp_path / "soc2.pdf", tmp_path / "soc2-package.zip"
    args = ["report", "soc2", "--org", ORG, "--start", scenario.START, "--end", scenario.END]
    res = runner.invoke(
        app,
        [
            *args,
            "--out",
            str(out),
            "--db",
            store_url,
            "--key",
            str(vkey),
            "--package",
            str(package),
        ],
    )
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith(f"{package}: evidence package"))
    assert "with an inclusion proof" in line
    files = _members(package)
    assert files["report.pdf"] == out.read_bytes()
    assert files["report.json"] == out.with_suffix(".json").read_bytes()
    # the key given reached the report: the integrity statement names it as the source
    data = json.loads(files["report.json"])
    assert [k["source"] for k in data["integrity"]["keys"]] == ["--key file given by the reader"]
    res = runner.invoke(app, ["verify-bundle", str(package), "--key", str(vkey)])
    assert res.exit_code == 0 and res.stdout.splitlines()[-1] == "package verifies"
