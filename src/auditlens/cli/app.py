"""The ``auditlens`` command: options are gathered here, work is done by the public API.

Exit codes: 0 success; 1 the command ran but found a problem (rejected lines,
no such entry, a log that does not verify); 2 bad usage or a malformed
query, filter or rules file; 3 the store or a configuration could not be used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from auditlens.cli.output import err_console
from auditlens.errors import (
    AuditLensError,
    ConfigError,
    FilterError,
    IngestError,
    QuerySyntaxError,
    StoreError,
    ValidationError,
)
from auditlens.yamlnodes import YamlFileError

__all__ = ["app", "handle_errors", "main"]

app = typer.Typer(
    name="auditlens",
    help="Who did what, when, from where, and with what result: the audit trail from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_STORE = 3


def handle_errors(fn: F) -> F:
    """Turn auditlens errors into a clear message on stderr and a documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (QuerySyntaxError, FilterError, ValidationError, YamlFileError) as exc:
            err_console.print(f"[red]error:[/] {_escape(exc)}")
            raise typer.Exit(EXIT_USAGE) from None
        except (StoreError, ConfigError, IngestError) as exc:
            err_console.print(f"[red]error:[/] {_escape(exc)}")
            raise typer.Exit(EXIT_STORE) from None
        except AuditLensError as exc:
            err_console.print(f"[red]error:[/] {_escape(exc)}")
            raise typer.Exit(EXIT_PROBLEM) from None

    return wrapper  # type: ignore[return-value]


def _escape(exc: BaseException) -> str:
    from rich.markup import escape

    return escape(str(exc))


def main() -> None:
    """Entry point of the ``auditlens`` script."""
    app(prog_name="auditlens")


if __name__ == "__main__":  # pragma: no cover
    main()
