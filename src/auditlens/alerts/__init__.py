"""Alert rules (YAML), their evaluation over history or live, and notifications.

Example:
    >>> from auditlens.alerts import parse_rules
    >>> parse_rules('alert: A\\ntrigger: {detector: bulk_deletions}\\n'
    ...             'notification: {slack: "#sec"}\\n').rules[0].trigger.detector
    'bulk_deletions'
"""

from __future__ import annotations

from auditlens.alerts.channels import DeliveryError, NotifierConfig, sign_payload
from auditlens.alerts.engine import Delivery, check, deliveries, notify, retry_pending, watch
from auditlens.alerts.evaluate import Alert, evaluate
from auditlens.alerts.rules import (
    AlertRuleWarning,
    Notification,
    Rule,
    RuleError,
    RuleSet,
    Trigger,
    load_rules,
    parse_rules,
)

__all__ = [
    "Alert",
    "AlertRuleWarning",
    "Delivery",
    "DeliveryError",
    "Notification",
    "NotifierConfig",
    "Rule",
    "RuleError",
    "RuleSet",
    "Trigger",
    "check",
    "deliveries",
    "evaluate",
    "load_rules",
    "notify",
    "parse_rules",
    "retry_pending",
    "sign_payload",
    "watch",
]
