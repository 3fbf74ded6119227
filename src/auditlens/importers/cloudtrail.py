"""AWS CloudTrail: log files (``{"Records": [...]}``, ``.json.gz``, folders as delivered
to S3) and CloudTrail Lake / Athena exports (one record per line).

Example:
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "ct.json"
    >>> _ = f.write_text('{"Records": [{"eventVersion": "1.09", "eventTime": '
    ...     '"2024-03-01T10:00:00Z", "eventSource": "iam.amazonaws.com", "eventName": '
    ...     '"CreateAccessKey", "eventID": "e-1", "recipientAccountId": "123456789012", '
    ...     '"sourceIPAddress": "203.0.113.7", "errorCode": "AccessDenied", "userIdentity": '
    ...     '{"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"}}]}')
    >>> e = next(read(f))
    >>> e["action"], e["result"], e["ip_address"]
    ('iam.create_access_key', 'failure', '203.0.113.7')
    >>> e["actor"]
    {'user_id': 'arn:aws:iam::123456789012:user/alice', 'email': None, 'type': 'user'}
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from auditlens.importers import entries_only
from auditlens.importers.entries import (
    FieldRule,
    SourceMapping,
    action_name,
    first_text,
    fit_details,
    iso_ms,
    obj,
    organization_for,
    split_address,
    stable_id,
)
from auditlens.importers.files import iter_files, json_records, mapped
from auditlens.ingest import SourceRecord
from auditlens.schema import DEFAULT_MAX_DETAILS_BYTES

__all__ = ["FORMAT", "MAPPING", "read", "records"]

FORMAT = "cloudtrail"

#: userIdentity.type → actor type
ACTOR_TYPES: dict[str, str] = {
    "Root": "user",
    "IAMUser": "user",
    "IdentityCenterUser": "user",
    "FederatedUser": "user",
    "SAMLUser": "user",
    "WebIdentityUser": "user",
    "AWSAccount": "user",
    "Unknown": "user",
    "AssumedRole": "role",
    "AWSService": "system",
    "Directory": "service_account",
}

#: events named the same on every source, so detectors and reports see them
_SIGN_IN = {"ConsoleLogin": ("auth.login", "auth.failed"), "CheckMfa": ("auth.mfa_checked", None)}

#: native fields that may be dropped (largest first) when details exceed the limit
BULKY = ("responseElements", "requestParameters", "additionalEventData", "serviceEventDetails")

#: requestParameters key → resource type (when the record lists no ``resources``)
_RESOURCE_KEYS = (
    ("bucketName", "s3_bucket"),
    ("userName", "iam_user"),
    ("roleName", "iam_role"),
    ("groupName", "iam_group"),
    ("policyArn", "iam_policy"),
    ("accessKeyId", "access_key"),
    ("roleArn", "iam_role"),
    ("functionName", "lambda_function"),
    ("secretId", "secret"),
    ("keyId", "kms_key"),
    ("name", "resource"),
    ("instanceId", "ec2_instance"),
    ("trailName", "cloudtrail_trail"),
)

MAPPING = SourceMapping(
    format=FORMAT,
    title="AWS CloudTrail",
    inputs='CloudTrail log files (`{"Records": [...]}`, `.json` or `.json.gz`), folders of '
    "them as delivered to S3 (digest files skipped), and CloudTrail Lake / Athena exports "
    "(JSON Lines, one record per line, or a JSON array).",
    fields=(
        FieldRule("`eventID`", "audit_id", "UUID5 over (`cloudtrail`, eventID)"),
        FieldRule("`eventTime`", "timestamp", "as written (UTC)"),
        FieldRule(
            "`eventSource`, `eventName`",
            "action",
            "`<service>.<event_name>`: the first label of eventSource and eventName in "
            "snake case (`iam.amazonaws.com` + `CreateAccessKey` → `iam.create_access_key`); "
            "`ConsoleLogin` → `auth.login` / `auth.failed`",
        ),
        FieldRule(
            "`errorCode`, `responseElements.ConsoleLogin`",
            "result",
            "`failure` when errorCode is set or ConsoleLogin is `Failure`, else `success`",
        ),
        FieldRule(
            "`userIdentity.arn` (else `principalId`, `invokedBy`, `userName`)",
            "actor.user_id",
            "the principal's ARN as written; an assumed role is its session ARN "
            "(`arn:aws:sts::…:assumed-role/Role/session`); an IAMUser record without ARN "
            "(failed ConsoleLogin) → `arn:aws:iam::<accountId>:user/<userName>`",
        ),
        FieldRule(
            "`userIdentity.type`",
            "actor.type",
            "IAMUser, Root, IdentityCenterUser, FederatedUser, SAMLUser, WebIdentityUser, "
            "AWSAccount → `user`; AssumedRole → `role`; AWSService → `system`",
        ),
        FieldRule(
            "—",
            "actor.email",
            "never set: CloudTrail names no email (session names "
            "are chosen by the caller and are not evidence of a person)",
        ),
        FieldRule(
            "`sourceIPAddress`",
            "ip_address",
            "when it is an IP address; a service name (`AWS Internal`, "
            "`ssm.amazonaws.com`) stays only in `details.sourceIPAddress`",
        ),
        FieldRule("`userAgent`", "user_agent", "as written (S3's `[aws-sdk-go/…]` brackets kept)"),
        FieldRule(
            "`resources[0]`, else `requestParameters` (bucketName, userName, roleName, …)",
            "resource",
            "type from the record (`AWS::S3::Bucket`) or the parameter (`s3_bucket`), id = "
            "ARN or value",
        ),
        FieldRule(
            "`recipientAccountId`",
            "organization_id",
            "`--org`, else UUID5 over the AWS account id",
        ),
        FieldRule(
            "every other field",
            "details",
            "the native record minus `eventTime`, `userAgent` (eventID, eventSource, "
            "eventName, awsRegion, userIdentity, errorCode, errorMessage, requestID, …)",
        ),
    ),
    notes=(
        "Details over the store's limit (64 KiB) drop `responseElements`, "
        "`requestParameters`, `additionalEventData`, `serviceEventDetails` (largest "
        "first) and say so in `details.truncated`.",
        "A record without `eventID` or `eventTime` is rejected with its file:line.",
    ),
)


def records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    organization_id: str | None = None,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> Iterator[SourceRecord]:
    """Every record of the files (or folders) as :class:`~auditlens.ingest.SourceRecord`:
    the entry, or why the record cannot be one."""
    for path in iter_files(paths):
        yield from mapped(
            path,
            json_records(path, ("Records",)),
            lambda rec, raw: to_entry(rec, organization_id, max_details_bytes, raw),
            lambda rec: f"eventID {rec.get('eventID')!r}",
        )


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    organization_id: str | None = None,
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
) -> Iterator[dict[str, Any]]:
    """The entries of CloudTrail files or folders (see the module docstring).

    Raises:
        IngestError: at the first record that cannot be an entry (file:line: reason).
    """

    return entries_only(
        records(paths, organization_id=organization_id, max_details_bytes=max_details_bytes)
    )


def to_entry(
    rec: dict[str, Any], organization_id: str | None, max_details_bytes: int, raw: bytes
) -> dict[str, Any]:
    """One CloudTrail record as an entry (the rules of :data:`MAPPING`)."""
    event_id = rec.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("eventID is missing; a CloudTrail record without it has no identity")
    if "eventTime" not in rec:
        raise ValueError("eventTime is missing")
    source = rec.get("eventSource")
    name = rec.get("eventName")
    if not isinstance(source, str) or not isinstance(name, str):
        raise ValueError("eventSource and eventName must be strings")
    error = rec.get("errorCode")
    response = rec.get("responseElements")
    failed = bool(error) or (
        isinstance(response, dict) and response.get(name) == "Failure"  # ConsoleLogin
    )
    signin = _SIGN_IN.get(name)
    if signin is not None and source.startswith("signin."):
        action = signin[1] if failed and signin[1] else signin[0]
    else:
        action = action_name(source, name)

    ident = obj(rec.get("userIdentity"))
    id_type = str(ident.get("type") or "Unknown")
    actor_type = ACTOR_TYPES.get(id_type, "user")
    user_id = first_text(ident, "arn")
    account_id = ident.get("accountId") or rec.get("recipientAccountId")
    if user_id is None and id_type == "IAMUser" and ident.get("userName") and account_id:
        # a failed ConsoleLogin omits the ARN: the same user's successful sign-in names it
        user_id = f"arn:aws:iam::{account_id}:user/{ident['userName']}"
    user_id = user_id or first_text(ident, "principalId", "invokedBy", "userName")
    if user_id is None and actor_type != "system":
        raise ValueError("userIdentity names no arn, principalId, invokedBy or userName")

    ip, _host = split_address(rec.get("sourceIPAddress"))
    org = organization_id
    if org is None:
        account = rec.get("recipientAccountId") or ident.get("accountId")
        if not isinstance(account, str) or not account:
            raise ValueError("no recipientAccountId to derive the organization from; pass --org")
        org = organization_for("aws-account", account)

    details = {k: v for k, v in rec.items() if k not in ("eventTime", "userAgent")}
    details = fit_details(details, max_details_bytes, BULKY, raw=raw)
    agent = rec.get("userAgent")
    return {
        "audit_id": stable_id(FORMAT, event_id),
        "timestamp": iso_ms(rec["eventTime"]),
        "actor": {"user_id": user_id, "email": None, "type": actor_type},
        "action": action,
        "resource": _resource(rec),
        "organization_id": org,
        "ip_address": ip,
        "user_agent": agent[:2048] if isinstance(agent, str) and agent else None,
        "details": details,
        "result": "failure" if failed else "success",
    }


def _resource(rec: dict[str, Any]) -> dict[str, Any] | None:
    res = rec.get("resources")
    if isinstance(res, list) and res and isinstance(res[0], dict):
        first = res[0]
        arn = first.get("ARN") or first.get("arn")
        rtype = first.get("type") or "aws_resource"
        if isinstance(arn, str) and isinstance(rtype, str):
            return {"type": rtype[:128], "id": arn[:256], "name": _last(arn)[:512]}
    params = rec.get("requestParameters")
    if isinstance(params, dict):
        for key, rtype in _RESOURCE_KEYS:
            value = params.get(key)
            if isinstance(value, str) and value:
                return {"type": rtype, "id": value[:256], "name": _last(value)[:512]}
    return None


def _last(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or arn
