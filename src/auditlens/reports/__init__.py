"""Compliance reports: frameworks as YAML, evidence from the store, PDF and HTML output.

Example:
    >>> from auditlens.reports import load_framework
    >>> load_framework("gdpr").requirements[0].id
    'Art. 5(1)(f)'
"""

from __future__ import annotations

from auditlens.reports.evidence import EVIDENCE, Evidence, EvidenceTable, ReportInput
from auditlens.reports.frameworks import (
    BUILTIN,
    Framework,
    FrameworkError,
    Requirement,
    load_framework,
    parse_framework,
)
from auditlens.reports.package import (
    PackageReport,
    PackageResult,
    verify_package,
    write_package,
)
from auditlens.reports.report import STATUSES, Report, build_report, collect_evidence, period
from auditlens.reports.subject import SubjectAccess, subject_access

__all__ = [
    "BUILTIN",
    "EVIDENCE",
    "STATUSES",
    "Evidence",
    "EvidenceTable",
    "Framework",
    "FrameworkError",
    "PackageReport",
    "PackageResult",
    "Report",
    "ReportInput",
    "Requirement",
    "SubjectAccess",
    "build_report",
    "collect_evidence",
    "load_framework",
    "parse_framework",
    "period",
    "subject_access",
    "verify_package",
    "write_package",
]
