"""`auditlens alerts check` over history, with the seed's rules file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

import auditlens as al
from auditlens.cli import app
from tests.alerts.test_engine import failures
from tests.alerts.test_rules import SEED


def test_alerts_check_prints_what_would_fire(store_url: str, tmp_path: Path) -> None:
    with al.open_store(store_url) as s:
        s.append(failures(9, datetime.now(UTC) - timedelta(hours=2)))
    rules = tmp_path / "rules.yaml"
    rules.write_text(SEED)
    res = CliRunner().invoke(
        app, ["alerts", "check", str(rules), "--db", store_url, "--since", "24h"]
    )
    assert res.exit_code == 0, res.output
    assert "1 alert(s) from 1 rule(s)" in res.stdout
    assert "Failed Login Spike" in res.stdout
    assert f"{rules}:4: read `count: > 5`" in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("alert: A\ntrigger: {action: x.y, count: lots}\nnotification: {email: a@x.io}\n")
    res = CliRunner().invoke(app, ["alerts", "check", str(bad), "--db", store_url])
    assert res.exit_code == 2 and f"{bad}:2: trigger.count" in res.stderr
    res = CliRunner().invoke(app, ["alerts", "status", "--db", store_url])
    assert res.exit_code == 0
