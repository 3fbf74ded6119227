"""One progress mechanism: long operations report counts, one place picks what draws them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditlens import progress
from auditlens.progress import progress_bar, use_frontend


@pytest.fixture(autouse=True)
def _restore_frontend() -> Iterator[None]:
    before = progress._frontend
    yield
    use_frontend(before)


def test_silent_off_a_terminal_but_still_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar(5, "ingest") as bar:  # pytest's stderr is not a terminal
        bar.advance(2)
        bar.advance(3)
        bar.describe("last batch")
    assert bar.done == 5
    assert capsys.readouterr().err == ""


def test_silent_in_ci_unless_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with progress_bar(1, "verify") as bar:
        bar.advance()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("frontend", ["tqdm", "rich"])
def test_asked_for_it_draws_with_the_chosen_frontend(
    frontend: progress.Frontend, capsys: pytest.CaptureFixture[str]
) -> None:
    use_frontend(frontend)
    with progress_bar(3, "evidence", show=True) as bar:
        bar.describe("[red]not markup[/]")
        bar.advance(3)
    assert bar.done == 3
    if frontend == "tqdm":
        assert "evidence" in capsys.readouterr().err


def test_an_unknown_frontend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown progress frontend"):
        use_frontend("curses")  # type: ignore[arg-type]


def test_the_cli_draws_with_rich() -> None:
    import auditlens.cli.app  # noqa: F401 - choosing the frontend is part of starting the CLI

    assert progress._frontend == "rich"
