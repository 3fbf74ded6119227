"""Privilege escalation: someone granting themselves power, or a principal made admin
just after it was created.

* **self-grant**: a successful grant (a role change, a member added, a policy attached, a
  group joined…) whose target is the actor itself, of an admin-like privilege or of one the
  entry does not name (``critical`` for admin-like, else ``high``);
* **new principal made admin**: a principal created (invited, created, joined) and given
  an admin-like privilege within ``window`` of its creation — or created with one (``high``).

Grants, creations and admin-like privileges are recognised by patterns that cover the
catalogue (``user.role_changed``, ``application.member_added``, ``user.invited``…) and
imported logs (``iam.attach_user_policy`` with ``AdministratorAccess``,
``iam.add_user_to_group``, ``iam.create_user``…); each is a parameter.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> df = pl.DataFrame({"audit_id": ["a"], "timestamp": [datetime(2025, 1, 7, tzinfo=UTC)],
    ...     "action": ["user.role_changed"], "result": ["success"], "organization_id": ["o"],
    ...     "actor_email": ["eve@x.io"], "resource_name": ["eve@x.io"],
    ...     "details": ['{"before": {"role": "member"}, "after": {"role": "admin"}}']})
    >>> privilege_escalation(df)[["severity", "subject"]].rows()
    [('critical', 'eve@x.io')]
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import polars as pl

from auditlens.detect.findings import (
    FrameT,
    actions_matching,
    as_polars,
    build_findings,
    check_regex,
    empty_findings,
    human,
    parse_window,
    return_like,
)

__all__ = [
    "ADMIN_PATTERN",
    "CREATE_PATTERN",
    "GRANT_PATTERN",
    "privilege_escalation",
]

#: actions that give a principal a role, a permission or a group
GRANT_PATTERN = (
    r"(?i)(role_changed|role_assigned|member_added|added_to_group|add_user_to_group"
    r"|attach_(user|role|group)_policy|put_(user|role|group)_policy|add_member|add_role"
    r"|set_role|update_role|assign_role|grant|privilege|promot)"
)
#: actions that create a principal
CREATE_PATTERN = (
    r"(?i)(^user\.(invited|created|joined)$|create_(user|role|service_account|login_profile)"
    r"|user_created|member_invited|invite_user)"
)
#: privileges that amount to administration
ADMIN_PATTERN = r"(?i)(admin|owner|superuser|root|fullaccess|poweruser|\*)"

#: details fields that name the privilege granted, first present wins
_PRIVILEGE_PATHS = (
    "$.after.role",
    "$.role",
    "$.new_role",
    "$.policy_arn",
    "$.policyArn",
    "$.policy",
    "$.policyName",
    "$.group",
    "$.groupName",
    "$.permission",
)
#: details fields that name the principal a grant is about
_TARGET_PATHS = ("$.member", "$.userName", "$.user_name", "$.user", "$.target", "$.roleName")


def _details(frame: pl.DataFrame) -> pl.Expr:
    if "details" not in frame.columns:
        return pl.lit(None, pl.Utf8)
    return pl.col("details").cast(pl.Utf8)


def _lower(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Utf8).str.to_lowercase()


def _last_segment(expr: pl.Expr) -> pl.Expr:
    """``arn:aws:iam::1:user/alice`` → ``alice`` (the name an importer's target carries)."""
    return _lower(expr).str.split("/").list.last()


def privilege_escalation(
    df: FrameT,
    window: str | timedelta = "60m",
    grant_actions: str = GRANT_PATTERN,
    create_actions: str = CREATE_PATTERN,
    admin_privileges: str = ADMIN_PATTERN,
) -> FrameT:
    """Self-grants and principals made admin within ``window`` of their creation.

    Only successful entries count (a refused grant is the failure detectors' business).
    The privilege comes from ``details`` (``after.role``, ``role``, ``policy_arn``,
    ``group``…); the target from the resource (id or name) or ``details.member`` /
    ``userName``. A self-grant matches the target against the actor's email, id and the
    last ``/`` segment of the id (an ARN's user name). The creation–grant pairing is an
    equi-join on the principal, never a cross product.
    """
    frame, kind = as_polars(df)
    span = parse_window(window)
    grants = actions_matching(frame, grant_actions, "grant_actions")
    creations = actions_matching(frame, create_actions, "create_actions")
    admin_re = check_regex(admin_privileges, "admin_privileges")
    d = _details(frame)
    # only grants and creations have their details read
    ok = frame.filter(
        (pl.col("result") == "success") & pl.col("action").is_in(sorted({*grants, *creations}))
    )
    if ok.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    privilege = pl.coalesce(*(d.str.json_path_match(p) for p in _PRIVILEGE_PATHS))
    detail_target = pl.coalesce(*(d.str.json_path_match(p) for p in _TARGET_PATHS))
    ev = ok.with_columns(
        privilege.alias("_priv"),
        _lower(pl.coalesce(detail_target, pl.col("resource_name"))).alias("_tname"),
        _lower(pl.col("resource_id")).alias("_tid"),
        pl.coalesce("actor_email", "actor_user_id", pl.lit("(unknown)")).alias("_actor"),
    ).with_columns(
        pl.col("_priv").str.contains(admin_re).fill_null(False).alias("_admin"),
    )
    parts = [_self_grants(ev, grants), _new_admins(ev, grants, creations, span)]
    out = pl.concat([p for p in parts if not p.is_empty()] or [empty_findings()])
    return cast(FrameT, return_like(out, kind))


def _self_grants(ev: pl.DataFrame, grants: list[str]) -> pl.DataFrame:
    me = [
        _lower(pl.col("actor_email")),
        _lower(pl.col("actor_user_id")),
        _last_segment(pl.col("actor_user_id")),
    ]
    is_me = pl.lit(False)
    for target in ("_tname", "_tid"):
        for mine in me:
            is_me = is_me | (pl.col(target) == mine).fill_null(False)
    hits = ev.filter(
        pl.col("action").is_in(grants) & is_me & (pl.col("_admin") | pl.col("_priv").is_null())
    )
    if hits.is_empty():
        return empty_findings()
    rows = hits.select(
        "organization_id",
        pl.col("_actor").alias("key"),
        pl.col("timestamp").alias("window_start"),
        pl.col("timestamp").alias("window_end"),
        pl.lit(1).alias("count"),
        pl.concat_list(pl.col("audit_id")).alias("audit_ids"),
        "action",
        pl.col("_priv").fill_null("(not recorded)").alias("granted"),
        "_admin",
    )
    return build_findings(
        rows,
        "privilege_escalation",
        pl.when(pl.col("_admin")).then(pl.lit("critical")).otherwise(pl.lit("high")),
        "actor",
        pl.format(
            "{} granted themselves {} ({})", pl.col("key"), pl.col("granted"), pl.col("action")
        ),
        pl.struct(
            pl.lit("self_grant").alias("reason"), pl.col("granted"), pl.col("action")
        ).struct.json_encode(),
    )


def _new_admins(
    ev: pl.DataFrame, grant_acts: list[str], create_acts: list[str], span: timedelta
) -> pl.DataFrame:
    made = ev.filter(pl.col("action").is_in(create_acts)).select(
        "organization_id",
        pl.col("timestamp").alias("_made_at"),
        pl.col("audit_id").alias("_made_id"),
        pl.col("seq").alias("_made_seq"),
        pl.col("_actor").alias("_creator"),
        # a creation that names no principal still has a subject (and a finding id)
        pl.coalesce("_tname", "_tid", pl.lit("(unknown)")).alias("_principal"),
        "_tname",
        "_tid",
        "_admin",
        "_priv",
    )
    if made.is_empty():
        return empty_findings()
    # created with an admin privilege already: the grant is the creation itself
    at_once = made.filter(pl.col("_admin")).select(
        "organization_id",
        "_principal",
        "_made_at",
        "_made_id",
        "_creator",
        pl.col("_made_at").alias("_granted_at"),
        pl.lit(None, pl.Utf8).alias("_grant_id"),
        # grants are ordered by time, seq, audit id; this one is the creation entry's
        pl.col("_made_seq").alias("_grant_seq"),
        pl.col("_made_id").alias("_grant_key"),
        pl.col("_creator").alias("_granter"),
        pl.col("_priv").alias("granted"),
    )
    grants = ev.filter(pl.col("action").is_in(grant_acts) & pl.col("_admin")).select(
        "organization_id",
        pl.col("timestamp").alias("_granted_at"),
        pl.col("audit_id").alias("_grant_id"),
        pl.col("seq").alias("_grant_seq"),
        pl.col("audit_id").alias("_grant_key"),
        pl.col("_actor").alias("_granter"),
        pl.col("_priv").alias("granted"),
        "_tname",
        "_tid",
    )
    pairs = [at_once]
    if not grants.is_empty():
        # the principal as the creation named it, matched by name or by id
        for left, right in (("_tname", "_tname"), ("_tid", "_tid"), ("_tname", "_tid")):
            pairs.append(
                made.drop("_admin", "_priv", "_made_seq")
                .join(
                    grants.drop("_tname" if right == "_tid" else "_tid"),
                    left_on=["organization_id", left],
                    right_on=["organization_id", right],
                )
                .filter(
                    (pl.col("_granted_at") >= pl.col("_made_at"))
                    & (pl.col("_granted_at") - pl.col("_made_at") <= span)
                )
                .select(at_once.columns)
            )
    hits = pl.concat(pairs).unique(["organization_id", "_made_id", "_grant_id"])
    if hits.is_empty():
        return empty_findings()
    # the first grant (granter, privilege) is the earliest by time, seq, audit id: never a
    # tie broken by row order
    rows = (
        hits.sort(["_granted_at", "_grant_seq", "_grant_key"])
        .group_by(["organization_id", "_principal", "_made_id"])
        .agg(
            pl.col("_made_at").first().alias("window_start"),
            pl.col("_granted_at").max().alias("window_end"),
            pl.col("_creator").first(),
            pl.col("_granter").first(),
            pl.col("granted").first(),
            pl.col("_grant_id").drop_nulls().alias("_grants"),
        )
        .with_columns(
            pl.col("_principal").alias("key"),
            pl.concat_list(pl.col("_made_id"), pl.col("_grants")).alias("audit_ids"),
            ((pl.col("window_end") - pl.col("window_start")).dt.total_seconds() // 60).alias(
                "_minutes"
            ),
        )
        .with_columns(pl.col("audit_ids").list.len().alias("count"))
    )
    return build_findings(
        rows,
        "privilege_escalation",
        "high",
        "actor",
        pl.format(
            "{} was given {} by {} {} minute(s) after {} created it (within {})",
            pl.col("key"),
            pl.col("granted"),
            pl.col("_granter"),
            pl.col("_minutes"),
            pl.col("_creator"),
            pl.lit(human(span)),
        ),
        pl.struct(
            pl.lit("new_principal_admin").alias("reason"),
            pl.col("granted"),
            pl.col("_creator").alias("created_by"),
            pl.col("_granter").alias("granted_by"),
            pl.col("_minutes").alias("minutes_after_creation"),
        ).struct.json_encode(),
    )
