"""Alert rules: the YAML format, its tolerant reader, and validation with file/line/field errors.

A rules file holds one rule, a list of rules, or several YAML documents::

    alert: Failed Login Spike
    trigger:
      action: auth.failed          # or a list, or  query: 'action:auth.failed ip:10.0.0.0/8'
      count: "> 5"                 # >, >=, <, <=, == and a whole number
      window: 5m
      group_by: actor              # actor | ip | organization (default) | resource | action
    severity: high                 # low | medium (default) | high | critical
    notification:
      email: security@company.com  # one address or a list
      slack: "#security-alerts"    # channel names, mapped to webhook URLs in the configuration
      webhook: https://hooks.example.com/audit
    cooldown: 30m                  # default: the window

or, instead of ``action``/``query`` + ``count``, ``detector: brute_force_success`` with
optional ``params:``, or ``sigma: rules/brute_force.yml`` (a Sigma rule file or folder,
relative to the rules file; ``rule:`` picks one by id or title when it holds several).
The seed's unquoted ``count: > 5`` and ``slack: #security-alerts`` (invalid YAML: a block
scalar and a comment) are accepted with a warning that shows the quoted form; line numbers
stay those of the file.

Example:
    >>> rules = parse_rules('alert: Spike\\ntrigger:\\n  action: auth.failed\\n  count: "> 5"\\n'
    ...                     '  window: 5m\\nnotification:\\n  email: sec@x.io\\n')
    >>> r = rules.rules[0]
    >>> r.name, r.trigger.op, r.trigger.count, r.trigger.window.total_seconds()
    ('Spike', '>', 5, 300.0)
    >>> r.notification.email
    ['sec@x.io']
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from auditlens.errors import FilterError, QuerySyntaxError, RuleError, SigmaRuleError
from auditlens.query.filters import parse_duration
from auditlens.query.search import parse_search
from auditlens.yamlnodes import NodeReader, compose_documents, plain

if TYPE_CHECKING:
    from auditlens.sigma import SigmaRule

__all__ = [
    "AlertRuleWarning",
    "Notification",
    "Rule",
    "RuleError",
    "RuleSet",
    "Trigger",
    "load_rules",
    "parse_rules",
]

GROUP_BY = ("actor", "ip", "organization", "resource", "action")
_OPS = (">=", "<=", "==", ">", "<")
_COUNT_RE = re.compile(r"^\s*(>=|<=|==|>|<)?\s*(\d+)\s*$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UNQUOTED_COUNT = re.compile(r"^(\s*count\s*:\s*)((?:>=|<=|==|>|<)\s*\d+)\s*(#.*)?$")
_UNQUOTED_CHANNEL = re.compile(r"^(\s*(?:slack|channel)\s*:\s*)(#[\w.\-]+)\s*$")
_UNQUOTED_CHANNEL_ITEM = re.compile(r"^(\s*-\s*)(#[\w.\-]+)\s*$")


class AlertRuleWarning(UserWarning):
    """A rules file used a tolerated form; the message shows the canonical one."""


@dataclass(frozen=True)
class Trigger:
    """When a rule fires."""

    actions: tuple[str, ...] = ()
    query: str | None = None
    detector: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    op: str = ">"
    count: int = 0
    window: timedelta = timedelta(minutes=5)
    group_by: str = "organization"
    sigma: SigmaRule | None = None


@dataclass(frozen=True)
class Notification:
    """Where a firing rule is sent."""

    email: list[str] = field(default_factory=list)
    slack: list[str] = field(default_factory=list)
    webhook: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    """One alert rule."""

    name: str
    trigger: Trigger
    severity: str = "medium"
    notification: Notification = field(default_factory=Notification)
    cooldown: timedelta = timedelta(minutes=5)
    source: str = "<rules>"
    line: int = 0


@dataclass
class RuleSet:
    """The rules of one file and the warnings its reading produced."""

    rules: list[Rule]
    warnings: list[str] = field(default_factory=list)


def _tolerate(text: str, source: str) -> tuple[str, list[str]]:
    """Quote the seed's unquoted ``count: > 5`` and ``slack: #channel``, line for line."""
    notes: list[str] = []
    out: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        fixed = line
        for pattern in (_UNQUOTED_COUNT, _UNQUOTED_CHANNEL, _UNQUOTED_CHANNEL_ITEM):
            m = pattern.match(line)
            if m:
                fixed = f'{m.group(1)}"{m.group(2).strip()}"'
                break
        if fixed != line:
            notes.append(
                f"{source}:{n}: read `{line.strip()}` as `{fixed.strip()}`; "
                "write it quoted like that (the unquoted form is not valid YAML)"
            )
        out.append(fixed)
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), notes


class _Reader(NodeReader):
    def __init__(self, source: str) -> None:
        super().__init__(source, RuleError)

    def duration(self, node: yaml.Node, field_name: str) -> timedelta:

        try:
            return parse_duration(self.text(node, field_name))
        except FilterError as exc:
            raise self.fail(node, field_name, str(exc)) from None

    def rule(self, node: yaml.Node) -> Rule:
        top = self.mapping(
            node, "", ("alert", "trigger", "severity", "notification", "cooldown", "description")
        )
        if "alert" not in top:
            raise self.fail(node, "alert", "is required (the rule's name)")
        name = self.text(top["alert"][1], "alert")
        if "trigger" not in top:
            raise self.fail(node, "trigger", "is required")
        trigger = self.trigger(top["trigger"][1])
        severity = "medium"
        if "severity" in top:
            severity = self.text(top["severity"][1], "severity").lower()
            if severity not in ("low", "medium", "high", "critical"):
                raise self.fail(
                    top["severity"][1], "severity", "must be low, medium, high or critical"
                )
        if "notification" not in top:
            raise self.fail(node, "notification", "is required: email, slack and/or webhook")
        note = self.notification(top["notification"][1])
        cooldown = (
            self.duration(top["cooldown"][1], "cooldown") if "cooldown" in top else trigger.window
        )
        return Rule(name, trigger, severity, note, cooldown, self.source, node.start_mark.line + 1)

    def trigger(self, node: yaml.Node) -> Trigger:
        t = self.mapping(
            node,
            "trigger",
            (
                "action",
                "actions",
                "query",
                "detector",
                "params",
                "count",
                "window",
                "group_by",
                "sigma",
                "rule",
            ),
        )
        if "sigma" in t:
            return self.sigma(t)
        window = (
            self.duration(t["window"][1], "trigger.window")
            if "window" in t
            else timedelta(minutes=5)
        )
        if "detector" in t:
            from auditlens.detect import DETECTORS  # lazy: the detectors load polars

            det = self.text(t["detector"][1], "trigger.detector")
            if det not in DETECTORS:
                raise self.fail(
                    t["detector"][1],
                    "trigger.detector",
                    f"unknown detector; known: {', '.join(DETECTORS)}",
                )
            params = plain(t["params"][1]) if "params" in t else {}
            if not isinstance(params, dict):
                raise self.fail(t["params"][1], "trigger.params", "must be a mapping")
            return Trigger(detector=det, params=params, window=window)
        actions: tuple[str, ...] = ()
        for key in ("action", "actions"):
            if key in t:
                actions += tuple(self.texts(t[key][1], f"trigger.{key}"))
        query = self.text(t["query"][1], "trigger.query") if "query" in t else None
        if query is not None:
            try:
                parse_search(query)
            except QuerySyntaxError as exc:
                raise self.fail(t["query"][1], "trigger.query", exc.reason) from None
        if not actions and query is None:
            raise self.fail(node, "trigger", "needs action, query or detector")
        if "count" not in t:
            raise self.fail(node, "trigger.count", 'is required, e.g. count: "> 5"')
        raw = plain(t["count"][1])
        m = _COUNT_RE.match(str(raw)) if not isinstance(raw, bool) else None
        if m is None:
            raise self.fail(
                t["count"][1],
                "trigger.count",
                f'must be a comparison like "> 5" or ">= 10", got {raw!r}',
            )
        group_by = (
            self.text(t["group_by"][1], "trigger.group_by") if "group_by" in t else "organization"
        )
        if group_by not in GROUP_BY:
            raise self.fail(
                t["group_by"][1], "trigger.group_by", f"must be one of {', '.join(GROUP_BY)}"
            )
        return Trigger(
            actions=actions,
            query=query,
            op=m.group(1) or ">=",
            count=int(m.group(2)),
            window=window,
            group_by=group_by,
        )

    def sigma(self, t: dict[str, tuple[yaml.Node, yaml.Node]]) -> Trigger:
        from auditlens.sigma import load_sigma  # lazy: auditlens.sigma imports the alert rules

        node = t["sigma"][1]
        path = Path(self.text(node, "trigger.sigma"))
        if not path.is_absolute() and not self.source.startswith("<"):
            path = Path(self.source).parent / path
        try:
            found = load_sigma(path)
        except SigmaRuleError as exc:
            raise self.fail(node, "trigger.sigma", str(exc)) from None
        if "rule" in t:
            want = self.text(t["rule"][1], "trigger.rule")
            found = [r for r in found if want in (r.id, r.title)]
            if not found:
                raise self.fail(t["rule"][1], "trigger.rule", f"no Sigma rule {want!r} in {path}")
        if len(found) != 1:
            names = ", ".join(f"{r.id} ({r.title})" for r in found)
            raise self.fail(node, "trigger.rule", f"{path} holds several rules, name one: {names}")
        rule = found[0]
        window = rule.correlation.timespan if rule.correlation else timedelta(minutes=5)
        return Trigger(sigma=rule, window=window)

    def notification(self, node: yaml.Node) -> Notification:
        n = self.mapping(node, "notification", ("email", "slack", "webhook"))
        email = self.texts(n["email"][1], "notification.email") if "email" in n else []
        for addr in email:
            if not _EMAIL_RE.match(addr):
                raise self.fail(
                    n["email"][1], "notification.email", f"{addr!r} is not an email address"
                )
        slack = self.texts(n["slack"][1], "notification.slack") if "slack" in n else []
        hooks = self.texts(n["webhook"][1], "notification.webhook") if "webhook" in n else []
        for url in hooks:
            if not url.startswith(("https://", "http://")):
                raise self.fail(
                    n["webhook"][1], "notification.webhook", f"{url!r} is not an http(s) URL"
                )
        if not (email or slack or hooks):
            raise self.fail(node, "notification", "needs at least one of email, slack, webhook")
        return Notification(email, slack, hooks)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse rules from YAML text (see the module doc for the format).

    Raises:
        RuleError: with the file, line and field of the first problem.
    """
    fixed, notes = _tolerate(text, source)
    for note in notes:
        warnings.warn(note, AlertRuleWarning, stacklevel=2)
    reader = _Reader(source)
    docs = compose_documents(fixed, source, RuleError)
    nodes: list[yaml.Node] = []
    for doc in docs:
        nodes.extend(doc.value if isinstance(doc, yaml.SequenceNode) else [doc])
    if not nodes:
        raise RuleError(source, None, "alert", "the file holds no rules")
    rules = [reader.rule(n) for n in nodes]
    names = [r.name for r in rules]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RuleError(source, None, "alert", f"duplicate rule name(s): {', '.join(sorted(dup))}")
    return RuleSet(rules, notes)


def load_rules(path: str | Path) -> RuleSet:
    """Read a rules file (see :func:`parse_rules`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(str(p), None, "file", exc.strerror or "cannot be read") from None
    return parse_rules(text, str(p))
