"""Sigma rules over the audit trail: parsed by pySigma, compiled to auditlens filters.

A rule's detection compiles to an OR of :class:`~auditlens.query.filters.Filter` objects
(the condition in disjunctive normal form), each run as one SQL query: selections are
pushed down, not applied to rows in Python. Correlation rules (``event_count``,
``value_count``, ``temporal``) run on the detectors' sliding windows
(:func:`~auditlens.detect.findings.rolling_count`,
:func:`~auditlens.detect.findings.merge_flagged_windows`). ``docs/SIGMA.md`` has the field
names, modifiers and the window boundary.

Fields (Sigma name → what it matches):

=============================================  ============================================
``action``                                     the action (wildcards: ``auth.*``)
``actor``, ``actor.email``                     the actor's email (case-insensitive, wildcards)
``actor.user_id``                              the actor's user id
``actor.type``, ``result``, ``category``       exact values
``resource``, ``resource.type/.id/.name``      exact values (``resource``: id or name)
``organization_id``, ``application_id``,       exact values
``audit_id``
``ip_address`` (``ip``)                        an address, or a block with ``|cidr``
keywords (values without a field)              text search (actor, resource name, action,
                                               details), a substring, case-insensitive
``user_agent``, ``details.<path>``,            evaluated column-wise (polars) on the rows the
``|fieldref``                                  SQL part returned: SQL filters cannot express them
=============================================  ============================================

Modifiers: ``contains``, ``startswith``, ``endswith`` (on fields that take wildcards),
``all``, ``cidr``, ``fieldref``; anything else raises :class:`~auditlens.errors.SigmaRuleError`
naming the rule, the file and the field.

Example:
    >>> rule = parse_sigma('''
    ... title: MFA disabled
    ... id: 0b8c7c1e-0000-4000-8000-000000000001
    ... logsource: {product: auditlens}
    ... detection:
    ...   selection:
    ...     action|endswith: .mfa_disabled
    ...   condition: selection
    ... level: high
    ... ''')[0]
    >>> rule.name, [(c.field, c.values) for c in rule.branches[0].filter.clauses]
    ('sigma:0b8c7c1e-0000-4000-8000-000000000001', [('action', ('*.mfa_disabled',))])
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from auditlens.detect.findings import (
    build_findings,
    empty_findings,
    human,
    merge_flagged_windows,
    rolling_count,
)
from auditlens.errors import FilterError, SigmaRuleError
from auditlens.query.filters import Clause, Filter, check_limits
from auditlens.query.search import parse_search

if TYPE_CHECKING:
    from auditlens.alerts.rules import Rule
    from auditlens.store.store import Store

__all__ = [
    "FIELDS",
    "Branch",
    "Correlation",
    "SigmaRule",
    "SigmaRuleError",
    "alert_rules",
    "detect",
    "load_sigma",
    "matches",
    "parse_sigma",
]

#: Sigma field → (filter keyword, takes wildcards). Lower-cased values for wildcard fields.
FIELDS: dict[str, tuple[str, bool]] = {
    "action": ("action", True),
    "actor": ("actor", True),
    "actor.email": ("actor", True),
    "actor.user_id": ("actor", False),
    "actor.type": ("actor_type", False),
    "actor_type": ("actor_type", False),
    "category": ("category", False),
    "resource": ("resource", False),
    "resource.type": ("resource_type", False),
    "resource.id": ("resource_id", False),
    "resource.name": ("resource_name", False),
    "result": ("result", False),
    "organization_id": ("organization_id", False),
    "application_id": ("application_id", False),
    "audit_id": ("audit_id", False),
    "ip_address": ("ip", False),
    "ip": ("ip", False),
}
#: Sigma field → frame column (group-by, value_count fields, fieldref, residual matches).
COLUMNS: dict[str, str] = {
    "action": "action",
    "actor": "actor_email",
    "actor.email": "actor_email",
    "actor.user_id": "actor_user_id",
    "actor.type": "actor_type",
    "actor_type": "actor_type",
    "category": "category",
    "resource.type": "resource_type",
    "resource.id": "resource_id",
    "resource.name": "resource_name",
    "result": "result",
    "organization_id": "organization_id",
    "application_id": "application_id",
    "audit_id": "audit_id",
    "ip_address": "ip_address",
    "ip": "ip_address",
    "user_agent": "user_agent",
}
_RESIDUAL = ("user_agent",)
_MODIFIERS = frozenset({"contains", "startswith", "endswith", "all", "cidr", "fieldref"})
_SEVERITY = {
    "informational": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
_OPS = {"gt": ">", "gte": ">=", "eq": "=="}
#: conjunctions one rule may expand to (each is one SQL query)
MAX_BRANCHES = 32


@dataclass(frozen=True)
class Branch:
    """One conjunction of a rule's condition: a filter run in SQL, and the column-wise
    conditions SQL filters cannot express (``user_agent``, ``details.<path>``, ``fieldref``)."""

    filter: Filter
    residual: tuple[pl.Expr, ...] = ()


@dataclass(frozen=True)
class Correlation:
    """A Sigma correlation: ``type`` over ``rules`` within ``timespan``, per ``group_by``."""

    type: str
    rules: tuple[SigmaRule, ...]
    timespan: timedelta
    group_by: tuple[str, ...]
    op: str
    count: int
    field: str | None = None


@dataclass(frozen=True)
class SigmaRule:
    """A compiled Sigma rule: detection branches, or a correlation of other rules."""

    id: str
    title: str
    severity: str
    source: str
    branches: tuple[Branch, ...] = ()
    correlation: Correlation | None = None
    output: bool = True
    description: str = ""

    @property
    def name(self) -> str:
        """The detector name of the rule's findings: ``sigma:<id>``."""
        return f"sigma:{self.id}"


@dataclass
class _Leaf:
    field: str  # filter keyword, "text", or "" for a residual expression
    values: tuple[Any, ...] = ()
    negate: bool = False
    expr: pl.Expr | None = None


@dataclass
class _Ctx:
    title: str
    rule_id: str
    source: str
    text: str

    def fail(self, field_name: str, message: str) -> SigmaRuleError:
        line = _line_of(self.text, field_name.split(".")[-1].split("|")[0])
        return SigmaRuleError(
            self.source, line, field_name, f"rule {self.title!r} ({self.rule_id}): {message}"
        )


def _line_of(text: str, key: str) -> int | None:
    if not key:
        return None
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(rf"^\s*-?\s*{re.escape(key)}\s*(\||:)", line):
            return n
    return None


def _sigma() -> Any:
    try:
        import sigma.collection  # lazy: pySigma is the optional extra auditlens[sigma]
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise SigmaRuleError(
            "<sigma>", None, "pysigma", "Sigma rules need pySigma: pip install 'auditlens[sigma]'"
        ) from exc
    return sigma


def load_sigma(paths: str | Path | Sequence[str | Path]) -> list[SigmaRule]:
    """Load and compile Sigma rules from files and folders (``*.yml``/``*.yaml``, recursively).

    Correlation rules may reference rules of any of the files. Rules referenced by a
    correlation are not reported on their own (unless the correlation says
    ``generate: true``): they are its input.

    Raises:
        SigmaRuleError: a file cannot be read or parsed, or a rule uses what auditlens cannot
            run (the message names the file, rule and field).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "r.yml").write_text(
        ...     "title: Logins\\nid: 0b8c7c1e-0000-4000-8000-00000000000a\\n"
        ...     "logsource: {product: auditlens}\\n"
        ...     "detection: {s: {action: auth.login}, condition: s}\\n")
        >>> [r.title for r in load_sigma(folder)]
        ['Logins']
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yml", ".yaml")))
        elif p.is_file():
            files.append(p)
        else:
            raise SigmaRuleError(str(p), None, "file", "no such file or folder")
    texts = []
    for f in files:
        try:
            texts.append((f.read_text(encoding="utf-8"), str(f)))
        except OSError as exc:
            raise SigmaRuleError(str(f), None, "file", exc.strerror or "cannot be read") from None
    return _compile_texts(texts)


def parse_sigma(text: str, source: str = "<sigma>") -> list[SigmaRule]:
    """Compile the Sigma rules of one YAML text (one or several documents)."""
    return _compile_texts([(text, source)])


def _compile_texts(texts: list[tuple[str, str]]) -> list[SigmaRule]:
    _sigma()
    from sigma.collection import (
        SigmaCollection,  # lazy: pySigma is the optional extra auditlens[sigma]
    )
    from sigma.exceptions import (  # lazy: pySigma is the optional extra auditlens[sigma]
        SigmaError,
        SigmaRuleLocation,
    )

    collections = []
    origin: dict[int, tuple[str, str]] = {}
    for text, source in texts:
        try:
            coll = SigmaCollection.from_yaml(
                text, source=SigmaRuleLocation(Path(source)), resolve_references=False
            )
        except (SigmaError, ValueError) as exc:
            raise SigmaRuleError(source, None, "rule", _sigma_message(exc)) from None
        for r in coll.rules:
            origin[id(r)] = (text, source)
        collections.append(coll)
    try:
        merged = SigmaCollection.merge(collections, resolve_references=True)
    except SigmaError as exc:
        src = texts[0][1] if len(texts) == 1 else "<rules>"
        raise SigmaRuleError(src, None, "correlation.rules", _sigma_message(exc)) from None
    compiled: dict[int, SigmaRule] = {}
    out: list[SigmaRule] = []
    for r in merged.rules:  # referenced rules come first
        text, source = origin.get(id(r), ("", "<sigma>"))
        rule = _compile_rule(r, text, source, compiled)
        compiled[id(r)] = rule
        if r._output:
            out.append(rule)
    if not out:
        raise SigmaRuleError(texts[0][1] if texts else "<sigma>", None, "rule", "no rules found")
    return out


def _sigma_message(exc: Exception) -> str:
    return str(exc).split(" in /")[0]


def _compile_rule(r: Any, text: str, source: str, compiled: dict[int, SigmaRule]) -> SigmaRule:
    from sigma.correlations import (
        SigmaCorrelationRule,  # lazy: pySigma is the optional extra auditlens[sigma]
    )

    rule_id = str(r.id) if r.id else (r.name or r.title)
    ctx = _Ctx(r.title or rule_id, rule_id, source, text)
    level = str(r.level).lower() if r.level else "medium"
    severity = _SEVERITY.get(level, "medium")
    desc = r.description or ""
    if isinstance(r, SigmaCorrelationRule):
        corr = _correlation(r, ctx, compiled)
        return SigmaRule(rule_id, ctx.title, severity, source, (), corr, bool(r._output), desc)
    for name, detection in r.detection.detections.items():
        _check_modifiers(detection, f"detection.{name}", ctx)
    branches: list[Branch] = []
    for condition in r.detection.parsed_condition:
        for conj in _dnf(condition.parsed, False, ctx):
            branches.append(_branch(conj, ctx))
    if len(branches) > MAX_BRANCHES:
        raise ctx.fail(
            "detection.condition",
            f"expands to {len(branches)} alternatives (each one SQL query); the limit is "
            f"{MAX_BRANCHES}: group values of one field in one selection instead",
        )
    return SigmaRule(rule_id, ctx.title, severity, source, tuple(branches), None, True, desc)


def _check_modifiers(detection: Any, where: str, ctx: _Ctx) -> None:
    from sigma.rule.detection import (
        SigmaDetection,  # lazy: pySigma is the optional extra auditlens[sigma]
    )

    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            _check_modifiers(item, where, ctx)
            continue
        fname = item.field or "keywords"
        for mod in item.modifiers:
            mname = _modifier_name(mod)
            if mname not in _MODIFIERS:
                raise ctx.fail(
                    f"{where}.{fname}|{mname}",
                    f"modifier {mname!r} cannot be pushed down to auditlens filters; supported: "
                    f"{', '.join(sorted(_MODIFIERS))}",
                )
        if item.field is not None:
            _check_field(item.field, f"{where}.{fname}", ctx)


def _modifier_name(mod: type) -> str:
    from sigma.modifiers import (
        modifier_mapping,  # lazy: pySigma is the optional extra auditlens[sigma]
    )

    for name, cls in modifier_mapping.items():
        if cls is mod:
            return str(name)
    return mod.__name__


def _check_field(name: str, where: str, ctx: _Ctx) -> None:
    if name in FIELDS or name in _RESIDUAL or name.startswith("details."):
        return
    known = ", ".join([*FIELDS, *_RESIDUAL, "details.<path>"])
    raise ctx.fail(where, f"unknown field {name!r}; auditlens fields: {known}")


def _dnf(node: Any, neg: bool, ctx: _Ctx) -> list[list[_Leaf]]:
    from sigma.conditions import (  # lazy: pySigma is the optional extra auditlens[sigma]
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if isinstance(node, ConditionNOT):
        return _dnf(node.args[0], not neg, ctx)
    if isinstance(node, ConditionAND | ConditionOR):
        parts = [_dnf(a, neg, ctx) for a in node.args]
        conjunctive = isinstance(node, ConditionAND) != neg
        if conjunctive:
            out = [list(itertools.chain(*combo)) for combo in itertools.product(*parts)]
        else:
            out = _merge_or([c for p in parts for c in p])
        if len(out) > MAX_BRANCHES:
            raise ctx.fail(
                "detection.condition",
                f"expands to more than {MAX_BRANCHES} alternatives (each one SQL query)",
            )
        return out
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return [[_leaf(node.field, node.value, neg, ctx)]]
    if isinstance(node, ConditionValueExpression):
        return [[_keyword(node.value, neg, ctx)]]
    raise ctx.fail("detection.condition", f"cannot compile {type(node).__name__}")


def _merge_or(conjs: list[list[_Leaf]]) -> list[list[_Leaf]]:
    """``a = x OR a = y`` → ``a IN (x, y)``: one clause, one query (column-wise conditions
    alone in their alternative become one OR expression)."""
    out: list[list[_Leaf]] = []
    by_field: dict[str, _Leaf] = {}
    for conj in conjs:
        if len(conj) == 1 and conj[0].expr is not None:  # column-wise: one OR expression
            if "" in by_field:
                merged = by_field[""]
                merged.expr = merged.expr | conj[0].expr  # type: ignore[operator]
                continue
            copy = _Leaf("", (), False, conj[0].expr)
            by_field[""] = copy
            out.append([copy])
        elif len(conj) == 1 and not conj[0].negate:
            leaf = conj[0]
            if leaf.field in by_field:
                merged = by_field[leaf.field]
                merged.values = merged.values + tuple(
                    v for v in leaf.values if v not in merged.values
                )
                continue
            copy = _Leaf(leaf.field, leaf.values)
            by_field[leaf.field] = copy
            out.append([copy])
        else:
            out.append(conj)
    return out


def _pattern(value: Any, where: str, ctx: _Ctx, *, wildcards: bool) -> str:
    """A Sigma string as a filter value (``*`` wildcards kept where the field takes them)."""
    from sigma.types import (  # lazy: pySigma is the optional extra auditlens[sigma]
        SigmaBool,
        SigmaNumber,
        SigmaString,
        SpecialChars,
    )

    if isinstance(value, SigmaNumber | SigmaBool):
        return str(value).lower()
    if not isinstance(value, SigmaString):
        raise ctx.fail(where, f"a {type(value).__name__} value cannot be compiled here")
    parts: list[str] = []
    for part in value.s:
        if isinstance(part, str):
            if "*" in part:
                raise ctx.fail(where, "a literal '*' cannot be matched (it is the wildcard)")
            parts.append(part)
        elif part == SpecialChars.WILDCARD_MULTI and wildcards:
            parts.append("*")
        elif part == SpecialChars.WILDCARD_MULTI:
            raise ctx.fail(
                where,
                "this field matches exact values only (contains/startswith/endswith and * "
                "work on action, actor, user_agent, details.<path> and keywords)",
            )
        else:
            raise ctx.fail(where, "the single-character wildcard '?' is not supported")
    return "".join(parts)


def _regex(value: Any, where: str, ctx: _Ctx) -> str:
    text = _pattern(value, where, ctx, wildcards=True)
    return "(?i)^" + ".*".join(re.escape(p) for p in text.split("*")) + "$"


def _leaf(name: str, value: Any, neg: bool, ctx: _Ctx) -> _Leaf:
    from sigma.types import (  # lazy: pySigma is the optional extra auditlens[sigma]
        SigmaCIDRExpression,
        SigmaFieldReference,
    )

    where = f"detection.{name}"
    if isinstance(value, SigmaFieldReference):
        left, right = _column(name, where, ctx), _column(value.field, where, ctx)
        return _residual(pl.col(left) == pl.col(right), neg)
    if name in _RESIDUAL or name.startswith("details."):
        if isinstance(value, SigmaCIDRExpression):
            raise ctx.fail(where, "cidr applies to ip_address only")
        col = (
            pl.col("details").str.json_path_match("$." + name[len("details.") :])
            if name.startswith("details.")
            else pl.col(COLUMNS[name])
        )
        return _residual(col.str.contains(_regex(value, where, ctx)), neg)
    keyword, wild = FIELDS[name]
    if isinstance(value, SigmaCIDRExpression):
        if keyword != "ip":
            raise ctx.fail(where, "cidr applies to ip_address only")
        raw = value.cidr
    else:
        raw = _pattern(value, where, ctx, wildcards=wild)
    try:
        kwargs: dict[str, Any] = {keyword: raw}
        clause = Filter.from_kwargs(**kwargs).clauses[0]
    except FilterError as exc:
        raise ctx.fail(where, str(exc)) from None
    return _Leaf(clause.field, clause.values, neg)


def _keyword(value: Any, neg: bool, ctx: _Ctx) -> _Leaf:
    text = _pattern(value, "detection.keywords", ctx, wildcards=True).strip("*")
    if "*" in text or not text:
        raise ctx.fail(
            "detection.keywords", "keywords match a substring: wildcards only at the ends"
        )
    return _Leaf("text", (text,), neg)


def _residual(expr: pl.Expr, neg: bool) -> _Leaf:
    expr = expr.fill_null(False)
    return _Leaf("", (), False, ~expr if neg else expr)


def _column(name: str, where: str, ctx: _Ctx) -> str:
    if name not in COLUMNS:
        raise ctx.fail(
            where,
            f"{name!r} is not a field a reference can compare; use one of {', '.join(COLUMNS)}",
        )
    return COLUMNS[name]


def _branch(conj: list[_Leaf], ctx: _Ctx) -> Branch:
    clauses = tuple(
        Clause(leaf.field, leaf.values, leaf.negate) for leaf in conj if leaf.expr is None
    )
    flt = Filter(clauses)
    try:
        check_limits(flt)
    except FilterError as exc:
        raise ctx.fail("detection", str(exc)) from None
    return Branch(flt, tuple(leaf.expr for leaf in conj if leaf.expr is not None))


def _correlation(r: Any, ctx: _Ctx, compiled: dict[int, SigmaRule]) -> Correlation:
    kind = str(r.type).lower()
    if kind not in ("event_count", "value_count", "temporal"):
        raise ctx.fail(
            "correlation.type",
            f"{kind!r} is not supported; auditlens runs event_count, value_count and temporal",
        )
    rules = []
    for ref in r.rules or []:
        base = compiled.get(id(ref.rule))
        if base is None:
            raise ctx.fail("correlation.rules", f"{ref.reference!r} is not a rule loaded with it")
        rules.append(base)
    for g in r.group_by or []:
        if g not in COLUMNS:
            raise ctx.fail(
                "correlation.group-by", f"{g!r} is not a field; use one of {', '.join(COLUMNS)}"
            )
    if len(r.aliases):
        raise ctx.fail("correlation.aliases", "field aliases are not supported")
    if kind == "temporal":
        op, count, fld = ">=", len(rules), None
    else:
        cond = r.condition
        op_name = cond.op.name.lower()
        if op_name not in _OPS:
            raise ctx.fail(
                "correlation.condition",
                f"{op_name!r} is not supported: auditlens correlations fire on gt, gte or eq "
                "(for 'fewer than' use an alert rule with count: \"< N\")",
            )
        op, count = _OPS[op_name], int(cond.count)
        fld = None
        if kind == "value_count":
            ref = cond.fieldref
            fld = ref[0] if isinstance(ref, list) else ref
            if fld is None or fld not in COLUMNS:
                raise ctx.fail(
                    "correlation.condition.field",
                    f"value_count needs a field among {', '.join(COLUMNS)}, got {fld!r}",
                )
    return Correlation(
        kind,
        tuple(rules),
        timedelta(seconds=r.timespan.seconds),
        tuple(r.group_by or ()),
        op,
        count,
        fld,
    )


# --- evaluation -------------------------------------------------------------------------


def matches(
    store: Store,
    rule: SigmaRule,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    where: Any = None,
) -> pl.DataFrame:
    """The entries a detection rule matches (one SQL query per branch, in time order).

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> _ = store.append({"actor": {"email": "jane@company.com", "type": "user"},
        ...     "action": "auth.mfa_disabled", "result": "success",
        ...     "organization_id": "2b6f0cc9-4b8a-4bd8-9d5e-0a1f6f2f4a11"})
        >>> (rule,) = parse_sigma("title: MFA\\nid: 0b8c7c1e-0000-4000-8000-00000000000b\\n"
        ...     "logsource: {product: auditlens}\\n"
        ...     "detection: {s: {action|contains: mfa}, condition: s}\\n")
        >>> matches(store, rule)["action"].to_list()
        ['auth.mfa_disabled']
    """
    parts = []
    bounds: dict[str, Any] = {k: v for k, v in (("start", start), ("end", end)) if v}
    for branch in rule.branches:
        flt = branch.filter
        if where is not None:
            flt = flt & (Filter.coerce(where) if not isinstance(where, str) else _search(where))
        frame: pl.DataFrame = store.query(flt, backend="polars", order="asc", **bounds)
        for expr in branch.residual:
            frame = frame.filter(expr)
        parts.append(frame)
    if not parts:
        return store.query(backend="polars", limit=0)
    out = pl.concat(parts) if len(parts) > 1 else parts[0]
    return out.unique("audit_id", keep="first", maintain_order=True).sort(
        "timestamp", maintain_order=True
    )


def _search(text: str) -> Filter:

    return parse_search(text)


def _group_part(field: str) -> pl.Expr:
    """One group-by field's value; ``actor`` is the account: its email, else its stable id
    (SSH accounts, IAM principals and Okta ids have no email)."""
    if field == "actor":
        return pl.coalesce("actor_email", "actor_user_id")
    return pl.col(COLUMNS[field])


def _group_key(group_by: Sequence[str]) -> pl.Expr:
    """The correlation's group; null when every group-by field is missing — such events
    are left out (entries with no account are not one account)."""
    if not group_by:
        return pl.lit("")
    parts = [_group_part(g) for g in group_by]
    if len(parts) == 1:
        return parts[0]
    known = pl.any_horizontal([p.is_not_null() for p in parts])
    joined = pl.concat_str([p.fill_null("(none)") for p in parts], separator=" | ")
    return pl.when(known).then(joined)


def detect(
    store: Store,
    rules: str | Path | SigmaRule | Iterable[SigmaRule] | Sequence[str | Path],
    *,
    since: str | datetime | timedelta | None = None,
    until: str | datetime | None = None,
    where: Any = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Run Sigma rules on the store; a findings frame (detector ``sigma:<rule id>``).

    ``since``/``until`` bound the windows' ends (durations count back from now);
    correlations read one timespan more before ``since`` so a burst straddling it is
    whole. ``where`` (search text or keyword filters) narrows every query further.

    Example:
        >>> import auditlens as al
        >>> store = al.open_store("sqlite://")
        >>> rules = parse_sigma('title: X\\nid: 0b8c7c1e-0000-4000-8000-000000000002\\n'
        ...     'logsource: {product: auditlens}\\n'
        ...     'detection: {sel: {action: auth.failed}, condition: sel}\\n')
        >>> detect(store, rules).height
        0
    """

    compiled = _as_rules(rules)
    now = now or datetime.now(UTC)
    start = _when(since, now) if since is not None else None
    end = _when(until, now) if until is not None else None
    parts = [_run(store, r, start, end, where) for r in compiled]
    parts = [p for p in parts if not p.is_empty()]
    if not parts:
        return empty_findings()
    return pl.concat(parts).sort(["window_start", "detector", "subject"])


def _as_rules(rules: Any) -> list[SigmaRule]:
    if isinstance(rules, SigmaRule):
        return [rules]
    if isinstance(rules, str | Path):
        return load_sigma(rules)
    items = list(rules)
    if all(isinstance(r, SigmaRule) for r in items):
        return items
    return load_sigma(items)


def _when(value: str | datetime | timedelta, now: datetime) -> datetime:
    from auditlens.alerts.evaluate import (
        _when as when,  # lazy: auditlens.alerts imports this module for Sigma triggers
    )

    return when(value, now)


def _run(
    store: Store, rule: SigmaRule, start: datetime | None, end: datetime | None, where: Any
) -> pl.DataFrame:

    details = pl.lit(
        orjson.dumps({"rule_id": rule.id, "title": rule.title, "source": rule.source}).decode()
    )
    corr = rule.correlation
    if corr is None:
        frame = matches(store, rule, start=start, end=end, where=where)
        if frame.is_empty():
            return empty_findings()
        rows = frame.select(
            "organization_id",
            pl.coalesce("actor_email", "actor_user_id", pl.lit("(unknown)")).alias("key"),
            pl.col("timestamp").alias("window_start"),
            pl.col("timestamp").alias("window_end"),
            pl.lit(1, pl.UInt32).alias("count"),
            pl.concat_list([pl.col("audit_id")]).alias("audit_ids"),
            pl.col("action"),
        )
        summary = pl.lit(f"{rule.title}: ") + pl.col("action") + pl.lit(" by ") + pl.col("key")
        return build_findings(rows, rule.name, rule.severity, "actor", summary, details)
    lo = start - corr.timespan if start is not None else None
    tagged = []
    for i, base in enumerate(corr.rules):
        m = matches(store, base, start=lo, end=end, where=where)
        tagged.append(m.with_columns(pl.lit(i).alias("_rule")))
    events = pl.concat(tagged) if tagged else pl.DataFrame()
    if events.is_empty():
        return empty_findings()
    ev = events.select(
        "organization_id",
        _group_key(corr.group_by).alias("key"),
        "timestamp",
        "audit_id",
        (_group_part(corr.field) if corr.field else pl.col("_rule")).alias("_value"),
    ).unique("audit_id", keep="first")
    ev = ev.filter(pl.col("key").is_not_null())
    if ev.is_empty():
        return empty_findings()
    flag_value = corr.type in ("value_count", "temporal")
    ev = _rolling_distinct(ev, corr.timespan) if flag_value else _rolling(ev, corr.timespan)
    cond = {">": pl.col("_n") > corr.count, ">=": pl.col("_n") >= corr.count}.get(
        corr.op, pl.col("_n") == corr.count
    )

    rows = merge_flagged_windows(
        ev.sort(["organization_id", "key", "timestamp"]), cond, corr.timespan
    )
    if start is not None:
        rows = rows.filter(pl.col("window_end") >= start)
    if rows.is_empty():
        return empty_findings()
    what = {"event_count": "entries", "value_count": f"distinct {corr.field}", "temporal": "rules"}
    group = ", ".join(corr.group_by) or "organization"
    summary = (
        pl.lit(f"{rule.title}: ")
        + pl.col("count").cast(pl.Utf8)
        + pl.lit(
            f" entries ({what[corr.type]} {corr.op} {corr.count} within {human(corr.timespan)}) "
            f"for {group} "
        )
        + pl.col("key")
    )
    subject_type = (
        corr.group_by[0]
        if len(corr.group_by) == 1
        else (group if corr.group_by else "organization")
    )
    if not corr.group_by:
        rows = rows.with_columns(pl.col("organization_id").alias("key"))
    return build_findings(rows, rule.name, rule.severity, subject_type, summary, details)


def alert_rules(paths: str | Path | Sequence[str | Path]) -> list[Rule]:
    """Alert rules (``auditlens alerts check/watch --sigma``) for the Sigma rules in ``paths``:
    one per rule, named ``sigma:<id>``, with the rule's level as severity and no notification
    channel (``check`` prints them; ``watch`` reports them as they fire).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.yml"
        >>> _ = path.write_text("title: Logins\\nid: 0b8c7c1e-0000-4000-8000-00000000000c\\n"
        ...     "logsource: {product: auditlens}\\n"
        ...     "detection: {s: {action: auth.login}, condition: s}\\n")
        >>> [(r.name, r.severity) for r in alert_rules(path)]
        [('sigma:0b8c7c1e-0000-4000-8000-00000000000c', 'medium')]
    """
    from auditlens.alerts.rules import (  # lazy: auditlens.alerts imports this module
        Notification,
        Rule,
        Trigger,
    )

    out = []
    for r in load_sigma(paths):
        window = r.correlation.timespan if r.correlation else timedelta(minutes=5)
        out.append(
            Rule(
                r.name,
                Trigger(sigma=r, window=window),
                r.severity,
                Notification(),
                window,
                r.source,
            )
        )
    return out


def _rolling(ev: pl.DataFrame, window: timedelta) -> pl.DataFrame:

    return rolling_count(ev, window)


def _rolling_distinct(ev: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Add ``_n``: distinct ``_value`` of the same (organization, key) in (t − window, t]."""
    ev = ev.sort(["organization_id", "key", "timestamp"])
    counts = ev.rolling(
        index_column="timestamp",
        period=window,
        closed="right",
        group_by=["organization_id", "key"],
    ).agg(pl.col("_value").drop_nulls().n_unique().alias("_n"))
    # rows at the same instant share one window, so (organization, key, time) identifies it
    keys = ["organization_id", "key", "timestamp"]
    return ev.join(counts.unique(keys), on=keys, how="left", nulls_equal=True)
