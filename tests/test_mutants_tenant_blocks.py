"""The per-tenant view every form of an alert renders (shared/alerts/tenant_blocks.py),
pinned where a one-line change would go unnoticed: the state a tenant shows, an action
deadline due this very minute, the summary table's order and its milestone-only rows, the
per-certificate summary prefix, and the limits on values an uploader chose.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from golden_messages import NOW, _item

from shared.alerts.message import render_message
from shared.alerts.registration import ABSENT, VERIFIED, Registration, TargetState
from shared.alerts.tenant_blocks import tenant_state_id

A = "0a0a0a0a-1111-4222-8333-944445555666"
B = "0b0b0b0b-1111-4222-8333-944445555666"
SUB = "/subscriptions/0000/resourcegroups/fleet-rg/providers/microsoft.devices"


def _registration(*targets: TargetState) -> Registration:
    return Registration(True, "b" * 64, targets, renewed_thumbprint="ABCDEF12" + "0" * 32)


def _hub(name: str = "fleet-hub", **fields: object) -> TargetState:
    return TargetState(f"{SUB}/iothubs/{name}", "iot-hub", name, VERIFIED, ABSENT, **fields)  # type: ignore[arg-type]


def test_the_state_the_store_gives_an_item_wins() -> None:
    assert tenant_state_id([_item(A, 1, "7d", 7, state="lost-trust")]) == "lost-trust"
    assert tenant_state_id([_item(A, 1, "7d", 7, state="unknown")]) == "unknown"
    text = render_message([_item(A, 1, "7d", 7, state="lost-trust")], NOW).text
    assert "\nState: ✖ lost trust: " in text


def test_without_a_state_an_incident_ca_is_affected_until_a_renewal_is_on_record() -> None:
    none_yet = _item(A, 1, "7d", 7, registration=Registration(True, None, (_hub(),)))
    assert tenant_state_id([none_yet]) == "affected"
    renewed = _item(A, 1, "7d", 7, registration=_registration(_hub()))
    assert tenant_state_id([renewed]) == "pending"
    assert tenant_state_id([_item(A, 1, "7d", 7)]) == "affected"  # not looked up
    assert tenant_state_id([_item(A, 1, "7d", 7, deadline_id="rotation/expiry")]) == "pending"


def test_an_action_deadline_due_this_minute_is_not_yet_overdue() -> None:
    now = datetime(2020, 8, 18, 0, 0, tzinfo=UTC)
    item = _item(A, 1, "0d", 0, due=now)
    card = render_message([item], now).adaptive_card
    colours = [
        block.get("color")
        for container in card["body"]
        if container.get("type") == "Container"
        for block in container["items"]
        if "by 2020\\-08\\-18 00:00 UTC" in block.get("text", "")  # Markdown-escaped
    ]
    assert colours == ["Warning"]  # "Attention" (red) is for a deadline that has passed
    later = render_message([item], now + timedelta(minutes=1)).adaptive_card
    assert '"color": "Attention"' in str(later).replace("'", '"')


def _summary(text: str) -> list[str]:
    rest = text.partition("Summary: tenant | what to do | by when\n")[2]
    return rest.split("\n\n", 1)[0].splitlines()


def test_a_milestone_only_tenant_says_nothing_yet_and_comes_after_action_rows() -> None:
    milestone = _item(A, 1, "7d", 7, action=False, deadline_title="Renewal available")
    action = _item(B, 2, "7d", 9)
    rows = _summary(render_message([milestone, action], NOW).text)
    assert rows[0].startswith(f"  {B} | ")
    assert rows[1] == f"  {A} | Nothing yet: Renewal available from 2020-08-11 | -"


def test_a_checklist_summary_names_its_tenant_ca_only_when_the_tenant_has_two() -> None:
    reg = _registration(_hub())
    one = render_message([_item(A, 1, "7d", 7, registration=reg)], NOW).text
    assert "\n    Registered in 1 target(s); " in one
    two = render_message(
        [_item(A, 1, "7d", 7, registration=reg), _item(A, 2, "7d", 8, registration=reg)], NOW
    ).text
    assert "\n    Tenant CA 00000001: Registered in 1 target(s); " in two
    assert "\n    Tenant CA 00000002: Registered in 1 target(s); " in two


def _line_with(text: str, part: str) -> str:
    return next(line for line in text.splitlines() if part in line)


def test_an_uploaders_blob_name_in_the_evidence_is_defanged_and_cut_at_200() -> None:
    source = "https://evil.example.com/" + "a" * 400
    state = _hub(source=source, seen_at=datetime(2020, 8, 3, 9, 0, tzinfo=UTC))
    text = render_message([_item(A, 1, "7d", 7, registration=_registration(state))], NOW).text
    line = _line_with(text, "IoT Hub fleet-hub: current CA")
    evidence = line.split(" (", 1)[1][:-1]
    assert evidence.startswith("seen 2020-08-03 09:00 UTC, from hxxps://evil[.]example[.]com/")
    assert len(evidence) == 200 and evidence.endswith("…")


def test_a_command_naming_a_long_target_is_cut_at_1000_characters() -> None:
    name = "central " + "n" * 1_500
    state = TargetState("app", "iot-central", name, VERIFIED, ABSENT)
    text = render_message([_item(A, 1, "7d", 7, registration=_registration(state))], NOW).text
    command = _line_with(text, "In central nnn").strip()
    assert len(command) == 1000 and command.endswith("…")


def test_a_long_target_label_is_cut_at_1000_characters_too() -> None:
    name = "central " + "n" * 1_500
    state = TargetState("app", "iot-central", name, VERIFIED, ABSENT)
    text = render_message([_item(A, 1, "7d", 7, registration=_registration(state))], NOW).text
    line = _line_with(text, "☐ pending: IoT Central central").strip()
    label = line.split(": ", 1)[1].rsplit(": current CA", 1)[0]
    assert len(label) == 1000 and label.endswith("…")
