"""Rendered alert messages for the channel tests (one place, so each test says only what
differs: how many items, and what hostile subject they carry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.alerts.message import render_message
from shared.alerts.model import DueAlert, RenderedMessage

NOW = datetime(2020, 8, 4, 9, tzinfo=UTC)


def due_alert(index: int = 0, subject: str = "CN=Microsoft Azure Sphere <b>x</b>") -> DueAlert:
    return DueAlert(
        tenant_id="9d7e79eb-0000-0000-0000-000000000000",
        certificate=f"{index:064x}",
        sha1_thumbprint=f"{index:040X}",
        subject=subject,
        not_before=datetime(2020, 7, 1, tzinfo=UTC),
        not_after=datetime(2022, 7, 1, tzinfo=UTC),
        deadline_id="incident-2020-07/activation",
        deadline_title="Renewed tenant CA activates",
        due=NOW + timedelta(days=14),
        stage="14d",
        stage_key="14d",
        days_left=14,
        message="Register the renewed tenant CA.",
        actions=("Run azsphere ca list",),
    )


def rendered(
    count: int = 1, subject: str = "CN=Microsoft Azure Sphere <b>x</b>"
) -> RenderedMessage:
    """A message of ``count`` items; ``{i}`` in ``subject`` becomes the item's index."""
    return render_message([due_alert(i, subject.format(i=i)) for i in range(count)], NOW)
