"""The announcements (DESIGN §4 "Every resolution is announced"): what each notice says,
every value cleaned and defanged, in every channel's form."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from shared.alerts.notice_message import Notice, notice_lines, render_notices

AT = datetime(2020, 9, 1, 9, 0, tzinfo=UTC)
TENANT = "0a0a0a0a-1111-4222-8333-944445555666"


def notice(kind: str, **fields: object) -> Notice:
    return Notice(TENANT, "c" * 64, kind, "ref", AT, **fields)  # type: ignore[arg-type]


def test_a_resolution_names_the_renewal_the_basis_and_each_source() -> None:
    lines = notice_lines(
        notice(
            "resolved",
            subject="CN=Microsoft Azure Sphere x",
            renewed="d" * 64,
            renewed_thumbprint="AB" * 20,
            basis="registration",
            evidence=(
                {
                    "display_name": "hub",
                    "kind": "iot-hub",
                    "renewed": "verified",
                    "source": "live",
                    "seen_at": "2020-09-01T08:00:00Z",
                },
                {
                    "display_name": "dps",
                    "kind": "dps",
                    "renewed": "verified",
                    "source": "dps.json",
                    "seen_at": "2020-09-01T07:00:00Z",
                },
            ),
        )
    )
    assert lines[0].endswith(f"is resolved: replaced by the renewed CA {'AB' * 20}.")
    assert lines[1].startswith("Evidence: registration evidence")
    assert lines[2:] == [
        "  ✔ hub (iot-hub): renewal verified, live read at 2020-09-01T08:00:00Z",
        "  ✔ dps (dps): renewal verified, upload dps.json (stored 2020-09-01T07:00:00Z)",
    ]


def test_an_authenticated_renewal_says_no_registration_evidence_was_seen() -> None:
    (_, basis) = notice_lines(notice("resolved", basis="authenticated-renewal"))
    assert "no registration evidence seen" in basis


def test_acks_withdrawals_retirements_and_look_alikes_say_who_and_what() -> None:
    until = datetime(2020, 9, 8, tzinfo=UTC)
    acked = notice_lines(notice("acknowledged", by="ops", until=until))
    assert "acknowledged by ops until 2020-09-08 00:00 UTC" in acked[0]
    assert "with no end date" in notice_lines(notice("acknowledged", by="ops"))[0]
    assert "withdrew its acknowledgement" in notice_lines(notice("ack-withdrawn", by="ops"))[0]
    assert "retired by ops" in notice_lines(notice("retired", by="ops"))[0]
    fake = notice_lines(notice("look-alike", renewed="e" * 64))
    assert "e" * 16 in fake[0] and "look-alike" in fake[0]


def test_values_an_uploader_chose_are_defanged_in_every_form() -> None:
    hostile = notice(
        "resolved",
        subject="CN=https://evil.example/x ops@evil.example",
        basis="registration",
        evidence=({"display_name": "<b>hub</b>", "source": "http://x.example/a.json"},),
    )
    message = render_notices([hostile], AT)
    for form in (message.text, message.html, str(message.adaptive_card)):
        assert "https://evil.example" not in form and "ops@evil.example" not in form
        assert "http://x.example" not in form
    assert "<b>hub</b>" not in message.html


def test_one_message_for_many_notices() -> None:
    message = render_notices([notice("retired", by="a"), notice("acknowledged", by="b")], AT)
    assert message.subject == "CA Rotation Watch: notice: 2 notices (acknowledged, retired)"
    single = render_notices([notice("retired", by="a")], AT)
    assert single.subject == f"CA Rotation Watch: notice: retired: tenant {TENANT}"


# --- golden lines of every kind, and where each value is cut (mutation kills) ---------

HEAD = f"Tenant {TENANT}: CA {'c' * 16}…"
HUB_LIVE = {
    "target": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Devices/IotHubs/hub",
    "kind": "iot-hub",
    "renewed": "absent",
    "source": "live",
    "seen_at": "2020-09-01T08:00:00Z",
}
NO_SOURCE = {"display_name": "dps", "kind": "dps", "renewed": "verified", "source": ""}


def test_golden_lines_of_every_kind() -> None:
    resolved = notice(
        "resolved",
        subject="CN=Contoso CA",
        renewed="d" * 64,
        renewed_thumbprint="AB" * 20,
        basis="authenticated-renewal",
        evidence=(HUB_LIVE, NO_SOURCE),
    )
    assert notice_lines(resolved) == [
        f"{HEAD} (CN=Contoso CA) is resolved: replaced by the renewed CA {'AB' * 20}.",
        "Evidence: no target ever listed the current CA (no registration evidence seen); the "
        "renewal is authenticated (its signature verifies under the current CA's issuer, or a "
        "live Azure Sphere catalog lists it).",
        f"  ✔ {HUB_LIVE['target']} (iot-hub): renewal absent, live read at 2020-09-01T08:00:00Z",
        "  ✔ dps (dps): renewal verified, upload unknown source (stored an unknown time)",
    ]
    # without a thumbprint the renewal is named by the head of its sha256
    assert notice_lines(notice("resolved", renewed="d" * 64, basis="registration"))[0] == (
        f"{HEAD} is resolved: replaced by the renewed CA {'d' * 16}."
    )
    assert notice_lines(notice("acknowledged", subject="CN=x")) == [
        f"{HEAD} (CN=x) was acknowledged by an operator with no end date: its alerts are silenced.",
        "It covers only the CAs on record now; `ca-watch ack --withdraw` ends it.",
    ]
    assert notice_lines(notice("ack-withdrawn", subject="CN=x", by="ops")) == [
        f"{HEAD} (CN=x): ops withdrew its acknowledgement; its alerts resume."
    ]
    assert notice_lines(notice("activated", renewed="d" * 64, evidence=(HUB_LIVE,))) == [
        f"{HEAD}: the renewed CA {'d' * 16} is now Active in its Azure Sphere catalog. Devices "
        "present it now: in every target below they fail until it is registered and verified "
        "there.",
        f"  ☐ {HUB_LIVE['target']} (iot-hub): renewal absent, live read at 2020-09-01T08:00:00Z",
    ]
    activated = notice_lines(notice("activated", renewed="d" * 64, renewed_thumbprint="AB" * 20))
    assert activated[0].startswith(f"{HEAD}: the renewed CA {'AB' * 20} is now Active")
    assert notice_lines(notice("activated", evidence=(NO_SOURCE,)))[1:] == [
        "  ☐ dps (dps): renewal verified, upload unknown source (stored an unknown time)"
    ]
    assert notice_lines(notice("look-alike", subject="CN=x", renewed="e" * 64)) == [
        f"{HEAD} (CN=x): a certificate with this tenant's name, {'e' * 16}…, is a look-alike: "
        "its signature does not verify under the issuer that signed the current CA. It is "
        "never counted as the renewal.",
        "Find out who uploaded it; the real renewal comes from `azsphere ca list`.",
    ]
    assert notice_lines(notice("retired", subject="CN=x")) == [
        f"{HEAD} (CN=x) was retired by an operator: it is no longer watched."
    ]
    assert notice_lines(notice("paused", subject="CN=x")) == [f"{HEAD} (CN=x): paused."]


def cut(char: str, limit: int) -> str:
    """What a value of ``limit + 1`` characters shows: cut with an ellipsis at ``limit``."""
    return char * (limit - 1) + "…"


def test_each_value_is_cut_at_its_own_limit() -> None:
    long_tenant = "t" * 81
    item = {"display_name": "n" * 201, "kind": "k" * 21, "renewed": "r" * 21, "source": "s" * 201}
    resolved = Notice(
        long_tenant,
        "c" * 64,
        "resolved",
        "ref",
        AT,
        subject="S" * 201,
        renewed="d" * 64,
        basis="b" * 101,
        evidence=(item,),
    )
    head = f"Tenant {cut('t', 80)}: CA {'c' * 16}… ({cut('S', 200)})"
    assert notice_lines(resolved) == [
        f"{head} is resolved: replaced by the renewed CA {'d' * 16}.",
        f"Evidence: {cut('b', 100)}.",
        f"  ✔ {cut('n', 200)} ({cut('k', 20)}): renewal {cut('r', 20)}, "
        f"upload {cut('s', 200)} (stored an unknown time)",
    ]
    activated = replace(resolved, kind="activated")
    assert notice_lines(activated)[1] == (
        f"  ☐ {cut('n', 200)} ({cut('k', 20)}): renewal {cut('r', 20)}, "
        f"upload {cut('s', 200)} (stored an unknown time)"
    )
    by = replace(resolved, kind="retired", by="o" * 101)
    assert notice_lines(by) == [f"{head} was retired by {cut('o', 100)}: it is no longer watched."]
    odd = replace(resolved, kind="x" * 41)
    assert notice_lines(odd) == [f"{head}: {cut('x', 40)}."]
    title = render_notices([replace(resolved, kind="retired")], AT).subject
    assert title == f"CA Rotation Watch: notice: retired: tenant {cut('t', 80)}"


def test_many_notices_are_separated_by_a_blank_line_in_order() -> None:
    message = render_notices([notice("retired", by="a"), notice("ack-withdrawn", by="b")], AT)
    assert message.text.splitlines()[-3:] == [
        f"{HEAD} was retired by a: it is no longer watched.",
        "",
        f"{HEAD}: b withdrew its acknowledgement; its alerts resume.",
    ]


def test_a_resolution_without_a_recorded_basis_says_so_not_none() -> None:
    """A resolved row written before the basis was recorded has none: the notice must not
    print Python's "None" as the evidence, but say it is missing and where to look."""
    (_, evidence) = notice_lines(notice("resolved", basis=None))[:2]
    assert "None" not in evidence
    assert evidence == (
        "Evidence: not recorded with this resolution; `ca-watch report` shows each "
        "target's listing, its source and time."
    )
