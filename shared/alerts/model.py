"""Value objects shared by the planner, the message renderer, the ledger and the channels.

Pure data: no Azure import, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.alerts.registration import Registration


@dataclass(frozen=True)
class TenantCertificate:
    """A tenant CA as the alert planner sees it (one row of the store's index)."""

    tenant_id: str
    sha256: str
    sha1_thumbprint: str
    subject: str
    not_before: datetime
    not_after: datetime
    verdict: str  # "affected" | "signature-mismatch" | "ok"
    resolved_by: str | None = None  # sha256 of the newer tenant CA that replaces it
    acknowledged: bool = False
    ack_until: datetime | None = None  # an acknowledgement in force ends by itself then
    # Its alert-index RowKeys when read from the index (normally one; two after a race).
    index_keys: tuple[str, ...] = ()


class LedgerStatus(StrEnum):
    CLAIMED = "claimed"  # a run owns the send; a stale claim may be taken over
    SENT = "sent"
    FAILED = "failed"  # retried by a later run once next_attempt_at has passed
    # Sent, but no answer came back (a read timeout, a dropped connection, a 5xx): it may
    # have arrived. Retried once by a later run, marked as a possible repeat; never again
    # after a second unclear send (at most two posts).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LedgerKey:
    """Exactly one message per key (DESIGN §4)."""

    tenant_id: str
    certificate: str  # sha256
    deadline_id: str  # rule id, e.g. "incident-2020-07/activation"
    stage_key: str  # "14d" ... "0d", or "overdue@2020-08-19" for each overdue reminder
    channel: str

    def row_key(self) -> str:
        return "|".join((self.certificate, self.deadline_id, self.stage_key, self.channel))


@dataclass(frozen=True)
class LedgerEntry:
    key: LedgerKey
    status: LedgerStatus
    attempts: int = 0
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None
    unclear_sends: int = 0  # sends whose outcome is unknown: each may have arrived

    @property
    def possible_repeat(self) -> bool:
        """A send now may repeat a message that arrived without our knowing."""
        return self.unclear_sends > 0


@dataclass(frozen=True)
class DueAlert:
    """One (certificate, deadline, stage) that a run should announce."""

    tenant_id: str
    certificate: str  # sha256
    sha1_thumbprint: str
    subject: str
    not_before: datetime
    not_after: datetime
    deadline_id: str
    deadline_title: str  # e.g. "Renewed tenant CA activates"
    due: datetime
    stage: str  # "14d" | "7d" | "3d" | "1d" | "0d" | "overdue"
    stage_key: str  # stage, or "overdue@<date>" so each reminder is its own ledger row
    days_left: int  # whole days from now to due; negative when overdue
    message: str  # the rule's text for the operator
    actions: tuple[str, ...] = field(default=())
    # Where the current CA is registered and what is left (None: not looked up).
    registration: Registration | None = None
    # The CA's state in the one vocabulary (shared.alerts.states) as the store has it; ""
    # when not looked up (the planner alone): tenant_blocks.tenant_state_id then derives one.
    state: str = ""
    # An action deadline (the operator's own) or a milestone (information only), and what
    # to do by an action deadline (rules.Deadline.action / what_to_do).
    action: bool = True
    todo: str = ""

    def ledger_key(self, channel: str) -> LedgerKey:
        return LedgerKey(
            self.tenant_id, self.certificate, self.deadline_id, self.stage_key, channel
        )


@dataclass(frozen=True)
class RenderedMessage:
    """One message for one channel and run, in every form a channel may need."""

    subject: str
    text: str  # plain text (email text part, outbox)
    html: str  # email HTML part, every certificate value escaped
    adaptive_card: dict  # Teams Adaptive Card content (the attachment's "content")
    item_count: int  # items listed, not counting the "and N more" tail
    omitted_count: int = 0  # items folded into "and N more"
