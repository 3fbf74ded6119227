"""`auditlens lake sync` and `auditlens verify --lake` from the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from tests.helpers import ORG, ORG2, make_entry

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout + res.stderr


def test_sync_then_verify_then_tamper(store_url: str, tmp_path: Path) -> None:
    with al.open_store(store_url) as store:
        store.append([make_entry() for _ in range(4)] + [make_entry(organization_id=ORG2)])
    lake = tmp_path / "lake"
    code, out = run("lake", "sync", "--to", str(lake), "--db", store_url)
    assert code == 0, out
    assert "sync 1: 5 entries from 2 organization(s)" in out
    assert "month partitions" in out  # five entries over two organization-days: sparse
    code, out = run("lake", "sync", "--to", str(lake), "--db", store_url)
    assert code == 0 and "up to date, nothing to sync" in out, out
    code, out = run("verify", "--lake", str(lake))
    assert code == 0, out
    assert "lake verifies" in out
    path = next(lake.glob(f"organization_id={ORG}/*/*.parquet"))
    frame = pl.read_parquet(path)
    frame.with_columns(
        pl.when(pl.col("seq") == 2)
        .then(pl.lit("failure"))
        .otherwise(pl.col("result"))
        .alias("result")
    ).write_parquet(path)
    code, out = run("verify", "--lake", str(lake))
    assert code == 1
    assert f"{ORG} seq 2" in out and "modified" in out
    code, out = run("verify", "--lake", str(lake), "--json")
    assert code == 1
    problems = json.loads(out)["organizations"][0]["problems"]
    assert {(p["seq"], p["kind"]) for p in problems} >= {(2, "modified")}


def test_sync_of_one_organization(store_url: str, tmp_path: Path) -> None:
    with al.open_store(store_url) as store:
        store.append([make_entry(), make_entry(organization_id=ORG2)])
    code, out = run("lake", "sync", "--to", str(tmp_path / "l"), "--db", store_url, "--org", ORG2)
    assert code == 0, out
    assert ORG2 in out and ORG not in out
