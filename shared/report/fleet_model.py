"""The fleet report's view: what the page shows for the fleet, per tenant, per tenant CA,
per deadline and per registration target, and the display helpers every part of the
report uses (text cut to one line, the rules file's name, a time from a document). Built
by fleet.py from a report/v1 document; rendered by fleet_page.py and fleet_timeline.py.
Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.alerts.rules import Rules
from shared.alerts.states import CA_STATES, RANK, State, state

FAILED_ROWS = 5  # refused uploads listed; older ones fold into one line
CLOSED = frozenset({"resolved", "acknowledged", "retired"})  # no deadline of these is next
MAX_TEXT = 300  # one hostile subject must not make the page megabytes long


@dataclass(frozen=True)
class SentStage:
    """One ``sent`` row of the ledger (what the report shows as "last stage sent")."""

    tenant_id: str
    certificate: str
    deadline_id: str
    stage_key: str
    channel: str
    sent_at: datetime | None


@dataclass(frozen=True)
class DeadlineView:
    id: str
    title: str
    due: datetime
    days_left: int  # whole days from now; negative once passed
    stage: str | None  # the alert stage current now ("14d" ... "0d", "overdue"), or None
    fixed: bool  # a date of the rules (drawn as a line), not relative to notAfter
    action: bool = True  # the operator's deadline; False: a milestone (information)
    when: str = ""  # "13 days left", "overdue since 2020-08-18"; "from/since <date>"
    late: bool = False  # an action deadline that has passed

    @property
    def live(self) -> bool:
        """An action deadline still ahead, or overdue and reminding."""
        return self.action and (self.stage is not None or not self.late)

    def urgency(self) -> tuple[datetime]:
        return (self.due,)  # the earliest first: the most overdue, else the least time left


@dataclass
class CaView:
    sha256: str
    sha1: str
    subject: str
    not_before: datetime | None
    not_after: datetime | None
    verdict: str
    mismatch: str
    resolved_by: str | None
    acknowledged: Mapping[str, Any] | None
    sources: list[str]
    registrations: list[Mapping[str, Any]]
    deadlines: list[DeadlineView] = field(default_factory=list)
    state: str = "ok"
    given_state: str | None = None  # the document's own state for it, when it names one
    retired: Mapping[str, Any] | None = None

    @property
    def open(self) -> bool:
        if self.given_state:
            return self.given_state not in CLOSED
        return not (self.resolved_by or self.acknowledged or self.retired)

    @property
    def state_view(self) -> State:
        return state(self.state)

    @property
    def next_deadline(self) -> DeadlineView | None:
        live = [d for d in self.deadlines if d.live] if self.open else []
        return min(live, key=DeadlineView.urgency, default=None)


@dataclass(frozen=True)
class TargetRow:
    target: str
    display_name: str
    kind: str
    current: str  # "verified" | "unverified" | "absent"
    renewed: str | None  # None: no renewal on record
    seen_at: str
    error: str | None
    source: str = ""  # "live read" or the uploaded listing's blob name (issue 21)


@dataclass
class TenantView:
    tenant_id: str
    cas: list[CaView]  # oldest first
    current: CaView | None  # the oldest CA not replaced: the one devices chain to now
    renewal: CaView | None  # the newest CA issued after it
    state: str
    next_deadline: DeadlineView | None
    sent: list[tuple[str, str]]  # (channel, "stage of deadline on date")
    targets: list[TargetRow]
    uploads: list[Mapping[str, Any]]

    @property
    def state_view(self) -> State:
        return state(self.state)

    def urgency(self) -> tuple[Any, ...]:
        nd = self.next_deadline
        return (RANK[self.state], nd is None, nd.due if nd else self.tenant_id, self.tenant_id)


@dataclass
class FleetView:
    now: datetime
    rules: Rules
    tenants: list[TenantView]  # most urgent first
    other_certificates: int  # certificates that are not tenant CAs
    failed_uploads: list[Mapping[str, Any]]  # not analyzed and not retired, newest first
    uploads: int
    counts: Mapping[str, int]  # certificates, tenant_cas, affected, resolved, pending, ...
    next_deadline: tuple[DeadlineView, int] | None  # the earliest action ahead, tenants hit
    overdue_tenants: int
    retired_uploads: int = 0

    @property
    def states(self) -> tuple[State, ...]:
        return CA_STATES

    @property
    def rules_name(self) -> str:
        """The rules file's name, never its absolute path (the page may be shared)."""
        return rules_name(self.rules.source)


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """One line of display text from any JSON value (control characters become spaces)."""
    out = str("" if value is None else value)
    if not out.isprintable():  # rare: only then look at each character
        out = "".join(ch if ch.isprintable() else " " for ch in out)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def rules_name(source: str) -> str:
    from shared.alerts.rules import DEFAULT_RULES_PATH

    if source == str(DEFAULT_RULES_PATH):
        return "built-in rules"
    return text(source.replace("\\", "/").rsplit("/", 1)[-1], 120)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
