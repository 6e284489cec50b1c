"""Alert messages say what is left to register, per target, with escaped values."""

from __future__ import annotations

import json
from dataclasses import replace

from shared.alerts.message import render_message
from shared.alerts.registration import (
    ABSENT,
    UNVERIFIED,
    VERIFIED,
    Registration,
    TargetState,
)
from shared.alerts.registration_text import NO_EVIDENCE
from tests.test_message import NOW, alert

SUB = "/subscriptions/0000/resourcegroups/fleet-rg/providers/microsoft.devices"
HUB = f"{SUB}/iothubs/fleet-hub"
DPS = f"{SUB}/provisioningservices/fleet-dps"
EVIL = "<script>alert(1)</script>[x](http://evil)${cardData}"


def registration(*targets: TargetState) -> Registration:
    return Registration(True, "b" * 64, targets, renewed_thumbprint="ABCDEF12" + "0" * 32)


def test_pending_targets_get_their_commands_and_done_ones_do_not() -> None:
    item = replace(
        alert(),
        registration=registration(
            TargetState(HUB, "iot-hub", "fleet-hub", VERIFIED, VERIFIED),
            TargetState(DPS, "dps", "fleet-dps", VERIFIED, ABSENT),
        ),
    )
    message = render_message([item], NOW)
    assert "IoT Hub fleet-hub: current CA verified, renewed CA verified" in message.text
    assert "DPS fleet-dps: current CA verified, renewed CA absent" in message.text
    assert (
        "az iot dps certificate create --dps-name fleet-dps --resource-group fleet-rg "
        "--certificate-name tenant-ca-abcdef12 --path tenant-ca-abcdef12.cer"
    ) in message.text
    assert "az iot dps certificate generate-verification-code --dps-name fleet-dps" in message.text
    assert "azsphere ca download-proof --verificationcode <code>" in message.text
    assert "az iot dps certificate verify --dps-name fleet-dps" in message.text
    assert "az iot hub certificate" not in message.text  # the hub is done
    assert "az iot dps certificate create" in message.html
    card = json.dumps(message.adaptive_card)
    assert "az iot dps certificate create" in card and "Monospace" in card


def test_unverified_renewal_skips_the_create_step() -> None:
    item = replace(
        alert(),
        registration=registration(
            TargetState(HUB, "iot-hub", "fleet-hub", VERIFIED, UNVERIFIED, "old", "renewed-ca")
        ),
    )
    text = render_message([item], NOW).text
    assert "renewed CA registered, not verified" in text
    assert "az iot hub certificate create" not in text
    assert (
        "az iot hub certificate verify --hub-name fleet-hub --resource-group fleet-rg "
        "--name renewed-ca --path proof.cer"
    ) in text


def test_no_evidence_is_said() -> None:
    item = replace(alert(), registration=Registration(False, None, ()))
    message = render_message([item], NOW)
    assert NO_EVIDENCE.split(":")[0] in message.text
    assert "No registration evidence was seen" in message.html


def test_hostile_target_names_are_escaped_in_every_form() -> None:
    item = replace(
        alert(),
        registration=registration(TargetState(EVIL, "other", EVIL, UNVERIFIED, ABSENT)),
    )
    message = render_message([item], NOW)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    card = json.dumps(message.adaptive_card)
    assert "${cardData}" not in card
    assert "[x](http://evil)" not in card


def test_names_unfit_for_a_shell_get_no_command() -> None:
    hostile = f"{SUB}/iothubs/hub;rm -rf ~"
    item = replace(
        alert(),
        registration=registration(
            TargetState(hostile, "iot-hub", "hub;rm -rf ~", VERIFIED, ABSENT)
        ),
    )
    text = render_message([item], NOW).text
    assert "az iot hub certificate" not in text
    assert "register the renewed CA" in text


LINK = "https://evil.example/x"


def test_a_target_named_like_a_link_is_defanged() -> None:
    item = replace(
        alert(),
        registration=registration(TargetState(LINK, "other", LINK, VERIFIED, ABSENT)),
    )
    message = render_message([item], NOW)
    for form in (message.text, message.html, json.dumps(message.adaptive_card)):
        assert "https://evil.example" not in form
    assert "hxxps://evil[.]example" in message.text
