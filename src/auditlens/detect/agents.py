"""User-agent families: what kind of client made a call, with tool tags normalised.

A family is a short lower-case name that stays the same across versions and runs:
``chrome``, ``firefox``, ``curl``, ``python-requests``, ``aws-cli``, ``boto3``,
``aws-sdk-go``, ``terraform``, ``aws-console``… Browsers and common libraries are
recognised by `ua-parser <https://github.com/ua-parser/uap-python>`_ (the uap-core rules);
automation that ua-parser does not know is recognised first:

* tool tags with a run id, ``stratus-red-team_<uuid>`` → ``stratus-red-team`` (the id
  changes every run, the tool does not);
* bracketed agents (CloudTrail wraps SDK agents: ``[aws-sdk-go/1.44 (go1.20; linux)]``)
  are read without their brackets;
* infrastructure tools anywhere in the string (``APN/1.0 HashiCorp/1.0 Terraform/1.6.0 …
  aws-sdk-go/1.49``) → ``terraform``, ``pulumi``, ``cloudformation``;
* AWS's own callers: ``console.amazonaws.com`` / ``signin.amazonaws.com`` →
  ``aws-console``, ``AWS Internal`` → ``aws-internal``, ``<service>.amazonaws.com`` →
  ``aws-service``.

Anything else falls back to the text before the first ``/`` or space, lower-cased,
with ids and version numbers removed.

Parsing happens once per *distinct* agent of a column (audit logs repeat a handful of
agents millions of times), so :func:`family_expr` costs one dictionary replace per row.

Example:
    >>> agent_family("stratus-red-team_4c9ae9b5-1b8a-4b0a-9e2b-6f3d7c1e2a10")
    'stratus-red-team'
    >>> agent_family("[aws-sdk-go/1.44.0 (go1.20; linux; amd64)]")
    'aws-sdk-go'
    >>> agent_family("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
    'firefox'
"""

from __future__ import annotations

import re
from functools import lru_cache

import polars as pl

__all__ = ["agent_family", "family_expr"]

_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
#: ``tool_<uuid>`` / ``tool-<uuid>`` / ``tool_<long hex>``: a tool tag with a run id
_TOOL_TAG = re.compile(rf"^([A-Za-z][\w.-]*?)[_-](?:{_UUID}|[0-9a-fA-F]{{16,}})\b")
#: automation recognised anywhere in the string, before ua-parser's first match
_TOOLS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), fam)
    for p, fam in (
        (r"\bterraform(?:/|-provider)", "terraform"),
        (r"\bpulumi", "pulumi"),
        (r"\bcloudformation\b", "cloudformation"),
        (r"^(?:console|signin)\.amazonaws\.com$", "aws-console"),
        (r"^aws internal\b", "aws-internal"),
        (r"^[a-z0-9-]+\.amazonaws\.com$", "aws-service"),
        (r"^aws-cli/", "aws-cli"),
        (r"\baws-cli/", "aws-cli"),
        (r"^(?:boto3|botocore)/", "boto3"),
        (r"^(aws-sdk-[a-z0-9-]+)/", ""),  # family = the SDK's own name
        (r"^(?:google-api-|gcloud|google-cloud-sdk)", "gcloud"),
        (r"^azure-?cli|^azsdk", "azure-cli"),
        (r"^kubectl/", "kubectl"),
        (r"^octokit|^github-cli|^gh/", "github-cli"),
    )
)
#: ua-parser family names that read better in the usual tool spelling
_RENAMES = {"python requests": "python-requests", "edge": "edge", "mobile safari": "safari"}
_VERSIONISH = re.compile(rf"(?:[_-]?{_UUID})|(?:[_-]?v?\d+(?:\.\d+)*$)")


@lru_cache(maxsize=65536)
def agent_family(agent: str | None) -> str | None:
    """The family of one user-agent string (None for no agent).

    Example:
        >>> agent_family("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2")
        'aws-cli'
        >>> agent_family("APN/1.0 HashiCorp/1.0 Terraform/1.6.0 (+https://www.terraform.io)")
        'terraform'
        >>> agent_family("python-requests/2.32.3")
        'python-requests'
    """
    if agent is None:
        return None
    text = agent.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    if not text:
        return None
    tag = _TOOL_TAG.match(text)
    if tag:
        return tag.group(1).lower()
    for pattern, fam in _TOOLS:
        hit = pattern.search(text)
        if hit:
            return fam or hit.group(1).lower()
    from ua_parser import parse_user_agent  # lazy: loads its rule set only when an agent is parsed

    parsed = parse_user_agent(text)
    if parsed is not None and parsed.family and parsed.family != "Other":
        name = parsed.family.lower()
        return _RENAMES.get(name, name.replace(" ", "-"))
    first = re.split(r"[/\s;(]", text, maxsplit=1)[0]
    return _VERSIONISH.sub("", first).lower() or text.lower()


def family_expr(col: str = "user_agent") -> pl.Expr:
    """:func:`agent_family` of every row of ``col``, parsing each distinct agent once.

    Example:
        >>> df = pl.DataFrame({"user_agent": ["curl/8.5.0", None, "curl/7.1"]})
        >>> df.select(family_expr())["user_agent"].to_list()
        ['curl', None, 'curl']
    """
    return pl.col(col).map_batches(_families, return_dtype=pl.Utf8)


def _families(agents: pl.Series) -> pl.Series:
    values = agents.cast(pl.Utf8)
    distinct = values.drop_nulls().unique().to_list()
    mapping = {a: agent_family(a) for a in distinct}
    return values.replace_strict(mapping, default=None, return_dtype=pl.Utf8)
