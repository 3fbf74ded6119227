"""The ``auditlens`` command: options are gathered here, work is done by the public API.

Exit codes: 0 success; 1 the command ran but found a problem (rejected lines,
no such entry, a log that does not verify); 2 bad usage or a malformed
query, filter or rules file; 3 the store or a configuration could not be used
(a malformed URL, an unreachable server, a file that is not a database).

Start-up stays fast: this module and the command modules import only typer and
auditlens' light modules; polars, SQLAlchemy, pyarrow, pandas and rich are imported
inside the commands that use them (the output consoles are made on first print), so
``auditlens --help`` and ``--version`` never load them. Help is click's plain help
(``rich_markup_mode=None``): typer's rich help would import rich, markdown-it, pygments
and attrs, which take longer than everything else ``--help`` does (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from auditlens import progress
from auditlens.cli.output import error_line
from auditlens.errors import (
    AuditLensError,
    ConfigError,
    ContextError,
    FilterError,
    IngestError,
    QuerySyntaxError,
    StoreError,
    ValidationError,
    YamlFileError,
)

__all__ = ["app", "exit_code_for", "handle_errors", "main", "package_version"]

app = typer.Typer(
    name="auditlens",
    help="Who did what, when, from where, and with what result: the audit trail from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no rich import (see the module docstring)
    context_settings={"max_content_width": 120},  # wide terminals: command help not cut
)

progress.use_frontend("rich")  # the one place the command chooses its progress bars

F = TypeVar("F", bound=Callable[..., Any])

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_STORE = 3


def package_version() -> str:
    """The installed auditlens version (from the package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("auditlens")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        from auditlens import __version__  # lazy: CLI start-up stays light

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"auditlens {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Options that apply before any command (``--version``)."""


def exit_code_for(exc: AuditLensError) -> int:
    """The documented exit code for an auditlens error (see the module docstring)."""
    if isinstance(
        exc, QuerySyntaxError | FilterError | ValidationError | ContextError | YamlFileError
    ):
        return EXIT_USAGE
    if isinstance(exc, StoreError | ConfigError | IngestError):
        return EXIT_STORE
    return EXIT_PROBLEM


def handle_errors(fn: F) -> F:
    """Turn auditlens errors into a one-line message on stderr and a documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditLensError as exc:
            error_line(str(exc))
            raise typer.Exit(exit_code_for(exc)) from None

    return wrapper  # type: ignore[return-value]


def main() -> None:
    """Entry point of the ``auditlens`` script."""
    app(prog_name="auditlens")


if __name__ == "__main__":  # pragma: no cover
    main()
