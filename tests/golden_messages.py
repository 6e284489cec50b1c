"""Golden alert messages: a few fixed runs with hostile, over-long and edge-case fields
(long tenant ids, Markdown/HTML/template syntax, URLs, control and bidi characters, a
registration section with commands, naive and non-UTC times, blank rule texts, the "and N
more" cut and the possible-repeat note), rendered in every form (subject, text, HTML,
Adaptive Card). test_mutants_message.py compares with the committed JSON. Not a test
module. Regenerate only on purpose and review the diff:
    .venv/bin/python tests/golden_messages.py
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from golden_alerts import message_forms

EXPECTED = Path(__file__).parent / "data" / "golden" / "expected-messages.json"
NOW = datetime(2020, 8, 4, 9, 0)  # naive: UTC, like every naive time in the app
CUT_BYTES = 9_000  # the "cut" run's card limit: some items fit, the rest become "and N more"

HOSTILE = "<b>&amp;</b> **bold** _it_ [link](https://evil.example.com/x) ${cardData} `code`"
BIDI = "\u202etxt.exe\u2066\u200b"
SUB = "/subscriptions/0000/resourcegroups/fleet-rg/providers/microsoft.devices"


def _registration(kind: str) -> object:
    from shared.alerts.registration import (
        ABSENT,
        UNVERIFIED,
        VERIFIED,
        Registration,
        TargetState,
    )

    renewed_thumb = "ABCDEF12" + "0" * 32
    if kind == "commands":  # two pending targets: summary, targets, then every command
        return Registration(
            True,
            "b" * 64,
            (
                TargetState(f"{SUB}/iothubs/fleet-hub", "iot-hub", "fleet-hub", VERIFIED, ABSENT),
                TargetState(
                    f"{SUB}/provisioningservices/fleet-dps",
                    "dps",
                    "fleet-dps",
                    VERIFIED,
                    UNVERIFIED,
                    "old-ca",
                    "renewed-ca",
                ),
                TargetState("other", "other", f"hub {HOSTILE}", VERIFIED, ABSENT),
                TargetState(f"{SUB}/iothubs/done-hub", "iot-hub", "done-hub", VERIFIED, VERIFIED),
            ),
            renewed_thumbprint=renewed_thumb,
        )
    if kind == "no-renewal":  # no renewed CA yet; one target with a very long name
        long_name = "central " + "n" * 1_500 + " https://evil.example.com"
        return Registration(
            True,
            None,
            (TargetState("app", "iot-central", long_name, UNVERIFIED, ABSENT),),
        )
    return Registration(False, None, ())  # no evidence at all


def _item(
    tenant: str,
    n: int,
    stage: str,
    days_left: int,
    **fields: Any,
) -> object:
    from shared.alerts.model import DueAlert

    values: dict[str, Any] = {
        "tenant_id": tenant,
        "certificate": f"{n:064x}",
        "sha1_thumbprint": f"{n:08x}c8d1{n:028x}",
        "subject": f"C=US, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant}",
        "not_before": datetime(2020, 7, 1, 12, 30, tzinfo=UTC),
        "not_after": datetime(2022, 7, 1, 12, 30, tzinfo=UTC),
        "deadline_id": "incident-2020-07/activation",
        "deadline_title": "Renewed tenant CA activates",
        "due": NOW.replace(tzinfo=UTC) + timedelta(days=days_left, hours=3),
        "stage": stage,
        "stage_key": stage,
        "days_left": days_left,
        "message": "Register the renewed tenant CA before it activates.",
        "actions": ("Run azsphere ca list",),
    }
    values.update(fields)
    return DueAlert(**values)


HOSTILE_TENANT = f"tenant {HOSTILE} {BIDI}\r\nBcc: victim@example.com"
GUID = "22222222-2222-4222-8222-222222222222"


def hostile_items() -> list[object]:
    """One tenant with hostile values everywhere, one with a plain GUID; every time-left
    label (days, hours, overdue by hours, by days, since a date) and both tenses of a
    milestone; every kind of registration section; a tenant CA with two deadlines due."""
    over_long_subject = (
        "CN=Microsoft Azure Sphere " + "s" * 700 + " www.evil.example.com " + "t" * 200
    )
    return [
        _item(
            HOSTILE_TENANT,
            1,
            "overdue",
            -2,
            subject=f"CN={HOSTILE}\r\nE=ops@evil.example.com {BIDI}",
            deadline_title=f"Activation {HOSTILE} " + "x" * 500,
            message=f"Act now:\t{HOSTILE}\n" + "m" * 2_500,
            actions=(f"Open {HOSTILE}", "a" * 1_200, "Tell the owner of hub FLEET-X"),
            registration=_registration("commands"),
            # a naive start (UTC) and a non-UTC expiry (converted, not relabelled)
            not_before=datetime(2020, 7, 1, 12, 30),
            not_after=datetime(2022, 7, 1, 23, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
        _item(
            HOSTILE_TENANT,
            2,
            "0d",
            0,
            message="   ",  # a blank rule text: no paragraph, not an empty one
            actions=("Ask the owner of FLEET-X",),
            subject=over_long_subject,
        ),
        _item(GUID, 3, "1d", 1, registration=_registration("none")),
        _item(GUID, 4, "3d", 2, registration=_registration("no-renewal")),
        # Due earlier today: stage 0d, yet a day count of -1 (urgent, "overdue by 1 day").
        _item(GUID, 5, "0d", -1, deadline_id="incident-2020-07/expiry"),
        _item(GUID, 6, "14d", 13, deadline_title="Renewed tenant CA activates in two weeks"),
        # A milestone of a tenant CA already listed: information, shown under the same CA.
        _item(
            GUID,
            3,
            "0d",
            0,
            action=False,
            deadline_id="incident-2020-07/renewal-available",
            deadline_title="Renewed tenant CA available",
            due=NOW.replace(tzinfo=UTC) + timedelta(hours=15),
        ),
        # A milestone that has passed reads "since"; an action nine days late, as a date.
        _item(
            HOSTILE_TENANT,
            1,
            "0d",
            -1,
            action=False,
            deadline_id="incident-2020-07/renewal-available",
            deadline_title="Renewed tenant CA available",
            due=NOW.replace(tzinfo=UTC) - timedelta(hours=9),
        ),
        _item(
            HOSTILE_TENANT,
            8,
            "overdue",
            -9,
            todo="Register the renewed tenant CA before it activates",
            due=NOW.replace(tzinfo=UTC) - timedelta(days=9),
        ),
    ]


def cut_items() -> list[object]:
    """More than fits in CUT_BYTES: three tenants, the tail says how many are left out."""
    tenants = [f"{t}{t}{t}{t}{t}{t}{t}{t}-0000-4000-8000-000000000000" for t in "abc"]
    return [
        _item(tenants[n % 3], 100 + n, "7d", 7 - n % 3, message="Short text.") for n in range(12)
    ]


def messages() -> dict[str, Any]:
    from shared.alerts.message import mark_possible_repeat, render_message

    hostile = render_message(hostile_items(), NOW)
    cut = render_message(cut_items(), NOW, max_card_bytes=CUT_BYTES)
    return {
        "hostile": message_forms(hostile),
        "cut": message_forms(cut),
        "cut, possible repeat": message_forms(mark_possible_repeat(cut)),
        "single, naive times": message_forms(
            render_message(
                [
                    replace(
                        _item(GUID, 7, "7d", 6),  # type: ignore[type-var]
                        due=datetime(2020, 8, 10, 12, 0),
                        not_after=datetime(2022, 7, 1, 12, 30),
                    )
                ],
                datetime(2020, 8, 4, 9, 0, tzinfo=timezone(timedelta(hours=-7))),
            )
        ),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    EXPECTED.write_text(json.dumps(messages(), indent=2, ensure_ascii=False) + "\n")
