"""Rendering one run's due alerts: grouping, escaping and the 28 KB Teams limit."""

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import markupsafe
import pytest

from shared.alerts.message import render_message
from shared.alerts.model import DueAlert
from shared.alerts.registration import Registration, TargetState
from shared.alerts.states import state
from shared.alerts.teams_card import encode_teams_payload
from shared.alerts.tenant_blocks import format_time, sort_items, when_label
from shared.alerts.text_safety import clean, defang, escape_markdown

NOW = datetime(2020, 8, 4, 9, 0, tzinfo=UTC)
TENANT_A = "11111111-1111-1111-1111-111111111111"
TENANT_B = "22222222-2222-2222-2222-222222222222"

INJECTIONS = (
    "<script>alert(1)</script>",
    "[click](http://evil)",
    "**bold**",
    "${cardData}",
    '<img src=x onerror="alert(2)">',
)


def alert(
    tenant: str = TENANT_A,
    *,
    n: int = 0,
    days_left: int = 14,
    stage: str = "14d",
    title: str = "Renewed tenant CA activates",
    subject: str | None = None,
    deadline_id: str = "incident-2020-07/activation",
    action: bool = True,
) -> DueAlert:
    return DueAlert(
        tenant_id=tenant,
        certificate=f"{n:064x}",
        sha1_thumbprint=f"c8d1{n:036x}",
        subject=subject or f"C=US, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant}",
        not_before=datetime(2020, 7, 1, 12, 30, tzinfo=UTC),
        not_after=datetime(2022, 7, 1, 12, 30, tzinfo=UTC),
        deadline_id=deadline_id,
        deadline_title=title,
        due=NOW + timedelta(days=days_left),
        stage=stage,
        stage_key=stage,
        days_left=days_left,
        message="Register the renewed tenant CA before it activates.",
        actions=(
            "Run azsphere ca list",
            "Register the newest certificate with IoT Hub, IoT Central and DPS",
        ),
        action=action,
    )


def card_texts(node: Any) -> list[str]:
    """Every string a Teams client would render as Markdown (TextBlock text, Fact title/value)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            found.append(node["text"])
        if "title" in node and "value" in node:
            found += [node["title"], node["value"]]
        for value in node.values():
            found += card_texts(value)
    elif isinstance(node, list):
        for value in node:
            found += card_texts(value)
    return found


def unescape_markdown(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text).replace("\u200b", "")


def listed_thumbprints(text: str) -> list[str]:
    return re.findall(r"C8D1[0-9A-F]{36}", text)


def test_groups_by_tenant_and_sorts_most_urgent_first() -> None:
    items = [
        alert(TENANT_B, n=1, days_left=7, stage="7d"),
        alert(TENANT_A, n=2, days_left=3, stage="3d"),
        alert(TENANT_B, n=3, days_left=-2, stage="overdue"),
        alert(TENANT_A, n=4, days_left=0, stage="0d"),
        alert(TENANT_B, n=5, days_left=1, stage="1d"),
    ]
    message = render_message(items, NOW)

    expected = [f"C8D1{n:036X}" for n in (4, 2, 3, 5, 1)]
    assert listed_thumbprints(message.text) == expected
    assert listed_thumbprints(message.html) == expected
    assert listed_thumbprints(json.dumps(message.adaptive_card)) == expected
    assert message.text.index(f"Tenant {TENANT_A}") < message.text.index(f"Tenant {TENANT_B}")
    assert message.item_count == 5 and message.omitted_count == 0
    # The subject names the next ACTION deadline: the one overdue for two days.
    assert message.subject == (
        "CA Rotation Watch: 5 deadlines for 2 tenants; next action: Renewed tenant CA "
        "activates by 2020-08-02 (overdue by 2 days)"
    )


def summary_rows(message_html: str) -> list[list[str]]:
    table = message_html.split('<table id="summary"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]


def test_a_summary_table_first_then_one_block_per_tenant_with_each_ca_once() -> None:
    items = [
        alert(TENANT_B, n=1, days_left=7, stage="7d"),
        alert(TENANT_A, n=2, days_left=3, stage="3d"),
        # The same tenant CA with a milestone and a second action deadline.
        alert(TENANT_A, n=2, days_left=1, stage="1d", title="Renewed tenant CA available",
              deadline_id="incident-2020-07/renewal-available", action=False),
        alert(TENANT_A, n=2, days_left=20, stage="14d", deadline_id="rotation/register-before",
              title="Register the renewed tenant CA"),
    ]  # fmt: skip
    message = render_message(items, NOW)
    assert message.text.index("Summary: tenant | what to do | by when") < message.text.index(
        "Tenant "
    )
    assert f"  {TENANT_A} | Renewed tenant CA activates | 2020-08-07 09:00 UTC (3 days left)" in (
        message.text
    )
    assert summary_rows(message.html) == [
        [TENANT_A, "Renewed tenant CA activates", "2020-08-07 09:00 UTC (3 days left)"],
        [TENANT_B, "Renewed tenant CA activates", "2020-08-11 09:00 UTC (7 days left)"],
    ]
    for form in (message.text, message.html):
        assert form.count(f"Tenant {TENANT_A}") == 1  # one block per tenant
        assert form.count(f"C8D1{2:036X}") == 1  # its CA shown once for three deadlines
        assert form.count("Register the renewed tenant CA before it activates.") == 2  # A, B
    assert "- Renewed tenant CA available from 2020-08-05 (information)" in message.text
    # Every block ends with its closing step, and so does the message.
    blocks = message.text.split("\nTenant ")[1:]
    assert len(blocks) == 2
    assert all(b.rstrip().splitlines()[-1].startswith("Closing step: ") for b in blocks)
    assert message.html.count('<p class="closing">') == 2


@pytest.mark.parametrize(
    ("due", "action", "label"),
    [
        (NOW + timedelta(days=13, hours=23), True, "13 days left"),  # never rounded up
        (NOW + timedelta(days=2), True, "2 days left"),
        (NOW + timedelta(hours=47, minutes=59), True, "47 hours left"),  # under 2 days: hours
        (NOW + timedelta(hours=15), True, "15 hours left"),  # not "due today, 0 days left"
        (NOW + timedelta(minutes=20), True, "due within the hour"),
        (NOW - timedelta(hours=9), True, "overdue by 9 hours"),  # not "overdue by 1 day"
        (NOW - timedelta(days=3, hours=5), True, "overdue by 3 days"),
        (NOW - timedelta(days=7), True, "overdue by 7 days"),
        (NOW - timedelta(days=7, hours=1), True, "overdue since 2020-07-28"),  # past a week
        (NOW - timedelta(days=662), True, "overdue since 2018-10-12"),
        (NOW + timedelta(hours=15), False, "from 2020-08-05"),  # a milestone ahead
        (NOW - timedelta(hours=9), False, "since 2020-08-04"),  # and behind: information
        (NOW - timedelta(days=30), False, "since 2020-07-05"),
    ],
)
def test_action_deadlines_show_time_left_and_milestones_read_in_the_right_tense(
    due: datetime, action: bool, label: str
) -> None:
    item = replace(alert(), due=due, action=action)
    assert when_label(item, NOW) == label
    message = render_message([item], NOW)
    line = next(line for line in message.text.splitlines() if line.startswith(("* ", "- ")))
    if action:
        assert line == f"* Renewed tenant CA activates: by {format_time(due)}, {label}"
        late = due < NOW
        assert ('<li class="late" style="color:#a80000">' in message.html) is late
    else:
        assert line == f"- Renewed tenant CA activates {label} (information)"
        assert "overdue" not in message.text and "#a80000" not in message.html
        assert "information" in message.subject


def test_the_subject_names_the_next_action_deadline_not_an_earlier_milestone() -> None:
    milestone = alert(n=1, days_left=-1, stage="0d", title="Renewed tenant CA available",
                      deadline_id="incident-2020-07/renewal-available", action=False)  # fmt: skip
    action = replace(alert(n=1, days_left=14), todo="Register the renewed tenant CA first")
    message = render_message([milestone, action], NOW)
    assert message.subject.endswith(
        "next action: Register the renewed tenant CA first by 2020-08-18 (14 days left)"
    )
    assert "overdue" not in message.text


def test_fields_shown_once_per_certificate() -> None:
    message = render_message([alert(days_left=1, stage="1d")], NOW)
    shown = {
        "Thumbprint (SHA-1)": "C8D1" + "0" * 36,  # upper case, as Azure shows it
        "Start date": "2020-07-01 12:30 UTC",  # notBefore, as `azsphere ca list` names it
        "Expires": "2022-07-01 12:30 UTC",
    }
    for label, value in shown.items():
        assert f"{label}: {value}" in message.text
        assert f"<th>{html.escape(label)}</th><td>{html.escape(value)}</td>" in message.html
    for needle in (
        f"Tenant {TENANT_A}",
        "Renewed tenant CA activates: by 2020-08-05 09:00 UTC, 24 hours left",
        "Register the renewed tenant CA before it activates.",
        "Run azsphere ca list",
        "Register the newest certificate with IoT Hub, IoT Central and DPS",
    ):
        assert needle in message.text
        assert html.escape(needle) in message.html
    assert "1. Run azsphere ca list" in message.text
    assert "<li>Run azsphere ca list</li>" in message.html
    # The state comes from the one vocabulary (shared/alerts/states.py).
    affected = state("affected")
    assert f"State: {affected.symbol} {affected.label}: {affected.meaning}" in message.text


def test_card_shape() -> None:
    card = render_message([alert()], NOW).adaptive_card
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["msteams"] == {"width": "Full"}
    facts = next(n for n in card["body"] if n["type"] == "Container")["items"][2]
    assert facts["type"] == "FactSet"
    titles = [unescape_markdown(f["title"]) for f in facts["facts"]]
    assert titles == ["Thumbprint (SHA-1)", "Subject", "Start date", "Expires"]
    payload = json.loads(encode_teams_payload(card))
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment == {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }


def test_commands_render_as_code_never_as_backticks() -> None:
    action = "Run `azsphere ca list`, then `azsphere ca download --destination ca.cer`."
    message = render_message([replace(alert(), actions=(action,))], NOW)
    assert "<code>azsphere ca list</code>" in message.html
    assert "<code>azsphere ca download --destination ca.cer</code>" in message.html
    assert "`" not in message.html
    # The card: the sentence without backticks, the whole command in a monospace block.
    texts = [n for n in walk(message.adaptive_card) if n.get("type") == "TextBlock"]
    plain = [unescape_markdown(n["text"]) for n in texts]
    assert "1. Run azsphere ca list, then azsphere ca download --destination ca.cer." in plain
    command = texts[plain.index("azsphere ca download --destination ca.cer")]
    assert command["fontType"] == "Monospace"
    assert "`" not in json.dumps(message.adaptive_card)


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += walk(value)
    elif isinstance(node, list):
        for value in node:
            found += walk(value)
    return found


@pytest.mark.parametrize("injection", INJECTIONS)
def test_certificate_values_are_escaped(injection: str) -> None:
    tenant = f"{TENANT_A}{injection}"
    subject = f"C=US, CN=Microsoft Azure Sphere {injection}\r\nBcc: victim@example.com"
    message = render_message([alert(tenant, subject=subject)], NOW)
    injection = defang(injection)  # a URL in it shows as hxxp://: no client links it

    # HTML: nothing from the certificate becomes markup (Markdown means nothing there).
    escaped = str(markupsafe.escape(injection))  # Jinja2's autoescape
    assert escaped in message.html
    if escaped != injection:
        assert injection not in message.html
    assert "<script" not in message.html and "<img" not in message.html

    # Card: no Markdown link, emphasis, raw angle bracket or template expression survives.
    card_json = json.dumps(message.adaptive_card, ensure_ascii=False)
    assert "${" not in card_json
    for text in card_texts(message.adaptive_card):
        assert injection not in text
        assert not re.search(r"(?<!\\)[\[\]()*_<>{}`]", text), text
    # ...yet the value is all there for the reader once the escapes are undone.
    rendered = " ".join(unescape_markdown(t) for t in card_texts(message.adaptive_card))
    assert injection in rendered

    # Text: plain, but CR/LF from the certificate cannot forge lines or headers.
    assert "\r" not in message.text and "\nBcc:" not in message.text
    assert "\r" not in message.subject and "\n" not in message.subject


def test_escape_markdown_covers_every_metacharacter() -> None:
    specials = "\\`*_{}[]()#+-.!|<>~"
    escaped = escape_markdown(specials)
    assert escaped == "".join("\\" + c for c in specials)
    assert escape_markdown("${x}") == "$\u200b\\{x\\}"
    assert escape_markdown("plain text 42") == "plain text 42"


def test_500_items_fold_whole_tenants_to_fit_28_kb_and_say_how_many() -> None:
    items = [
        alert(f"{i % 40:08x}-0000-0000-0000-000000000000", n=i, days_left=i % 15, stage="7d")
        for i in range(500)
    ]
    message = render_message(items, NOW)
    payload = encode_teams_payload(message.adaptive_card)

    assert len(payload) < 28_000
    assert 0 < message.item_count < 500
    assert message.item_count + message.omitted_count == 500
    shown = message.text.count("\nTenant ")
    folded = 40 - shown
    assert folded > 0
    tail = f"and {folded} more tenants ({message.omitted_count} alerts) folded"
    assert message.adaptive_card["body"][-1]["text"].startswith(escape_markdown(tail)[:20])
    assert unescape_markdown(message.adaptive_card["body"][-1]["text"]).startswith(tail)
    assert tail in message.text and tail in message.html
    assert message.subject.startswith("CA Rotation Watch: 500 deadlines for 40 tenants")

    # All three forms list exactly the same items, in the same order: whole tenants, the
    # first ones of the delivery order (the alert pass marks item_count of them sent).
    listed = listed_thumbprints(json.dumps(message.adaptive_card))
    assert len(listed) == message.item_count
    assert listed_thumbprints(message.text) == listed
    assert listed_thumbprints(message.html) == listed
    first = sort_items(items)[: message.item_count]
    assert sorted(listed) == sorted(f"C8D1{int(i.certificate, 16):036X}" for i in first)

    # Nearly full: one more tenant (12 or 13 alerts) would not have fitted.
    assert len(payload) > 28_000 - 4_000


def test_smaller_limit_and_multibyte_text_measured_in_utf8_bytes() -> None:
    items = [alert(n=i, subject="CN=Zürich ✓ " + "é" * 200) for i in range(30)]
    message = render_message(items, NOW, max_card_bytes=8_000)
    assert len(encode_teams_payload(message.adaptive_card)) < 8_000
    assert message.omitted_count == 30 - message.item_count > 0


def test_everything_fits_without_a_tail() -> None:
    message = render_message([alert(n=i) for i in range(3)], NOW)
    assert message.omitted_count == 0
    assert "more" not in message.adaptive_card["body"][-1].get("text", "")
    assert "and 0 more" not in message.text


def test_one_huge_subject_is_truncated_not_dropping_everything() -> None:
    message = render_message([alert(subject="CN=" + "A" * 100_000)], NOW)
    assert message.item_count == 1
    assert len(encode_teams_payload(message.adaptive_card)) < 28_000


BIDI_AND_INVISIBLE = (
    "\u202e\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200b\u200d\ufeff\u00ad"
)


def test_format_characters_from_certificates_never_reach_any_form() -> None:
    # "CN=exe.txt" spelled with a right-to-left override reads "CN=txt.exe" in a client.
    subject = "CN=Microsoft Azure Sphere \u202etxt.exe\u2066 " + BIDI_AND_INVISIBLE
    tenant = TENANT_A + "\u2067\u200b"
    message = render_message([alert(tenant, subject=subject)], NOW)
    card_json = json.dumps(message.adaptive_card, ensure_ascii=False)
    for form in (message.subject, message.text, message.html, card_json):
        assert not any(unicodedata.category(ch) == "Cf" for ch in form.replace("$\u200b{", ""))
    assert "Microsoft Azure Sphere txt.exe" in message.text
    assert "Microsoft Azure Sphere txt.exe" in message.html
    assert all(unicodedata.category(ch) != "Cf" for ch in clean(BIDI_AND_INVISIBLE + "x"))


def test_urls_in_certificate_values_are_defanged_in_every_form() -> None:
    subject = "CN=Sphere https://evil.example.com/login?x=1, E=admin@evil.example.com www.evil.com"
    message = render_message([alert(subject=subject)], NOW)
    card_text = " ".join(unescape_markdown(t) for t in card_texts(message.adaptive_card))
    for form in (message.text, html.unescape(message.html), card_text):
        assert "hxxps://evil[.]example[.]com/login?x=1" in form
        assert "admin[@]evil[.]example[.]com" in form and "www[.]evil[.]com" in form
        assert "https://evil" not in form and "evil.example.com" not in form
    # The rule texts are the operator's own, and keep their links.
    assert defang("see ftp://a.b/c") == "see ftp[://]a[.]b/c"
    assert defang("document.title") == "document.title"


SUB = "/subscriptions/0000/resourcegroups/fleet-rg/providers/microsoft.devices"


@dataclass(frozen=True)
class SnapshotState(TargetState):
    """TargetState with the provenance and group fields issue 21 adds (absent on older
    branches: the renderer reads them when present)."""

    source: str = ""
    seen_at: datetime | None = None
    status: str = ""
    groups_missing: tuple[str, ...] = ()
    groups_seen: bool | None = None


def checklist_of(*targets: TargetState) -> str:
    registration = Registration(True, "b" * 64, targets, renewed_thumbprint="ABCDEF12" * 5)
    return render_message([replace(alert(), registration=registration)], NOW).text


def test_each_target_gets_a_line_its_commands_and_how_the_app_will_see_it() -> None:
    text = checklist_of(
        SnapshotState(f"{SUB}/iothubs/live-hub", "iot-hub", "live-hub", "verified", "absent",
                      source="live", seen_at=NOW),
        SnapshotState(f"{SUB}/iothubs/done-hub", "iot-hub", "done-hub", "verified", "verified",
                      source="hubs/done.json", seen_at=NOW),
        SnapshotState(f"{SUB}/provisioningservices/fleet-dps", "dps", "fleet-dps", "verified",
                      "verified", status="pending", groups_missing=("g1",), groups_seen=True),
        SnapshotState(f"{SUB}/iothubs/gone-hub", "iot-hub", "gone-hub", "absent", "absent",
                      status="lost-trust"),
    )  # fmt: skip
    lines = text.splitlines()
    live = lines.index(
        "    ☐ pending: IoT Hub live-hub: current CA verified, renewed CA absent "
        "(seen 2020-08-04 09:00 UTC, live read)"
    )
    assert lines[live + 1] == "        # IoT Hub live-hub"
    assert (
        "      The app reads IoT Hub live-hub live: it sees the change within "
        "REGISTRATION_REFRESH; nothing to upload." in lines
    )
    assert (
        "    ✔ done: IoT Hub done-hub: current CA verified, renewed CA verified "
        "(seen 2020-08-04 09:00 UTC, from hubs/done.json)" in lines
    )
    # The DPS lists the renewal verified, but an enrollment group still names only the old CA.
    assert (
        "        az iot dps enrollment-group update --dps-name fleet-dps --resource-group "
        "fleet-rg --enrollment-id g1 --secondary-ca-name tenant-ca-abcdef12" in lines
    )
    assert any(line.startswith("    ✖ lost trust: IoT Hub gone-hub") for line in lines)
    assert (
        "      Then upload the new `az iot hub certificate list --hub-name gone-hub "
        "--resource-group fleet-rg` output to CA Rotation Watch." in lines
    )
    assert lines[-1].startswith("Closing step: Alerts for this tenant stop once every target")


def test_a_dps_whose_groups_were_never_read_asks_for_them() -> None:
    text = checklist_of(
        SnapshotState(f"{SUB}/provisioningservices/fleet-dps", "dps", "fleet-dps", "verified",
                      "absent", groups_seen=False),
    )  # fmt: skip
    assert (
        "`az iot dps enrollment-group list --dps-name fleet-dps --resource-group fleet-rg` "
        "(its enrollment groups were never seen)" in text
    )
