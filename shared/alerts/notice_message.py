"""Announcements (DESIGN §4 "Every resolution is announced"): which tenant, which CA
replaced which, and the evidence with its source; acknowledgements, their withdrawal and
retirements too, so that silence is never silent. Pure: notices in, a message out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.alerts.model import RenderedMessage
from shared.alerts.operator_message import render_operator_message
from shared.alerts.tenant_blocks import format_time
from shared.alerts.text_safety import cert_text

BASIS_TEXT = {
    "registration": "registration evidence: the renewal is listed and verified in every "
    "target that trusted the current CA",
    "authenticated-renewal": "no target ever listed the current CA (no registration evidence "
    "seen); the renewal is authenticated (its signature verifies under the current CA's "
    "issuer, or a live Azure Sphere catalog lists it)",
}


@dataclass(frozen=True)
class Notice:
    """One event to announce: which tenant, which CA, what happened and on what evidence."""

    tenant_id: str
    certificate: str  # sha256 of the CA that closed (or was silenced, retired)
    kind: str  # resolved | acknowledged | ack-withdrawn | retired
    ref: str  # what makes the event unique: the renewal's sha256, the ack's time, ...
    at: datetime
    subject: str = ""
    renewed: str | None = None
    renewed_thumbprint: str | None = None
    by: str | None = None
    until: datetime | None = None
    basis: str | None = None
    evidence: tuple[dict[str, Any], ...] = field(default=())


def _source(item: dict[str, Any]) -> str:
    source = item.get("source") or "unknown source"
    when = item.get("seen_at") or "an unknown time"
    if source == "live":
        return f"live read at {when}"
    return f"upload {cert_text(source, 200)} (stored {when})"


def _basis_text(basis: str | None) -> str:
    if not basis:  # a row written before the basis was recorded
        return (
            "not recorded with this resolution; `ca-watch report` shows each target's "
            "listing, its source and time."
        )
    return f"{BASIS_TEXT.get(basis, cert_text(basis, 100))}."


def notice_lines(notice: Notice) -> list[str]:
    """The lines of one notice, every value cleaned and defanged."""
    head = f"Tenant {cert_text(notice.tenant_id, 80)}: CA {notice.certificate[:16]}…"
    subject = f" ({cert_text(notice.subject, 200)})" if notice.subject else ""
    who = cert_text(notice.by or "an operator", 100)
    if notice.kind == "resolved":
        renewed = notice.renewed_thumbprint or (notice.renewed or "")[:16]
        lines = [
            f"{head}{subject} is resolved: replaced by the renewed CA {renewed}.",
            f"Evidence: {_basis_text(notice.basis)}",
        ]
        lines += [
            f"  ✔ {cert_text(e.get('display_name') or e.get('target'), 200)} "
            f"({cert_text(e.get('kind'), 20)}): renewal {cert_text(e.get('renewed'), 20)}, "
            f"{_source(e)}"
            for e in notice.evidence
        ]
        return lines
    if notice.kind == "acknowledged":
        until = f" until {format_time(notice.until)}" if notice.until else " with no end date"
        return [
            f"{head}{subject} was acknowledged by {who}{until}: its alerts are silenced.",
            "It covers only the CAs on record now; `ca-watch ack --withdraw` ends it.",
        ]
    if notice.kind == "ack-withdrawn":
        return [f"{head}{subject}: {who} withdrew its acknowledgement; its alerts resume."]
    if notice.kind == "activated":
        renewed = notice.renewed_thumbprint or (notice.renewed or "")[:16]
        return [
            f"{head}{subject}: the renewed CA {renewed} is now Active in its Azure Sphere "
            "catalog. Devices present it now: in every target below they fail until it is "
            "registered and verified there.",
            *(
                f"  ☐ {cert_text(e.get('display_name') or e.get('target'), 200)} "
                f"({cert_text(e.get('kind'), 20)}): renewal {cert_text(e.get('renewed'), 20)}, "
                f"{_source(e)}"
                for e in notice.evidence
            ),
        ]
    if notice.kind == "look-alike":
        fake = (notice.renewed or "")[:16]
        return [
            f"{head}{subject}: a certificate with this tenant's name, {fake}…,"
            " is a look-alike: its signature does not verify under the issuer that signed the "
            "current CA. It is never counted as the renewal.",
            "Find out who uploaded it; the real renewal comes from `azsphere ca list`.",
        ]
    if notice.kind == "retired":
        return [f"{head}{subject} was retired by {who}: it is no longer watched."]
    return [f"{head}{subject}: {cert_text(notice.kind, 40)}."]


def render_notices(notices: Sequence[Notice], now: datetime) -> RenderedMessage:
    """One message announcing ``notices`` (at least one)."""
    kinds = sorted({n.kind for n in notices})
    if len(notices) == 1:
        only = notices[0]
        title = f"{only.kind}: tenant {cert_text(only.tenant_id, 80)}"
    else:
        title = f"{len(notices)} notices ({', '.join(kinds)})"
    lines: list[str] = []
    for notice in notices:
        if lines:
            lines.append("")
        lines += notice_lines(notice)
    message = render_operator_message(title, lines, now, kind="notice")
    return message
