"""One progress mechanism for every long operation (ingest, export, verify, report, demo).

Long operations take a ``progress`` callback (``Callable[[int], None]``: called with the
number of items done since the last call) and know nothing of bars. Whoever wants a bar
opens :func:`progress_bar` and passes its ``advance``:

    >>> from auditlens.progress import progress_bar
    >>> with progress_bar(3, "demo", show=False) as bar:
    ...     for _ in range(3):
    ...         bar.advance(1)
    >>> bar.done
    3

What draws the bar is chosen in one place, :func:`use_frontend`: ``"tqdm"`` (the
default: ``tqdm.auto``, a widget in notebooks, text in scripts) or ``"rich"`` (the
``auditlens`` command selects it when it starts). Bars are silent unless asked
(``show=True``) when standard error is not a terminal or ``$CI`` is set, so pipes, logs
and executed notebooks stay clean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, Protocol

__all__ = ["Frontend", "Progress", "ProgressCallback", "progress_bar", "use_frontend"]

#: what draws progress bars.
Frontend = Literal["tqdm", "rich"]
#: what long operations accept: called with the number of items done since the last call.
ProgressCallback = Callable[[int], None]

_frontend: Frontend = "tqdm"


class Progress(Protocol):
    """A running progress bar."""

    done: int

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""

    def describe(self, text: str) -> None:
        """Show what is being worked on now (e.g. the current evidence item)."""


def use_frontend(frontend: Frontend) -> None:
    """Choose what draws progress bars from now on (the CLI chooses ``"rich"``).

    Example:
        >>> use_frontend("tqdm")
    """
    global _frontend
    if frontend not in ("tqdm", "rich"):
        raise ValueError(f"unknown progress frontend {frontend!r}; use 'tqdm' or 'rich'")
    _frontend = frontend


def _wanted(show: bool | None) -> bool:
    if show is not None:
        return show
    if os.environ.get("CI"):
        return False
    return sys.stderr.isatty()


class _Counter:
    """Counts without drawing (progress not shown)."""

    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n

    def describe(self, text: str) -> None:
        pass


@contextmanager
def progress_bar(total: int | None, desc: str, *, show: bool | None = None) -> Iterator[Progress]:
    """A progress bar over ``total`` items (None: unknown) labelled ``desc``.

    Args:
        show: True draws it, False never does; None (default) draws it only when standard
            error is a terminal and ``$CI`` is not set.
    """
    if not _wanted(show):
        yield _Counter()
        return
    if _frontend == "rich":
        with _rich_bar(total, desc) as bar:
            yield bar
    else:
        with _tqdm_bar(total, desc) as bar:
            yield bar


class _Tqdm(_Counter):
    def __init__(self, bar: object) -> None:
        super().__init__()
        self._bar = bar

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)  # type: ignore[attr-defined]

    def describe(self, text: str) -> None:
        self._bar.set_postfix_str(text)  # type: ignore[attr-defined]


@contextmanager
def _tqdm_bar(total: int | None, desc: str) -> Iterator[Progress]:
    from tqdm.auto import tqdm  # lazy: tqdm only when a bar is drawn

    with tqdm(total=total, desc=desc, unit="item") as bar:
        yield _Tqdm(bar)


class _Rich(_Counter):
    def __init__(self, bar: object, task: object, desc: str) -> None:
        super().__init__()
        self._bar, self._task, self._desc = bar, task, desc

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._bar.advance(self._task, n)  # type: ignore[attr-defined]

    def describe(self, text: str) -> None:
        from rich.markup import escape  # lazy: rich only when a bar is drawn

        label = escape(f"{self._desc} {text}")
        self._bar.update(self._task, description=label)  # type: ignore[attr-defined]


@contextmanager
def _rich_bar(total: int | None, desc: str) -> Iterator[Progress]:
    from rich.console import Console  # lazy: rich only when a bar is drawn
    from rich.markup import escape  # lazy: rich only when a bar is drawn
    from rich.progress import (  # lazy: rich only when a bar is drawn
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        yield _Rich(bar, bar.add_task(escape(desc), total=total), desc)
