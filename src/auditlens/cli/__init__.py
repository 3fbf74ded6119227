"""The ``auditlens`` command line: a thin layer over the public API."""

from __future__ import annotations

from auditlens.cli import alert_cmds as _alert_cmds  # noqa: F401 - registers the commands
from auditlens.cli import chain_cmds as _chain_cmds  # noqa: F401
from auditlens.cli import commands as _commands  # noqa: F401
from auditlens.cli import db_cmds as _db_cmds  # noqa: F401
from auditlens.cli import findings_cmds as _findings_cmds  # noqa: F401
from auditlens.cli import import_cmds as _import_cmds  # noqa: F401
from auditlens.cli import lake_cmds as _lake_cmds  # noqa: F401
from auditlens.cli import org_cmds as _org_cmds  # noqa: F401
from auditlens.cli import report_cmds as _report_cmds  # noqa: F401
from auditlens.cli import retention_cmds as _retention_cmds  # noqa: F401
from auditlens.cli import schedule_cmds as _schedule_cmds  # noqa: F401
from auditlens.cli.app import app, main

__all__ = ["app", "main"]
