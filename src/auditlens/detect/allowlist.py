"""An allow-list of known automation: findings it explains are downgraded or suppressed,
and say why.

A Terraform destroy is a bulk deletion, a CI runner probing permissions is a failure
burst, a nightly backup is a mass export. Each rule names what the automation looks
like — actors, user-agent families, IP ranges, optionally the detectors and
organizations it applies to — and what to do with its findings:

.. code-block:: yaml

    automation:
      - name: terraform-ci
        reason: Terraform runs from the CI runners (change ticket required)
        actors: ["ci-bot@acme.example", "arn:aws:iam::*:role/terraform-*"]
        agents: [terraform]            # families, as auditlens.detect.agents names them
        networks: [10.20.0.0/16]       # CIDRs
        detectors: [bulk_deletions, failure_bursts]   # default: every detector
        action: downgrade              # downgrade (default) or suppress
        severity: low                  # what downgrade lowers to (default low)

Within a rule every field given must match (``*`` and ``?`` are wildcards in actors and
agents; case does not matter), and a finding is explained only when *every* entry of its
evidence matches: an attacker's entry mixed into a burst keeps the finding as it was.
The first matching rule wins. A downgraded finding keeps its id, gets the rule's
severity (never a higher one), ``[allow-listed: <reason>]`` at the end of its summary and
``details.allowlisted`` (rule, reason, action, severity before). Suppressed findings are
left out unless ``keep_suppressed=True`` (then they carry the same details).

Example:
    >>> rules = load_allowlist([{"name": "ci", "reason": "CI runner", "agents": ["terraform"]}])
    >>> rules.rules[0].agents
    ('terraform',)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import polars as pl
import yaml

if TYPE_CHECKING:
    import pandas as pd

from auditlens.detect.agents import family_expr
from auditlens.detect.findings import SEVERITIES, as_polars, return_like
from auditlens.errors import ConfigError, YamlFileError
from auditlens.yamlnodes import compose_documents, plain

__all__ = ["AllowRule", "Allowlist", "AllowlistSource", "apply_allowlist", "load_allowlist"]

_ACTIONS = ("downgrade", "suppress")
_FIELDS = {"name", "reason", "actors", "agents", "networks", "detectors", "organizations"}
_FIELDS |= {"action", "severity"}


@dataclass(frozen=True)
class AllowRule:
    """One kind of known automation and what to do with the findings it explains."""

    name: str
    reason: str
    actors: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    action: str = "downgrade"
    severity: str = "low"


@dataclass(frozen=True)
class Allowlist:
    """Rules in order (the first that explains a finding wins)."""

    rules: tuple[AllowRule, ...] = ()
    source: str = "<parameters>"


#: what an allow-list may be given as: an :class:`Allowlist`, a YAML/JSON file, a mapping
#: (``{"automation": [...]}``) or a list of rule mappings (see :func:`load_allowlist`).
AllowlistSource = Allowlist | str | Path | Mapping[str, Any] | Sequence[Any]


class _Where:
    """Where a rule came from, for errors: the source, the rule's index and field lines."""

    def __init__(self, source: str, index: int, line: int | None, fields: dict[str, int]) -> None:
        self.source, self.index, self.line, self.fields = source, index, line, fields

    def error(self, field_name: str, message: str) -> YamlFileError:
        line = self.fields.get(field_name, self.line)
        path = f"automation[{self.index}]" + (f".{field_name}" if field_name else "")
        return YamlFileError(self.source, line, path, message)


def _strings(value: Any, where: _Where, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise where.error(field_name, f"expected a string or a list of strings, got {value!r}")


def _rule(raw: Any, where: _Where) -> AllowRule:
    from auditlens.detect import DETECTORS  # lazy: auditlens.detect imports this module

    if not isinstance(raw, Mapping):
        raise where.error("", f"a rule is a mapping (name, reason, actors…), got {raw!r}")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise where.error(str(unknown[0]), f"unknown field; known: {', '.join(sorted(_FIELDS))}")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise where.error("reason", "every rule needs a reason (it is shown on its findings)")
    name = raw.get("name", reason)
    if not isinstance(name, str):
        raise where.error("name", f"expected text, got {name!r}")
    actors = _strings(raw.get("actors"), where, "actors")
    agents = _strings(raw.get("agents"), where, "agents")
    networks = _strings(raw.get("networks"), where, "networks")
    for net in networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise where.error("networks", f"{net!r} is not an address or CIDR") from None
    if not (actors or agents or networks):
        raise where.error(
            "",
            "a rule needs at least one of actors, agents, networks "
            "(a rule matching everything would hide every finding)",
        )
    detectors = _strings(raw.get("detectors"), where, "detectors")
    bad = [d for d in detectors if d not in DETECTORS]
    if bad:
        raise where.error(
            "detectors", f"unknown detector {', '.join(bad)}; known: {', '.join(DETECTORS)}"
        )
    action = raw.get("action", "downgrade")
    if action not in _ACTIONS:
        raise where.error("action", f"expected downgrade or suppress, got {action!r}")
    severity = raw.get("severity", "low")
    if severity not in SEVERITIES:
        raise where.error("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    return AllowRule(
        name=name,
        reason=reason.strip(),
        actors=actors,
        agents=agents,
        networks=networks,
        detectors=detectors,
        organizations=_strings(raw.get("organizations"), where, "organizations"),
        action=action,
        severity=severity,
    )


def load_allowlist(
    source: Allowlist | str | Path | Mapping[str, Any] | Sequence[Any],
) -> Allowlist:
    """An :class:`Allowlist` from a YAML/JSON file, a mapping (``{"automation": [...]}``)
    or a list of rule mappings. A bad rule raises :class:`~auditlens.errors.YamlFileError`
    naming the file, the line and the field (``automation[0].networks``).

    Example:
        >>> load_allowlist({"automation": [{"reason": "backup", "actors": ["backup@x.io"],
        ...     "action": "suppress"}]}).rules[0].action
        'suppress'
    """
    if isinstance(source, Allowlist):
        return source
    if isinstance(source, str | Path):
        return _from_file(Path(source))
    rules = _rules_of(source, "allow-list", None)
    return Allowlist(
        tuple(_rule(r, _Where("allow-list", i, None, {})) for i, r in enumerate(rules))
    )


def _rules_of(data: Any, source: str, line: int | None) -> list[Any]:
    rules = data.get("automation", data.get("allowlist")) if isinstance(data, Mapping) else data
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        raise YamlFileError(
            source, line, "automation", "expected a list of rules (or a mapping with automation:)"
        )
    return list(rules)


def _from_file(path: Path) -> Allowlist:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read allow-list {path}: {exc.strerror or exc}") from None
    docs = compose_documents(text, str(path))
    if not docs:
        return Allowlist((), str(path))
    root = docs[0]
    rules = _rules_of(plain(root), str(path), root.start_mark.line + 1)
    seq = root
    if isinstance(root, yaml.MappingNode):
        seq = next((v for k, v in root.value if k.value in ("automation", "allowlist")), root)
    items = seq.value if isinstance(seq, yaml.SequenceNode) else []
    out = []
    for i, raw in enumerate(rules):
        node = items[i] if i < len(items) else None
        fields: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            fields = {k.value: v.start_mark.line + 1 for k, v in node.value}
        line = node.start_mark.line + 1 if node is not None else None
        out.append(_rule(raw, _Where(str(path), i, line, fields)))
    return Allowlist(tuple(out), str(path))


def _glob(patterns: tuple[str, ...]) -> str:
    parts = [re.escape(p.lower()).replace(r"\*", ".*").replace(r"\?", ".") for p in patterns]
    return "^(" + "|".join(parts) + ")$"


def _in_networks(ips: pl.Series, networks: tuple[str, ...]) -> list[str]:
    """The distinct addresses of ``ips`` inside any of ``networks``."""
    nets = [ipaddress.ip_network(n, strict=False) for n in networks]
    inside = []
    for ip in ips.drop_nulls().unique().to_list():
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr.version == n.version and addr in n for n in nets):
            inside.append(ip)
    return inside


@overload
def apply_allowlist(
    findings: pl.DataFrame,
    entries: pl.DataFrame | pd.DataFrame,
    allowlist: AllowlistSource | None,
    keep_suppressed: bool = ...,
) -> pl.DataFrame: ...
@overload
def apply_allowlist(
    findings: pd.DataFrame,
    entries: pl.DataFrame | pd.DataFrame,
    allowlist: AllowlistSource | None,
    keep_suppressed: bool = ...,
) -> pd.DataFrame: ...
@overload
def apply_allowlist(
    findings: pl.DataFrame | pd.DataFrame,
    entries: pl.DataFrame | pd.DataFrame,
    allowlist: AllowlistSource | None,
    keep_suppressed: bool = ...,
) -> pl.DataFrame | pd.DataFrame: ...
def apply_allowlist(
    findings: pl.DataFrame | pd.DataFrame,
    entries: pl.DataFrame | pd.DataFrame,
    allowlist: AllowlistSource | None,
    keep_suppressed: bool = False,
) -> pl.DataFrame | pd.DataFrame:
    """Downgrade or suppress the findings that known automation explains (see the module).

    ``entries`` is the frame the findings came from (their evidence is looked up in it).

    Example:
        >>> from auditlens.detect.findings import empty_findings
        >>> apply_allowlist(empty_findings(), empty_findings(), None).height
        0
    """
    found, kind = _findings(findings)
    if allowlist is None or found.is_empty():
        return return_like(found, kind)
    rules = load_allowlist(allowlist).rules
    if not rules:
        return return_like(found, kind)
    frame, _ = as_polars(entries)
    evidence = (
        found.select("finding_id", "organization_id", pl.col("audit_ids").alias("audit_id"))
        .explode("audit_id")
        .join(
            frame.select(
                "organization_id",
                "audit_id",
                pl.col("actor_email").str.to_lowercase().alias("_email"),
                pl.col("actor_user_id").str.to_lowercase().alias("_uid"),
                pl.col("ip_address").alias("_ip"),
                "user_agent",
            ).unique(["organization_id", "audit_id"]),
            on=["organization_id", "audit_id"],
            how="left",
        )
    )
    evidence = evidence.with_columns(family_expr("user_agent").alias("_family"))
    decided = pl.DataFrame(schema={"finding_id": pl.Utf8, "_rule": pl.Int64})
    for i, rule in enumerate(rules):
        cond = pl.lit(True)
        if rule.actors:
            pattern = _glob(rule.actors)
            cond = cond & (
                pl.col("_email").str.contains(pattern).fill_null(False)
                | pl.col("_uid").str.contains(pattern).fill_null(False)
            )
        if rule.agents:
            cond = cond & pl.col("_family").str.contains(_glob(rule.agents)).fill_null(False)
        if rule.networks:
            inside = _in_networks(evidence["_ip"], rule.networks)
            cond = cond & pl.col("_ip").is_in(inside).fill_null(False)
        ok = (
            evidence.group_by("finding_id")
            .agg(cond.all().alias("_ok"))
            .filter(pl.col("_ok"))
            .select("finding_id", pl.lit(i, pl.Int64).alias("_rule"))
        )
        scope = found
        if rule.detectors:
            scope = scope.filter(pl.col("detector").is_in(list(rule.detectors)))
        if rule.organizations:
            scope = scope.filter(pl.col("organization_id").is_in(list(rule.organizations)))
        ok = ok.filter(
            pl.col("finding_id").is_in(scope["finding_id"].implode())
            & ~pl.col("finding_id").is_in(decided["finding_id"].implode())
        )
        decided = pl.concat([decided, ok])
    if decided.is_empty():
        return return_like(found, kind)
    table = pl.DataFrame(
        {
            "_rule": list(range(len(rules))),
            "_name": [r.name for r in rules],
            "_reason": [r.reason for r in rules],
            "_action": [r.action for r in rules],
            "_to": [r.severity for r in rules],
        },
        schema_overrides={"_rule": pl.Int64},
    )
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    marked = found.join(decided.join(table, on="_rule"), on="finding_id", how="left")
    hit = pl.col("_rule").is_not_null()
    lower = pl.col("_to").replace_strict(rank, default=None, return_dtype=pl.Int64) < pl.col(
        "severity"
    ).replace_strict(rank, default=None, return_dtype=pl.Int64)
    note = pl.struct(
        pl.col("_name").alias("rule"),
        pl.col("_reason").alias("reason"),
        pl.col("_action").alias("action"),
        pl.col("severity").alias("severity_was"),
    ).struct.json_encode()
    details = pl.col("details").fill_null("{}").str.strip_chars()
    merged = (
        pl.when(details == "{}")
        .then(pl.concat_str(pl.lit('{"allowlisted": '), note, pl.lit("}")))
        .otherwise(
            pl.concat_str(
                details.str.strip_suffix("}"), pl.lit(', "allowlisted": '), note, pl.lit("}")
            )
        )
    )
    downgrade = hit & (pl.col("_action") == "downgrade")
    out = marked.with_columns(
        pl.when(downgrade & lower)
        .then(pl.col("_to"))
        .otherwise(pl.col("severity"))
        .alias("severity"),
        pl.when(downgrade)
        .then(
            pl.concat_str(
                pl.col("summary"), pl.lit(" [allow-listed: "), pl.col("_reason"), pl.lit("]")
            )
        )
        .otherwise(pl.col("summary"))
        .alias("summary"),
        pl.when(hit).then(merged).otherwise(pl.col("details")).alias("details"),
    )
    if not keep_suppressed:
        out = out.filter(~(hit & (pl.col("_action") == "suppress")).fill_null(False))
    return return_like(out, kind)


def _findings(findings: Any) -> tuple[pl.DataFrame, str]:
    kind = type(findings).__module__.split(".")[0]
    frame = pl.from_pandas(findings) if kind == "pandas" else findings
    if not isinstance(frame, pl.DataFrame):
        raise ConfigError(f"findings must be a pandas or polars DataFrame, got {type(findings)}")
    return frame, kind
