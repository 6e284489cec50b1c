"""The announcements (DESIGN §4 "Every resolution is announced"): what each notice says,
every value cleaned and defanged, in every channel's form."""

from __future__ import annotations

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
