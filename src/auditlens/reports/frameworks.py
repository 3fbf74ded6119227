"""Compliance frameworks as YAML: requirements, and the evidence checks that assess them.

The layout follows Prowler's compliance files (framework, version, description,
requirements with id, name, description, attributes and checks), with each check
naming an auditlens evidence item (:data:`~auditlens.reports.evidence.EVIDENCE`) and
rules over its metrics::

    framework: SOC2
    name: SOC 2 Trust Services Criteria — Common Criteria (Security)
    version: "2017 (points of focus revised 2022)"
    description: ...
    requirements:
      - id: CC6.2
        name: User registration, authorization and removal
        description: Prior to issuing system credentials ...
        attributes:
          section: CC6 Logical and Physical Access Controls
          type: automated          # automated | partial | manual
          guidance: what a person must still check
        checks:
          - evidence: provisioning
            fail_if: activity_after_suspension > 0
            attention_if: suspended_not_removed > 0 or max_hours_to_remove > 72

A rule is one or more ``metric OP number`` joined by ``or`` (OP is ``>``, ``>=``, ``<``,
``<=``, ``==``, ``!=``). A check fails when ``fail_if`` holds, needs attention when
``attention_if`` holds, and passes otherwise; a requirement takes its worst check, and
one without checks is ``manual``. Files are validated with errors that name the file,
line and field.

Example:
    >>> fw = load_framework("soc2")
    >>> [r.id for r in fw.requirements][:3]
    ['CC6.1', 'CC6.2', 'CC6.3']
    >>> parse_framework("framework: X\\nname: X\\nrequirements:\\n  - id: R1\\n    name: r\\n"
    ...     "    checks:\\n      - evidence: findings\\n        fail_if: nope > 1\\n", "x.yaml")
    Traceback (most recent call last):
    ...
    auditlens.errors.FrameworkError: x.yaml:8: requirements[0].checks[0].fail_if: \
unknown metric 'nope' of evidence findings; known: findings, high_findings, \
unhandled_findings, unhandled_high_findings
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from auditlens.errors import FrameworkError
from auditlens.reports.evidence import EVIDENCE
from auditlens.resources import templates_dir
from auditlens.yamlnodes import NodeReader, compose_documents, plain

__all__ = [
    "BUILTIN",
    "Check",
    "Condition",
    "Framework",
    "FrameworkError",
    "Requirement",
    "load_framework",
    "parse_framework",
]

#: the frameworks shipped in ``report_templates/frameworks/``.
BUILTIN = ("soc2", "iso27001", "gdpr")
TYPES = ("automated", "partial", "manual")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_COND = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """``metric OP value``."""

    metric: str
    op: str
    value: float

    def holds(self, metrics: dict[str, float | int | None]) -> bool | None:
        """Whether it holds (None when the metric is not available)."""
        got = metrics.get(self.metric)
        return None if got is None else _OPS[self.op](float(got), self.value)

    def __str__(self) -> str:
        value = int(self.value) if self.value.is_integer() else self.value
        return f"{self.metric} {self.op} {value}"


@dataclass(frozen=True)
class Check:
    """One evidence item and the rules that grade it."""

    evidence: str
    fail_if: tuple[Condition, ...] = ()
    attention_if: tuple[Condition, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Requirement:
    """One control or article."""

    id: str
    name: str
    description: str
    section: str = ""
    type: str = "automated"
    guidance: str = ""
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Framework:
    """A compliance framework: its requirements and where it was read from."""

    framework: str
    name: str
    version: str
    description: str
    requirements: tuple[Requirement, ...] = field(default_factory=tuple)
    source: str = ""


class _Reader(NodeReader):
    def __init__(self, source: str) -> None:
        super().__init__(source, FrameworkError)

    def optional_text(
        self, keys: dict[str, tuple[yaml.Node, yaml.Node]], key: str, where: str
    ) -> str:
        return self.text(keys[key][1], where + key) if key in keys else ""

    def conditions(self, node: yaml.Node, field_name: str, evidence: str) -> tuple[Condition, ...]:
        text = self.text(node, field_name)
        out: list[Condition] = []
        for part in re.split(r"\s+or\s+", text):
            m = _COND.match(part)
            if m is None:
                raise self.fail(
                    node, field_name, f"{part.strip()!r} is not a rule like 'metric > 0'"
                )
            metric, op, value = m.group(1), m.group(2), float(m.group(3))
            known = EVIDENCE[evidence].metrics
            if metric not in known:
                raise self.fail(
                    node,
                    field_name,
                    f"unknown metric {metric!r} of evidence {evidence}; known: {', '.join(known)}",
                )
            out.append(Condition(metric, op, value))
        return tuple(out)

    def check(self, node: yaml.Node, where: str) -> Check:
        keys = self.mapping(node, where, ("evidence", "fail_if", "attention_if"))
        if "evidence" not in keys:
            raise self.fail(node, where + ".evidence", "is required")
        name = self.text(keys["evidence"][1], where + ".evidence")
        if name not in EVIDENCE:
            raise self.fail(
                keys["evidence"][1],
                where + ".evidence",
                f"unknown evidence {name!r}; known: {', '.join(sorted(EVIDENCE))}",
            )
        rules = {
            k: self.conditions(keys[k][1], f"{where}.{k}", name) if k in keys else ()
            for k in ("fail_if", "attention_if")
        }
        return Check(name, rules["fail_if"], rules["attention_if"], node.start_mark.line + 1)

    def requirement(self, node: yaml.Node, where: str) -> Requirement:
        keys = self.mapping(node, where, ("id", "name", "description", "attributes", "checks"))
        for key in ("id", "name"):
            if key not in keys:
                raise self.fail(node, f"{where}.{key}", "is required")
        attrs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if "attributes" in keys:
            attrs = self.mapping(
                keys["attributes"][1], where + ".attributes", ("section", "type", "guidance")
            )
        kind = self.optional_text(attrs, "type", where + ".attributes.") or "automated"
        checks = tuple(
            self.check(item, f"{where}.checks[{i}]")
            for i, item in enumerate(
                self.sequence(keys["checks"][1], where + ".checks") if "checks" in keys else []
            )
        )
        if kind not in TYPES:
            raise self.fail(
                attrs["type"][1], where + ".attributes.type", f"must be one of {', '.join(TYPES)}"
            )
        if kind != "manual" and not checks:
            raise self.fail(
                node,
                where + ".checks",
                f"{'an' if kind == 'automated' else 'a'} {kind} requirement needs at least "
                "one check (or attributes.type: manual)",
            )
        return Requirement(
            self.text(keys["id"][1], where + ".id"),
            self.text(keys["name"][1], where + ".name"),
            self.optional_text(keys, "description", where + "."),
            self.optional_text(attrs, "section", where + ".attributes."),
            kind,
            self.optional_text(attrs, "guidance", where + ".attributes."),
            checks,
        )


def parse_framework(text: str, source: str = "<framework>") -> Framework:
    """A framework from YAML text.

    Raises:
        FrameworkError: with the file, line and field of the first problem.
    """
    docs = compose_documents(text, source, FrameworkError)
    if len(docs) != 1:
        raise FrameworkError(source, None, "document", "a framework file holds one YAML document")
    r = _Reader(source)
    keys = r.mapping(
        docs[0], "", ("framework", "name", "version", "description", "provider", "requirements")
    )
    for key in ("framework", "name", "requirements"):
        if key not in keys:
            raise r.fail(docs[0], key, "is required")
    reqs = tuple(
        r.requirement(item, f"requirements[{i}]")
        for i, item in enumerate(r.sequence(keys["requirements"][1], "requirements"))
    )
    if not reqs:
        raise r.fail(keys["requirements"][1], "requirements", "lists no requirement")
    seen: dict[str, int] = {}
    for i, req in enumerate(reqs):
        if req.id in seen:
            node = keys["requirements"][1].value[i]
            raise r.fail(node, f"requirements[{i}].id", f"duplicate id {req.id!r}")
        seen[req.id] = i
    return Framework(
        r.text(keys["framework"][1], "framework"),
        r.text(keys["name"][1], "name"),
        str(plain(keys["version"][1])) if "version" in keys else "",
        r.optional_text(keys, "description", ""),
        reqs,
        source,
    )


def load_framework(name_or_path: str | Path) -> Framework:
    """A shipped framework (``soc2``, ``iso27001``, ``gdpr``) or a YAML file of your own."""
    key = str(name_or_path).lower()
    if key in BUILTIN:
        path = templates_dir() / "frameworks" / f"{key}.yaml"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FrameworkError(
                str(path),
                None,
                "framework",
                f"no such file; use {', '.join(BUILTIN)} or the path of a framework YAML",
            )
    return parse_framework(path.read_text(encoding="utf-8"), str(path))
