"""A synthetic tenant set with known, injected incidents — deterministic for a seed and end date.

Each organization has users with roles and time zones who work office hours on
weekdays (weekends are quiet), webhooks and applications that are created,
reconfigured (``details`` carry before/after), tested and deleted, invitations
that are accepted, role changes and monthly billing. On top of that routine,
each organization gets one of each incident below, recorded with its evidence
in the ground truth (``incidents.json``):

=========================  ===========================================================
kind                       what was injected
=========================  ===========================================================
failed_login_spike         9 failed sign-ins of one user within 3 minutes
brute_force_success        7 failures from one foreign IP, then a successful sign-in
password_spray             one IP failing against 12 different accounts in 8 minutes
off_hours_admin            an admin changing roles and settings at ~02:40 local time
bulk_deletions             one user deleting 14 webhooks and applications in 5 minutes
new_ip_and_agent           a user signing in from a never-seen IP with a script agent
activity_after_suspension  a suspended user signing in and changing a webhook
failure_burst              24 calls of one user refused (AccessDenied) within 2 minutes
self_grant                 a member making themselves admin
new_principal_admin        an invited account made owner 6 minutes after the invitation
defence_evasion            a security-alerts webhook disabled and audit-log retention cut
mass_export                one user exporting 83,000 audit entries in 20 minutes
=========================  ===========================================================

The last five come from a random stream of their own (seeded by the seed and the
organization), so adding them left every earlier entry of a seed as it was.

Example:
    >>> from datetime import date
    >>> demo = generate(orgs=1, days=14, seed=3, end=date(2025, 1, 31))
    >>> sorted({i["kind"] for i in demo.incidents})[:3]
    ['activity_after_suspension', 'brute_force_success', 'bulk_deletions']
    >>> generate(orgs=1, days=14, seed=3, end=date(2025, 1, 31)).entries == demo.entries
    True
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from auditlens.context import PERSON_SET, OrgProfile, Person, person_entry, profile_entry
from auditlens.schema import format_timestamp

__all__ = ["DemoData", "generate"]

_FIRST = [
    "jane",
    "john",
    "maria",
    "wei",
    "amara",
    "lucas",
    "sofia",
    "omar",
    "yuki",
    "lena",
    "raj",
    "chloe",
    "diego",
    "fatima",
    "noah",
    "ines",
    "kofi",
    "mila",
    "arjun",
    "emma",
    "pavel",
    "zoe",
    "hugo",
    "nia",
]
_LAST = [
    "smith",
    "garcia",
    "chen",
    "okafor",
    "muller",
    "rossi",
    "tanaka",
    "novak",
    "silva",
    "kim",
    "patel",
    "dubois",
    "jensen",
    "haddad",
    "costa",
    "ng",
]
_ORGS = [
    ("Acme Corp", "acme.example"),
    ("Globex", "globex.example"),
    ("Initech", "initech.example"),
    ("Umbrella Health", "umbrella.example"),
    ("Stark Logistics", "stark.example"),
    ("Wayne Media", "wayne.example"),
    ("Tyrell Labs", "tyrell.example"),
    ("Cyberdyne", "cyberdyne.example"),
]
_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Sydney",
]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5; rv:133.0) Gecko/20100101 Firefox/133.0",
]
_EVENTS = ["order.created", "order.paid", "customer.updated", "invoice.sent", "shipment.delivered"]
_PLANS = ["starter", "pro", "enterprise"]


#: incident kind → the detector meant to find it (``detectors`` in the ground truth adds
#: any other detector that rightly fires on the same entries).
DETECTOR_OF_KIND: dict[str, str] = {
    "failed_login_spike": "failed_login_spikes",
    "brute_force_success": "brute_force_success",
    "password_spray": "password_spray",
    "off_hours_admin": "off_hours",
    "bulk_deletions": "bulk_deletions",
    "new_ip_and_agent": "unusual_access",
    "activity_after_suspension": "unusual_access",
    "failure_burst": "failure_bursts",
    "self_grant": "privilege_escalation",
    "new_principal_admin": "privilege_escalation",
    "defence_evasion": "defence_evasion",
    "mass_export": "mass_export",
}


@dataclass
class _User:
    user_id: str
    email: str
    role: str
    tz: ZoneInfo
    ip: str
    agent: str
    suspended_on: date | None = None


@dataclass
class _Org:
    org_id: str
    name: str
    domain: str
    plan: str
    tz: ZoneInfo
    users: list[_User]
    apps: list[tuple[str, str]]
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class DemoData:
    """Generated entries (time order), the ground truth of injected incidents, and the tenants."""

    entries: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    organizations: list[dict[str, Any]]


class _Gen:
    def __init__(self, seed: int, start: datetime, end: datetime) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.end = end
        self.entries: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    # -- helpers ----------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ip(self, block: str) -> str:
        return f"{block}.{self.rng.randint(2, 250)}"

    def emit(
        self,
        org: _Org,
        when: datetime,
        action: str,
        *,
        actor: _User | None = None,
        actor_type: str | None = None,
        actor_email: str | None = None,
        resource: dict[str, Any] | None = None,
        app: str | None = None,
        ip: str | None = None,
        agent: str | None = None,
        details: dict[str, Any] | None = None,
        result: str = "success",
    ) -> str:
        audit_id = self.uuid()
        actor_obj: dict[str, Any]
        if actor is not None:
            actor_obj = {"user_id": actor.user_id, "email": actor.email, "type": "user"}
            ip = ip or actor.ip
            agent = agent or actor.agent
        else:
            actor_obj = {"user_id": None, "email": actor_email, "type": actor_type or "system"}
        self.entries.append(
            {
                "audit_id": audit_id,
                "timestamp": format_timestamp(int(when.timestamp() * 1000)),
                "actor": actor_obj,
                "action": action,
                "resource": resource,
                "organization_id": org.org_id,
                "application_id": app,
                "ip_address": ip,
                "user_agent": agent,
                "details": details or {},
                "result": result,
            }
        )
        return audit_id

    def local(self, day: date, tz: ZoneInfo, hour: float) -> datetime:
        secs = int(hour * 3600)
        t = time(
            min(secs // 3600, 23), (secs // 60) % 60, secs % 60, self.rng.randint(0, 999) * 1000
        )
        return datetime.combine(day, t, tzinfo=tz).astimezone(UTC)

    def record(
        self,
        kind: str,
        org: _Org,
        subject: str,
        subject_type: str,
        ids: list[str],
        times: list[datetime],
        note: str,
        also: tuple[str, ...] = (),
    ) -> None:
        self.incidents.append(
            {
                "incident_id": f"{org.domain.split('.')[0]}-{kind}",
                "kind": kind,
                "organization_id": org.org_id,
                "subject_type": subject_type,
                "subject": subject,
                "window_start": format_timestamp(int(min(times).timestamp() * 1000)),
                "window_end": format_timestamp(int(max(times).timestamp() * 1000)),
                "audit_ids": ids,
                "description": note,
                "detectors": [DETECTOR_OF_KIND[kind], *also],
            }
        )

    # -- tenants ----------------------------------------------------------------
    def context(self, org: _Org, days: list[date]) -> None:
        """The owner records the organization's context (name, time zone, business hours,
        people) on the first workday, as ``auditlens org set`` / ``people import`` would.
        Ids come from the organization's id, not the random stream, so adding context
        leaves every other generated entry as it was."""
        owner = org.users[0]
        day = next((d for d in days if d.weekday() < 5), days[0])
        when = datetime.combine(day, time(9, 30), tzinfo=owner.tz).astimezone(UTC)
        actor = {"user_id": owner.user_id, "email": owner.email, "type": "user"}
        profile = OrgProfile(org.org_id, org.name, str(org.tz), "08:00-18:00")
        made = [profile_entry(profile, actor)]
        for u in org.users:
            first, last = u.email.split("@")[0].split(".")
            person = Person(org.org_id, u.email, str(u.tz), f"{first} {last}".title(), u.role)
            made.append(person_entry(org.org_id, PERSON_SET, person, actor, None))
        for i, entry in enumerate(made):
            key = f"{org.org_id}:context:{i}"
            entry["audit_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
            entry["timestamp"] = format_timestamp(int(when.timestamp() * 1000) + i)
            entry.update(ip_address=owner.ip, user_agent=owner.agent)
            self.entries.append(entry)

    def make_org(self, i: int) -> _Org:
        name, domain = _ORGS[i % len(_ORGS)]
        if i >= len(_ORGS):
            name, domain = f"{name} {i // len(_ORGS) + 1}", f"{i}{domain}"
        tz = ZoneInfo(_ZONES[i % len(_ZONES)])
        office = f"203.0.{113 + i % 100}"
        users: list[_User] = []
        used: set[str] = set()
        for u in range(self.rng.randint(10, 18)):
            while True:
                first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
                if first == "jane" and u == 0:
                    last = "doe"
                email = f"{first}.{last}@{domain}"
                if email not in used:
                    used.add(email)
                    break
            role = (
                "owner"
                if u == 0
                else "admin"
                if u < 3
                else self.rng.choice(["member", "member", "viewer"])
            )
            user_tz = tz if self.rng.random() < 0.8 else ZoneInfo(self.rng.choice(_ZONES))
            users.append(
                _User(self.uuid(), email, role, user_tz, self.ip(office), self.rng.choice(_AGENTS))
            )
        apps = [
            (self.uuid(), n)
            for n in ("Storefront", "Mobile API", "Partner Portal")[: self.rng.randint(2, 3)]
        ]
        return _Org(self.uuid(), name, domain, self.rng.choice(_PLANS), tz, users, apps)

    # -- routine ------------------------------------------------------------------
    def webhook_config(self) -> dict[str, Any]:
        return {
            "conditions": {"events": sorted(self.rng.sample(_EVENTS, self.rng.randint(1, 3)))},
            "actions": {
                "url": f"https://hooks.partner{self.rng.randint(1, 9)}.example/in",
                "retries": self.rng.choice([3, 5]),
                "enabled": True,
            },
        }

    def routine_action(self, org: _Org, user: _User, when: datetime) -> None:
        rng = self.rng
        admin = user.role in ("owner", "admin")
        choices = ["webhook.tested", "webhook.updated", "webhook.created", "application.updated"]
        if admin:
            choices += [
                "user.role_changed",
                "organization.settings_updated",
                "application.member_added",
                "user.invited",
            ]
        if user.role == "viewer":
            choices = ["webhook.tested"]
        action = rng.choice(choices)
        app_id, app_name = rng.choice(org.apps)
        if action == "webhook.created" or (action.startswith("webhook.") and not org.webhooks):
            wid = f"wh-{rng.randint(1000, 9999)}"
            cfg = self.webhook_config()
            kind = rng.choice(["Production", "Staging", "Billing", "CRM", "Analytics"])
            name = f"{kind} Webhook {wid[3:]}"
            org.webhooks[wid] = {"name": name, "config": cfg, "app": app_id}
            self.emit(
                org,
                when,
                "webhook.created",
                actor=user,
                app=app_id,
                resource={"type": "webhook", "id": wid, "name": name},
                details=cfg,
            )
        elif action.startswith("webhook."):
            wid = rng.choice(sorted(org.webhooks))
            hook = org.webhooks[wid]
            res = {"type": "webhook", "id": wid, "name": hook["name"]}
            if action == "webhook.updated":
                before = hook["config"]
                after = {**before, "actions": {**before["actions"]}}
                if rng.random() < 0.5:
                    after["actions"]["url"] = f"https://hooks.partner{rng.randint(1, 9)}.example/v2"
                else:
                    after["actions"]["enabled"] = not before["actions"]["enabled"]
                hook["config"] = after
                self.emit(
                    org,
                    when,
                    action,
                    actor=user,
                    app=hook["app"],
                    resource=res,
                    details={"before": before, "after": after},
                )
            else:
                ok = hook["config"]["actions"]["enabled"] and rng.random() > 0.1
                self.emit(
                    org,
                    when,
                    action,
                    actor=user,
                    app=hook["app"],
                    resource=res,
                    result="success" if ok else "failure",
                    details={"status_code": 200 if ok else rng.choice([404, 500, 503])},
                )
        elif action == "application.updated":
            self.emit(
                org,
                when,
                action,
                actor=user,
                app=app_id,
                resource={"type": "application", "id": app_id, "name": app_name},
                details={
                    "before": {"rate_limit": 100},
                    "after": {"rate_limit": rng.choice([200, 500])},
                },
            )
        elif action == "application.member_added":
            member = rng.choice(org.users)
            self.emit(
                org,
                when,
                action,
                actor=user,
                app=app_id,
                resource={"type": "application", "id": app_id, "name": app_name},
                details={"member": member.email, "role": "developer"},
            )
        elif action == "user.role_changed":
            target = rng.choice(
                [u for u in org.users if u.role in ("member", "viewer")] or org.users
            )
            new = "member" if target.role == "viewer" else "viewer"
            self.emit(
                org,
                when,
                action,
                actor=user,
                resource={"type": "user", "id": target.user_id, "name": target.email},
                details={"before": {"role": target.role}, "after": {"role": new}},
            )
            target.role = new
        elif action == "user.invited":
            email = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randint(10, 99)}@{org.domain}"
            self.emit(
                org,
                when,
                action,
                actor=user,
                resource={"type": "user", "id": email, "name": email},
                details={"role": "member"},
            )
        else:
            key = rng.choice(["session_timeout_minutes", "require_mfa", "allowed_domains"])
            self.emit(
                org,
                when,
                action,
                actor=user,
                resource={"type": "organization", "id": org.org_id, "name": org.name},
                details={"setting": key, "before": "30", "after": "60"},
            )

    def routine_day(self, org: _Org, day: date) -> None:
        rng = self.rng
        if day.day == 1:
            when = self.local(day, org.tz, 6 + rng.random())
            ok = rng.random() > 0.2
            self.emit(
                org,
                when,
                "billing.payment_succeeded" if ok else "billing.payment_failed",
                actor_type="system",
                resource={
                    "type": "invoice",
                    "id": f"inv-{rng.randint(10000, 99999)}",
                    "name": f"Invoice {day:%Y-%m}",
                },
                details={
                    "amount": {"pro": 499, "starter": 49, "enterprise": 2499}[org.plan],
                    "currency": "USD",
                },
                result="success" if ok else "failure",
            )
        for user in org.users:
            if user.suspended_on is not None and day >= user.suspended_on:
                continue
            if day.weekday() >= 5 or rng.random() < 0.1:  # quiet weekends, days off
                continue
            start = min(max(rng.gauss(9.0, 0.5), 8.4), 10.5)
            stop = min(max(rng.gauss(17.0, 0.4), 15.5), 17.6)
            t0 = self.local(day, user.tz, start)
            if rng.random() < 0.06:  # a mistyped password now and then
                self.emit(
                    org,
                    t0 - timedelta(seconds=rng.randint(5, 40)),
                    "auth.failed",
                    actor=user,
                    result="failure",
                    details={"reason": "invalid_password"},
                )
            self.emit(
                org,
                t0,
                "auth.login",
                actor=user,
                details={"method": rng.choice(["password", "sso"])},
            )
            for _ in range(max(0, int(rng.gauss(5, 2)))):
                when = self.local(day, user.tz, rng.uniform(start + 0.1, stop - 0.1))
                self.routine_action(org, user, when)
            self.emit(org, self.local(day, user.tz, stop), "auth.logout", actor=user)

    # -- incidents --------------------------------------------------------------------
    def weekday_in(self, days: list[date], lo: float, hi: float) -> date:
        span = days[int(len(days) * lo) : max(int(len(days) * hi), int(len(days) * lo) + 1)]
        work = [d for d in span if d.weekday() < 5] or span
        return self.rng.choice(work)

    def plan(self, org: _Org, days: list[date]) -> dict[str, Any]:
        """Choose who and when for each incident before the routine runs."""
        members = [u for u in org.users if u.role != "owner"]
        victim, target, wanderer, deleter, suspended = self.rng.sample(members, 5)
        suspend_day = self.weekday_in(days, 0.55, 0.75)
        suspended.suspended_on = suspend_day
        return {
            "victim": victim,
            "target": target,
            "wanderer": wanderer,
            "deleter": deleter,
            "suspended": suspended,
            "suspend_day": suspend_day,
            "admin": next(u for u in org.users if u.role in ("owner", "admin")),
        }

    def inject_more(self, org: _Org, days: list[date], plan: dict[str, Any], seed: int) -> None:
        """Failure bursts, privilege escalation, defence evasion and mass export, from their
        own random stream (the main stream, and so every earlier entry, is left as it was)."""
        main = self.rng
        self.rng = random.Random(f"{seed}:{org.org_id}:more")
        try:
            self._inject_more(org, days, plan)
        finally:
            self.rng = main

    def _inject_more(self, org: _Org, days: list[date], plan: dict[str, Any]) -> None:
        rng = self.rng
        taken = {plan[k].email for k in ("victim", "target", "wanderer", "deleter", "suspended")}
        members = [u for u in org.users if u.role in ("member", "viewer") and u.email not in taken]
        prober, climber, exporter = (
            (members * 3)[:3] if len(members) < 3 else rng.sample(members, 3)
        )
        admin = plan["admin"]

        day = self.weekday_in(days, 0.3, 0.6)
        t = self.local(day, prober.tz, 10.5)
        ids, times = [], []
        targets = ["application.updated", "webhook.updated", "billing.plan_changed"]
        for k in range(24):
            when = t + timedelta(seconds=5 * k + rng.randint(0, 3))
            action = targets[k % 3]
            res = (
                {"type": "application", "id": org.apps[0][0], "name": org.apps[0][1]}
                if action == "application.updated"
                else {"type": "organization", "id": org.org_id, "name": org.name}
            )
            ids.append(
                self.emit(
                    org,
                    when,
                    action,
                    actor=prober,
                    resource=res,
                    result="failure",
                    details={"error_code": "AccessDenied"},
                )
            )
            times.append(when)
        self.record(
            "failure_burst",
            org,
            prober.email,
            "actor",
            ids,
            times,
            f"24 calls by {prober.email} refused (AccessDenied) within 2 minutes",
        )

        day = self.weekday_in(days, 0.35, 0.65)
        when = self.local(day, climber.tz, 11.0)
        ids = [
            self.emit(
                org,
                when,
                "user.role_changed",
                actor=climber,
                resource={"type": "user", "id": climber.user_id, "name": climber.email},
                details={"before": {"role": climber.role}, "after": {"role": "admin"}},
            )
        ]
        self.record(
            "self_grant",
            org,
            climber.email,
            "actor",
            ids,
            [when],
            f"{climber.email} changed their own role to admin",
        )

        day = self.weekday_in(days, 0.4, 0.7)
        t = self.local(day, admin.tz, 13.0)
        newbie = f"contractor{rng.randint(10, 99)}@{org.domain}"
        new_id = self.uuid()
        ids = [
            self.emit(
                org,
                t,
                "user.invited",
                actor=admin,
                resource={"type": "user", "id": newbie, "name": newbie},
                details={"role": "member"},
            )
        ]
        when = t + timedelta(minutes=6)
        ids.append(
            self.emit(
                org,
                when,
                "user.role_changed",
                actor=admin,
                resource={"type": "user", "id": new_id, "name": newbie},
                details={"before": {"role": "member"}, "after": {"role": "owner"}},
            )
        )
        self.record(
            "new_principal_admin",
            org,
            newbie,
            "actor",
            ids,
            [t, when],
            f"{newbie} made owner by {admin.email} 6 minutes after being invited",
        )

        day = self.weekday_in(days, 0.45, 0.85)
        t = self.local(day, admin.tz, 15.5)
        hook = f"wh-{rng.randint(1000, 9999)}"
        url = "https://events.pagerduty.example/integration"
        before = {
            "conditions": {"events": ["security.alert"]},
            "actions": {"url": url, "enabled": True},
        }
        after = {**before, "actions": {"url": url, "enabled": False}}
        ids = [
            self.emit(
                org,
                t,
                "webhook.updated",
                actor=admin,
                resource={"type": "webhook", "id": hook, "name": "Security Alerts (PagerDuty)"},
                details={"before": before, "after": after},
            )
        ]
        when = t + timedelta(minutes=4)
        ids.append(
            self.emit(
                org,
                when,
                "organization.settings_updated",
                actor=admin,
                resource={"type": "organization", "id": org.org_id, "name": org.name},
                details={"setting": "audit_log_retention_days", "before": "365", "after": "7"},
            )
        )
        self.record(
            "defence_evasion",
            org,
            admin.email,
            "actor",
            ids,
            [t, when],
            f"{admin.email} disabled the security-alerts webhook and cut audit-log retention",
        )

        day = self.weekday_in(days, 0.5, 0.9)
        t = self.local(day, exporter.tz, 14.0)
        ids, times = [], []
        for k, rows in enumerate((25_000, 30_000, 28_000)):
            when = t + timedelta(minutes=10 * k, seconds=rng.randint(0, 30))
            ids.append(
                self.emit(
                    org,
                    when,
                    "audit_log.exported",
                    actor=exporter,
                    resource={"type": "audit_log", "id": org.org_id, "name": f"export-{k + 1}.csv"},
                    details={"format": "csv", "rows": rows},
                )
            )
            times.append(when)
        self.record(
            "mass_export",
            org,
            exporter.email,
            "actor",
            ids,
            times,
            f"{exporter.email} exported 83,000 audit entries in 20 minutes",
        )

    def inject(self, org: _Org, days: list[date], plan: dict[str, Any]) -> None:
        rng = self.rng
        victim, target, wanderer = plan["victim"], plan["target"], plan["wanderer"]
        deleter, suspended, admin = plan["deleter"], plan["suspended"], plan["admin"]

        day = self.weekday_in(days, 0.3, 0.5)
        t = self.local(day, victim.tz, 11.2)
        ids, times = [], []
        for k in range(9):
            when = t + timedelta(seconds=20 * k + rng.randint(0, 9))
            ids.append(
                self.emit(
                    org,
                    when,
                    "auth.failed",
                    actor=victim,
                    result="failure",
                    details={"reason": "invalid_password"},
                )
            )
            times.append(when)
        self.record(
            "failed_login_spike",
            org,
            victim.email,
            "actor",
            ids,
            times,
            f"9 failed sign-ins for {victim.email} within 3 minutes",
        )

        day = self.weekday_in(days, 0.5, 0.7)
        attacker = f"185.220.101.{rng.randint(2, 250)}"
        bot = "python-requests/2.32.3"
        t = self.local(day, target.tz, 14.5)
        ids, times = [], []
        for k in range(7):
            when = t + timedelta(seconds=50 * k + rng.randint(0, 20))
            ids.append(
                self.emit(
                    org,
                    when,
                    "auth.failed",
                    actor=target,
                    ip=attacker,
                    agent=bot,
                    result="failure",
                    details={"reason": "invalid_password"},
                )
            )
            times.append(when)
        when = t + timedelta(minutes=7)
        ids.append(
            self.emit(
                org,
                when,
                "auth.login",
                actor=target,
                ip=attacker,
                agent=bot,
                details={"method": "password"},
            )
        )
        times.append(when)
        self.record(
            "brute_force_success",
            org,
            target.email,
            "actor",
            ids,
            times,
            f"7 failures from {attacker} then a successful sign-in as {target.email}",
            # the failures are a spike too, and the attacker's network and client are new
            also=("failed_login_spikes", "unusual_access"),
        )

        day = self.weekday_in(days, 0.6, 0.8)
        sprayer = f"45.155.205.{rng.randint(2, 250)}"
        t = self.local(day, org.tz, 16.0)
        accounts = [u.email for u in org.users][:8] + [
            f"{n}@{org.domain}" for n in ("admin", "it", "info", "support")
        ]
        ids, times = [], []
        for k, email in enumerate(accounts):
            when = t + timedelta(seconds=40 * k + rng.randint(0, 10))
            ids.append(
                self.emit(
                    org,
                    when,
                    "auth.failed",
                    actor_type="user",
                    actor_email=email,
                    ip=sprayer,
                    agent=bot,
                    result="failure",
                    details={"reason": "invalid_password"},
                )
            )
            times.append(when)
        self.record(
            "password_spray",
            org,
            sprayer,
            "ip",
            ids,
            times,
            f"{sprayer} failed against {len(accounts)} accounts in 8 minutes",
        )

        day = self.weekday_in(days, 0.4, 0.9)
        t = self.local(day, admin.tz, 2.6)
        ids, times = [], []
        other = rng.choice([u for u in org.users if u is not admin])
        ids.append(self.emit(org, t, "auth.login", actor=admin, details={"method": "password"}))
        times.append(t)
        changes: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
            (
                "user.role_changed",
                {"type": "user", "id": other.user_id, "name": other.email},
                {"before": {"role": other.role}, "after": {"role": "admin"}},
            ),
            (
                "organization.settings_updated",
                {"type": "organization", "id": org.org_id, "name": org.name},
                {"setting": "require_mfa", "before": "true", "after": "false"},
            ),
        ]
        for k, (action, res, det) in enumerate(changes):
            when = t + timedelta(minutes=4 + 3 * k)
            ids.append(self.emit(org, when, action, actor=admin, resource=res, details=det))
            times.append(when)
        self.record(
            "off_hours_admin",
            org,
            admin.email,
            "actor",
            ids,
            times,
            f"{admin.email} changed a role and disabled MFA at ~02:40 local time",
            also=("defence_evasion",),  # require_mfa → false switches MFA off
        )

        day = self.weekday_in(days, 0.5, 0.9)
        t = self.local(day, deleter.tz, 15.0)
        ids, times = [], []
        for k in range(14):
            when = t + timedelta(seconds=20 * k + rng.randint(0, 5))
            if k % 5 == 4:
                app_id, app_name = rng.choice(org.apps)
                action, res = (
                    "application.deleted",
                    {"type": "application", "id": app_id, "name": app_name},
                )
            else:
                wid = f"wh-{rng.randint(1000, 9999)}"
                action, res = (
                    "webhook.deleted",
                    {"type": "webhook", "id": wid, "name": f"Webhook {wid[3:]}"},
                )
                org.webhooks.pop(wid, None)
            ids.append(self.emit(org, when, action, actor=deleter, resource=res))
            times.append(when)
        self.record(
            "bulk_deletions",
            org,
            deleter.email,
            "actor",
            ids,
            times,
            f"{deleter.email} deleted 14 webhooks and applications in 5 minutes",
        )

        day = self.weekday_in(days, 0.6, 0.95)
        new_ip = f"102.89.{rng.randint(2, 250)}.{rng.randint(2, 250)}"
        agent = "curl/8.5.0"
        t = self.local(day, wanderer.tz, 12.0)
        ids = [
            self.emit(
                org,
                t,
                "auth.login",
                actor=wanderer,
                ip=new_ip,
                agent=agent,
                details={"method": "password"},
            )
        ]
        times = [t]
        wid = sorted(org.webhooks)[0] if org.webhooks else "wh-0001"
        when = t + timedelta(minutes=2)
        ids.append(
            self.emit(
                org,
                when,
                "webhook.tested",
                actor=wanderer,
                ip=new_ip,
                agent=agent,
                resource={"type": "webhook", "id": wid, "name": "Production Webhook"},
            )
        )
        times.append(when)
        self.record(
            "new_ip_and_agent",
            org,
            wanderer.email,
            "actor",
            ids,
            times,
            f"{wanderer.email} signed in from never-seen {new_ip} with {agent}",
        )

        day = plan["suspend_day"]
        t = self.local(day, admin.tz, 10.0)
        ids = [
            self.emit(
                org,
                t,
                "user.suspended",
                actor=admin,
                resource={"type": "user", "id": suspended.user_id, "name": suspended.email},
                details={"reason": "left the company"},
            )
        ]
        times = [t]
        later = self.weekday_in([d for d in days if d > day] or [day], 0.0, 1.0)
        when = self.local(later, suspended.tz, 20.5)
        ids.append(
            self.emit(org, when, "auth.login", actor=suspended, details={"method": "api_key"})
        )
        times.append(when)
        when = when + timedelta(minutes=3)
        ids.append(
            self.emit(
                org,
                when,
                "webhook.updated",
                actor=suspended,
                resource={"type": "webhook", "id": "wh-0042", "name": "Payments Webhook"},
                details={
                    "before": {"actions": {"url": "https://hooks.partner1.example/in"}},
                    "after": {"actions": {"url": "https://exfil.example/collect"}},
                },
            )
        )
        times.append(when)
        self.record(
            "activity_after_suspension",
            org,
            suspended.email,
            "actor",
            ids,
            times,
            f"{suspended.email} acted after being suspended by {admin.email}",
            also=("off_hours",),  # 20:30 local: outside business hours too
        )


def generate(*, orgs: int = 3, days: int = 30, seed: int = 7, end: date | None = None) -> DemoData:
    """Generate demo tenants over ``days`` days ending (exclusive) at ``end`` (default: today, UTC).

    Output is deterministic for the same ``orgs``, ``days``, ``seed`` and ``end``.
    """
    if orgs < 1 or days < 7:
        raise ValueError("the demo needs at least 1 organization and 7 days")
    end = end or datetime.now(UTC).date()
    start_day = end - timedelta(days=days)
    gen = _Gen(
        seed, datetime.combine(start_day, time.min, UTC), datetime.combine(end, time.min, UTC)
    )
    all_days = [start_day + timedelta(days=i) for i in range(days)]
    tenants = []
    for i in range(orgs):
        org = gen.make_org(i)
        tenants.append(org)
        plan = gen.plan(org, all_days)  # first, so a suspended user's routine stops
        gen.context(org, all_days)
        for day in all_days:
            gen.routine_day(org, day)
        gen.inject(org, all_days, plan)
        gen.inject_more(org, all_days, plan, seed)
    gen.entries.sort(key=lambda e: (e["timestamp"], e["audit_id"]))
    organizations = [
        {
            "organization_id": o.org_id,
            "name": o.name,
            "domain": o.domain,
            "plan": o.plan,
            "timezone": str(o.tz),
            "users": [
                {"email": u.email, "user_id": u.user_id, "role": u.role, "timezone": str(u.tz)}
                for u in o.users
            ],
        }
        for o in tenants
    ]
    return DemoData(gen.entries, gen.incidents, organizations)
