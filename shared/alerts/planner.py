"""The alert planner (DESIGN §4): which deadline stages are due now, and per channel whether
to send, retry, or leave alone. Pure: no I/O, no clock; the caller passes ``now``.

Timeline of one deadline due at D, with stages (14, 7, 3, 1, 0):

    D-14d ... D-7d ... D-3d ... D-1d ... D ........ D+1d ..... D+1d+7d ...
    "14d"     "7d"     "3d"     "1d"     "0d"       overdue@   overdue@        (overdue = true)
                                                    nothing more               (milestone)

At any instant exactly one stage is current; a run plans only that one. If it is already
in the ledger nothing is sent, so a late first run never replays the earlier stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from shared.alerts.model import DueAlert, LedgerEntry, LedgerKey, LedgerStatus, TenantCertificate
from shared.alerts.rules import Deadline, Rules

ONE_DAY = timedelta(days=1)
CLAIM_TIMEOUT = timedelta(minutes=10)  # a claim older than this belongs to a dead run
RETRY_BASE = timedelta(minutes=5)
RETRY_CAP = timedelta(hours=6)
# Sends whose outcome was unknown after which a row is not tried again: with the first
# unclear send and its one retry, a peer that never answers sees at most two posts.
MAX_UNCLEAR_SENDS = 2


class Decision(StrEnum):
    PLANNED = "planned"  # no ledger row yet: claim and send
    RETRY = "retry"  # a failed or unknown send whose backoff has passed, or a stale claim
    # sent, claimed by a live run, failed or unknown and backing off, or unknown twice
    ALREADY_SENT = "already-sent"


@dataclass(frozen=True)
class PlannedAlert:
    alert: DueAlert
    decisions: Mapping[str, Decision]  # channel -> decision, in the order channels were given

    @property
    def channels_to_send(self) -> tuple[str, ...]:
        return tuple(c for c, d in self.decisions.items() if d is not Decision.ALREADY_SENT)

    def ledger_key(self, channel: str) -> LedgerKey:
        return self.alert.ledger_key(channel)


@dataclass(frozen=True)
class AlertPlan:
    items: tuple[PlannedAlert, ...]  # ordered by tenant, then due date, deadline, certificate

    def to_send(self, channel: str) -> list[PlannedAlert]:
        """What a run should claim and send on ``channel`` (planned and retry), by tenant."""
        return [
            i
            for i in self.items
            if i.decisions.get(channel, Decision.ALREADY_SENT) is not Decision.ALREADY_SENT
        ]

    @property
    def has_work(self) -> bool:
        return any(i.channels_to_send for i in self.items)


def next_attempt_after(attempts: int, now: datetime) -> datetime:
    """When a send that has failed ``attempts`` times may be tried again: 5 min, 10, 20, ...
    doubling, never more than 6 h apart (a channel down for a day is still retried)."""
    exponent = min(max(attempts, 1) - 1, 7)  # 5 min * 2**7 already passes the cap
    return now + min(RETRY_BASE * (2**exponent), RETRY_CAP)


def decide(
    entry: LedgerEntry | None, now: datetime, claim_timeout: timedelta = CLAIM_TIMEOUT
) -> Decision:
    """What to do on one channel, given its ledger row (or none)."""
    if entry is None:
        return Decision.PLANNED
    if entry.status == LedgerStatus.SENT:
        return Decision.ALREADY_SENT
    if entry.status == LedgerStatus.CLAIMED:
        # A claim without a time cannot be aged; treat it as stale rather than lose the message.
        if entry.claimed_at is None or now - entry.claimed_at >= claim_timeout:
            # The dead run may have sent it: taking over counts as one more unclear send.
            if entry.unclear_sends + 1 >= MAX_UNCLEAR_SENDS:
                return Decision.ALREADY_SENT
            return Decision.RETRY
        return Decision.ALREADY_SENT
    if entry.status == LedgerStatus.UNKNOWN and entry.unclear_sends >= MAX_UNCLEAR_SENDS:
        return Decision.ALREADY_SENT  # it may have arrived twice: a third post is worse
    # FAILED or UNKNOWN: retried once its backoff has passed (no time recorded: now).
    if entry.next_attempt_at is None or entry.next_attempt_at <= now:
        return Decision.RETRY
    return Decision.ALREADY_SENT


@dataclass(frozen=True)
class _Rule:
    """A deadline compiled for fast planning: its group's verdict filter and actions."""

    deadline: Deadline
    applies_to: frozenset[str] | None  # None: every tenant CA
    actions: tuple[str, ...]
    overdue_every: timedelta


class AlertPlanner:
    """Compiles the rules once; ``plan`` then costs a few datetime operations per deadline."""

    def __init__(self, rules: Rules, claim_timeout: timedelta = CLAIM_TIMEOUT) -> None:
        self.claim_timeout = claim_timeout
        # Most urgent first: the current stage is the first one whose lead time has begun.
        self._stages = tuple((f"{n}d", timedelta(days=n)) for n in sorted(set(rules.stages)))
        self._max_lead = self._stages[-1][1]
        rules_list: list[_Rule] = []
        for incident in rules.incidents:
            for d in incident.deadlines:
                rules_list.append(
                    _Rule(
                        d,
                        frozenset(incident.applies_to),
                        incident.actions,
                        _days(d.overdue_every_days),
                    )
                )
        if rules.rotation is not None:
            for d in rules.rotation.deadlines:
                rules_list.append(
                    _Rule(d, None, rules.rotation.actions, _days(d.overdue_every_days))
                )
        self._fixed = tuple(r for r in rules_list if r.deadline.at is not None)
        self._relative = tuple(r for r in rules_list if r.deadline.at is None)

    def current_stage(
        self, due: datetime, now: datetime, overdue: bool, every: timedelta
    ) -> tuple[str, str] | None:
        """(stage, stage_key) current at ``now`` for a deadline due at ``due``, or None."""
        if now < due - self._max_lead:
            return None
        start_overdue = due + ONE_DAY
        if now < start_overdue:
            for name, lead in self._stages:
                if now >= due - lead:
                    return name, name
            return None
        if not overdue:
            # A milestone is news only up to its day; reminding a week later is noise.
            return None
        reminder = start_overdue + every * ((now - start_overdue) // every)
        return "overdue", f"overdue@{reminder.astimezone(UTC).date().isoformat()}"

    def next_stage_change(
        self, due: datetime, now: datetime, overdue: bool, every: timedelta
    ) -> datetime | None:
        """The first moment after ``now`` at which ``current_stage`` may give a new stage
        key for this deadline; None when it never will (a milestone that has passed)."""
        start_overdue = due + ONE_DAY
        for _name, lead in reversed(self._stages):  # earliest boundary first
            if due - lead > now:
                return due - lead
        if start_overdue > now:
            return start_overdue
        if not overdue:
            return None
        return start_overdue + every * ((now - start_overdue) // every + 1)

    def next_check(self, cert: TenantCertificate, now: datetime) -> datetime | None:
        """When the alert index should next offer ``cert``: the earliest moment a new stage
        of one of its deadlines begins. Between two such moments a pass has nothing new to
        send for it, so the timer need not read it (steady passes stay O(newly due))."""
        moments: list[datetime] = []
        for rule in (*self._fixed, *self._relative):
            if rule.applies_to is not None and cert.verdict not in rule.applies_to:
                continue
            due = rule.deadline.due_for(cert.not_after)
            moment = self.next_stage_change(due, now, rule.deadline.overdue, rule.overdue_every)
            if moment is not None:
                moments.append(moment)
        return min(moments, default=None)

    def due_alerts(
        self, now: datetime, certificates: Iterable[TenantCertificate]
    ) -> list[DueAlert]:
        """Every (certificate, deadline) whose current stage is due, regardless of the ledger."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        # A fixed date gives the same stage for every certificate: work it out once.
        fixed = []
        for rule in self._fixed:
            due = rule.deadline.at
            assert due is not None
            stage = self.current_stage(due, now, rule.deadline.overdue, rule.overdue_every)
            if stage is not None:
                fixed.append((rule, due, stage))
        relative = self._relative
        out: list[DueAlert] = []
        for cert in certificates:
            if cert.resolved_by or cert.acknowledged:
                continue
            for rule, due, stage in fixed:
                if rule.applies_to is None or cert.verdict in rule.applies_to:
                    out.append(_alert(cert, rule, due, stage, now))
            for rule in relative:
                if rule.applies_to is not None and cert.verdict not in rule.applies_to:
                    continue
                due = rule.deadline.due_for(cert.not_after)
                stage = self.current_stage(due, now, rule.deadline.overdue, rule.overdue_every)
                if stage is not None:
                    out.append(_alert(cert, rule, due, stage, now))
        out.sort(key=lambda a: (a.tenant_id, a.due, a.deadline_id, a.certificate))
        return out

    def plan(
        self,
        now: datetime,
        certificates: Iterable[TenantCertificate],
        ledger: Mapping[LedgerKey, LedgerEntry],
        channels: Sequence[str],
    ) -> AlertPlan:
        return self.decide_all(now, self.due_alerts(now, certificates), ledger, channels)

    def decide_all(
        self,
        now: datetime,
        due: Iterable[DueAlert],
        ledger: Mapping[LedgerKey, LedgerEntry],
        channels: Sequence[str],
    ) -> AlertPlan:
        """The per-channel decision for alerts already worked out by ``due_alerts`` (the
        timer reads their ledger rows in between, so it does not plan them twice)."""
        timeout = self.claim_timeout
        items = tuple(
            PlannedAlert(
                alert,
                {c: decide(ledger.get(alert.ledger_key(c)), now, timeout) for c in channels},
            )
            for alert in due
        )
        return AlertPlan(items)


def plan(
    now: datetime,
    certificates: Iterable[TenantCertificate],
    ledger: Mapping[LedgerKey, LedgerEntry],
    channels: Sequence[str],
    rules: Rules,
) -> AlertPlan:
    """One-shot form of ``AlertPlanner(rules).plan(...)``."""
    return AlertPlanner(rules).plan(now, certificates, ledger, channels)


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def _alert(
    cert: TenantCertificate, rule: _Rule, due: datetime, stage: tuple[str, str], now: datetime
) -> DueAlert:
    return DueAlert(
        tenant_id=cert.tenant_id,
        certificate=cert.sha256,
        sha1_thumbprint=cert.sha1_thumbprint,
        subject=cert.subject,
        not_before=cert.not_before,
        not_after=cert.not_after,
        deadline_id=rule.deadline.id,
        deadline_title=rule.deadline.title,
        due=due,
        stage=stage[0],
        stage_key=stage[1],
        days_left=(due - now) // ONE_DAY,
        message=rule.deadline.message,
        actions=rule.actions,
        action=rule.deadline.action,
        todo=rule.deadline.what_to_do,
    )


# --- resolution --------------------------------------------------------------------------


class _CertLike(Protocol):
    @property
    def tenant_id(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def not_before(self) -> datetime: ...
    @property
    def verdict(self) -> str: ...


def resolve_replacements(
    certs: Iterable[_CertLike], rules: Rules | None = None
) -> dict[str, str | None]:
    """sha256 -> sha256 of the tenant CA that replaces it (the newest qualifying), or None,
    by the certificates on record alone (``registration.resolve_with_evidence`` adds the
    registration evidence)."""
    return {
        sha: (found[0] if found else None)
        for sha, found in replacement_candidates(certs, rules).items()
    }


def replacement_candidates(
    certs: Iterable[_CertLike], rules: Rules | None = None
) -> dict[str, list[str]]:
    """sha256 -> the tenant CAs that may replace it, newest first.

    A tenant CA is replaced by a newer tenant CA of the same tenant. An ``affected`` one
    only by a certificate that is not affected itself and was issued after the window of
    the incident that caught it (a second certificate from inside the window fixes nothing).
    """
    if rules is None:
        from shared.alerts.rules import load_rules

        rules = load_rules()
    by_tenant: dict[str, list[_CertLike]] = {}
    for cert in certs:
        by_tenant.setdefault(cert.tenant_id.lower(), []).append(cert)
    out: dict[str, list[str]] = {}
    for group in by_tenant.values():
        # Newest first; sha256 breaks ties so the answer does not depend on input order.
        group.sort(key=lambda c: (c.not_before, c.sha256), reverse=True)
        for cert in group:
            out[cert.sha256] = _candidates(cert, group, rules)
    return out


def _candidates(cert: _CertLike, newest_first: list[_CertLike], rules: Rules) -> list[str]:
    after = cert.not_before
    if cert.verdict == "affected":
        for incident in rules.incidents:
            if incident.contains(cert.not_before):
                after = max(after, incident.window_end)
    found = []
    for other in newest_first:
        if other.not_before <= after:
            break  # sorted: nothing older qualifies either
        if cert.verdict == "affected" and other.verdict == "affected":
            continue
        found.append(other.sha256)
    return found
