"""Defence evasion: switching off what would see the attack.

Three kinds (``details.reason`` of each finding):

* ``logging_disabled`` (``critical``): audit or log settings changed or switched off —
  CloudTrail stopped, deleted or re-pointed, GuardDuty/Config/Security Hub detectors
  deleted, flow logs and log groups deleted, audit-log streaming destroyed, or an
  organization setting about audit, logs or retention changed;
* ``mfa_disabled`` (``high``): multi-factor authentication switched off — an MFA device
  deactivated or deleted, a two-factor requirement disabled, or an organization's MFA
  setting set to false/off;
* ``alerting_disabled`` (``high``): alert destinations disabled or deleted — alarms,
  notification rules and subscriptions, and webhooks whose name or URL says they carry
  alerts (``security``, ``siem``, ``pagerduty``, ``splunk``…). Other webhooks are
  ordinary configuration (and ``bulk_deletions`` watches mass deletions).

Failed attempts count too, at ``medium`` (trying to stop logging is worth knowing). One
finding per actor, kind and episode (entries within ``window`` of each other).

Example:
    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> df = pl.DataFrame({"audit_id": ["a"], "timestamp": [datetime(2025, 1, 7, tzinfo=UTC)],
    ...     "action": ["cloudtrail.stop_logging"], "result": ["success"],
    ...     "organization_id": ["o"], "actor_email": ["eve@x.io"]})
    >>> found = defence_evasion(df)
    >>> found["severity"][0], found["summary"][0]  # doctest: +NORMALIZE_WHITESPACE
    ('critical',
     'eve@x.io: logging switched off or audit settings changed (cloudtrail.stop_logging)')
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
    parse_window,
    return_like,
)

__all__ = [
    "ALERTING_ACTIONS",
    "ALERT_DESTINATIONS",
    "LOGGING_ACTIONS",
    "MFA_ACTIONS",
    "defence_evasion",
]

#: actions that stop, delete or re-point audit logging and threat detection
LOGGING_ACTIONS = (
    r"(?i)(stop_?logging|delete_?trail|update_?trail|put_event_selectors"
    r"|delete_event_data_store|stop_configuration_recorder|delete_configuration_recorder"
    r"|delete_delivery_channel|delete_flow_logs|delete_log_group|delete_log_stream"
    r"|put_retention_policy|delete_detector|disassociate_from_(master|administrator)_account"
    r"|delete_publishing_destination|disable_security_hub|disable_organization_admin_account"
    r"|log_stream\.\w*(deactivate|delete)|audit_log_streaming\.(destroy|disable|update)"
    r"|audit_log\.\w*(disabled|deleted|stopped)|logging_(disabled|stopped))"
)
#: actions that switch off multi-factor authentication (``auth.mfa_reset`` is a response)
MFA_ACTIONS = (
    r"(?i)((mfa|two_factor|2fa)[._]?[\w.]*(disabled|deactivat|remov|delet)"
    r"|(deactivate|delete|disable|remove)_\w*(mfa|two_factor|2fa))"
)
#: actions that disable or delete alert destinations
ALERTING_ACTIONS = (
    r"(?i)(delete_alarms|disable_alarm_actions|disable_rule|delete_subscription|unsubscribe"
    r"|delete_destination|delete_notification|disable_notification|alert\w*\.?\w*(disabled|deleted)"
    r"|notification\w*\.?\w*(disabled|deleted))"
)
#: names and URLs of webhooks that carry alerts
ALERT_DESTINATIONS = (
    r"(?i)(alert|siem|secur|\bsoc\b|splunk|datadog|pagerduty|opsgenie|sentinel|sumologic"
    r"|incident|audit|guardduty|notify)"
)
_SETTINGS_UPDATED = r"(?i)settings?_(updated|changed)$"
_LOG_SETTING = r"(?i)(audit|log|retention|siem|monitor)"
_MFA_SETTING = r"(?i)(mfa|2fa|two_factor|multi_factor)"
_OFF = r"(?i)^(false|0|off|no|none|disabled|optional)$"
_WEBHOOK_GONE = (
    r"(?i)(webhook\.(deleted|disabled)|hook\.(destroy|deactivate)|delete_webhook|disable_webhook)"
)
_WEBHOOK_CHANGED = r"(?i)(webhook\.updated|hook\.config_changed|update_webhook)"

_WHAT = {
    "logging_disabled": "logging switched off or audit settings changed",
    "mfa_disabled": "multi-factor authentication switched off",
    "alerting_disabled": "an alert destination disabled or deleted",
}
_SEVERITY = {"logging_disabled": "critical", "mfa_disabled": "high", "alerting_disabled": "high"}


def defence_evasion(
    df: FrameT,
    window: str | timedelta = "1h",
    logging_actions: str = LOGGING_ACTIONS,
    mfa_actions: str = MFA_ACTIONS,
    alerting_actions: str = ALERTING_ACTIONS,
    alert_destinations: str = ALERT_DESTINATIONS,
) -> FrameT:
    """Logging stopped, MFA switched off, alert destinations disabled (see the module).

    Settings changes (``organization.settings_updated`` and other ``*.settings_updated``)
    are read from ``details.setting`` / ``details.after``: an audit/log/retention setting
    changed in any way is ``logging_disabled``; an MFA setting whose new value is
    false/off/none is ``mfa_disabled``. Webhooks count when deleted or updated to
    ``enabled``/``active`` false and their name or URL matches ``alert_destinations``.
    """
    frame, kind = as_polars(df)
    span = parse_window(window)
    dest_re = check_regex(alert_destinations, "alert_destinations")
    # patterns are matched against the distinct actions; rows are then picked by is_in, and
    # only the few candidate rows have their details read
    log_acts = actions_matching(frame, logging_actions, "logging_actions")
    mfa_acts = [
        a
        for a in actions_matching(frame, mfa_actions, "mfa_actions")
        if "mfa_reset" not in a.lower()
    ]
    alert_acts = actions_matching(frame, alerting_actions, "alerting_actions")
    setting_acts = actions_matching(frame, _SETTINGS_UPDATED)
    gone_acts = actions_matching(frame, _WEBHOOK_GONE)
    changed_acts = actions_matching(frame, _WEBHOOK_CHANGED)
    every = {*log_acts, *mfa_acts, *alert_acts, *setting_acts, *gone_acts, *changed_acts}
    candidates = frame.filter(pl.col("action").is_in(sorted(every)))
    if candidates.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    d = (
        pl.col("details").cast(pl.Utf8)
        if "details" in candidates.columns
        else pl.lit(None, pl.Utf8)
    )
    action = pl.col("action")
    setting = d.str.json_path_match("$.setting")
    after = pl.coalesce(d.str.json_path_match("$.after.value"), d.str.json_path_match("$.after"))
    is_setting = action.is_in(setting_acts)
    switched_off = pl.coalesce(
        d.str.json_path_match("$.after.actions.enabled"),
        d.str.json_path_match("$.after.enabled"),
        d.str.json_path_match("$.after.active"),
        d.str.json_path_match("$.after.config.active"),
    ).str.contains(_OFF)
    destination = pl.concat_str(
        pl.col("resource_name").fill_null(""),
        d.str.json_path_match("$.before.actions.url").fill_null(""),
        d.str.json_path_match("$.before.url").fill_null(""),
        d.str.json_path_match("$.url").fill_null(""),
        separator=" ",
    ).str.contains(dest_re)
    webhook_off = action.is_in(gone_acts) | (
        action.is_in(changed_acts) & switched_off.fill_null(False)
    )
    reason = (
        pl.when(action.is_in(log_acts) | (is_setting & setting.str.contains(_LOG_SETTING)))
        .then(pl.lit("logging_disabled"))
        .when(
            action.is_in(mfa_acts)
            | (is_setting & setting.str.contains(_MFA_SETTING) & after.str.contains(_OFF))
        )
        .then(pl.lit("mfa_disabled"))
        .when(action.is_in(alert_acts) | (webhook_off & destination))
        .then(pl.lit("alerting_disabled"))
    )
    ev = (
        candidates.with_columns(reason.alias("_reason"))
        .filter(pl.col("_reason").is_not_null())
        .select(
            "organization_id",
            pl.coalesce("actor_email", "actor_user_id", pl.lit("(unknown)")).alias("key"),
            "timestamp",
            "audit_id",
            "seq",
            "action",
            "_reason",
            (pl.col("result") == "failure").alias("_failed"),
        )
    )
    if ev.is_empty():
        return cast(FrameT, return_like(empty_findings(), kind))
    group = ["organization_id", "key", "_reason"]
    ev = ev.sort([*group, "timestamp", "seq", "audit_id"]).with_columns(
        (pl.col("timestamp").diff().over(group).fill_null(span * 2) > span)
        .cast(pl.Int32)
        .cum_sum()
        .over(group)
        .alias("_episode")
    )
    rows = ev.group_by([*group, "_episode"]).agg(
        pl.col("timestamp").min().alias("window_start"),
        pl.col("timestamp").max().alias("window_end"),
        pl.len().alias("count"),
        pl.col("audit_id").alias("audit_ids"),
        pl.col("action").unique().sort().str.join(", ").alias("_actions"),
        pl.col("_failed").all().alias("_all_failed"),
    )
    out = build_findings(
        rows,
        "defence_evasion",
        pl.when(pl.col("_all_failed"))
        .then(pl.lit("medium"))
        .otherwise(pl.col("_reason").replace_strict(_SEVERITY, return_dtype=pl.Utf8)),
        "actor",
        pl.format(
            "{}: {}{} ({})",
            pl.col("key"),
            pl.when(pl.col("_all_failed")).then(pl.lit("attempt failed, ")).otherwise(pl.lit("")),
            pl.col("_reason").replace_strict(_WHAT, return_dtype=pl.Utf8),
            pl.col("_actions"),
        ),
        pl.struct(
            pl.col("_reason").alias("reason"),
            pl.col("_actions").str.split(", ").alias("actions"),
            pl.col("_all_failed").alias("failed"),
        ).struct.json_encode(),
    )
    return cast(FrameT, return_like(out, kind))
