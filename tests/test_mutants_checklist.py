"""The registration checklist of an alert (shared/alerts/registration_text.py, issue 24),
pinned where a one-line change would go unnoticed: each closing sentence word for word,
the unknown mark, times in UTC whatever the zone, the renewed file's name without a
thumbprint, and the enrollment group commands only where they can be written safely.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.alerts.registration import (
    ABSENT,
    VERIFIED,
    Registration,
    TargetState,
)
from shared.alerts.registration_text import (
    CLOSE_NO_EVIDENCE,
    CLOSE_NO_RENEWAL,
    checklist,
    commands,
    target_closing,
)

SUB = "/subscriptions/0000/resourcegroups/fleet-rg/providers/microsoft.devices"
THUMB = "ABCDEF12" + "0" * 32


def _hub(renewed: str = ABSENT, **fields: object) -> TargetState:
    return TargetState(f"{SUB}/iothubs/hub1", "iot-hub", "hub1", VERIFIED, renewed, **fields)  # type: ignore[arg-type]


def _dps(**fields: object) -> TargetState:
    return TargetState(
        f"{SUB}/provisioningservices/dps1",
        "dps",
        "dps1",
        VERIFIED,
        ABSENT,
        **fields,  # type: ignore[arg-type]
    )


def _reg(*targets: TargetState, thumb: str | None = THUMB) -> Registration:
    return Registration(True, "b" * 64, targets, renewed_thumbprint=thumb)


def test_every_target_done_says_the_next_pass_resolves_the_tenant() -> None:
    check = checklist(_reg(_hub(VERIFIED)))
    assert check.summary == (
        "Registered in 1 target(s); the renewed CA is verified in all of them."
    )
    assert check.closing == (
        "Every target shows the renewed CA verified: the next pass resolves this tenant."
    )
    assert [(t.done, t.mark, t.closing) for t in check.targets] == [(True, "✔ done", "")]


def test_no_evidence_with_a_renewal_asks_for_the_listings() -> None:
    assert checklist(Registration(False, "b" * 64, ())).closing == CLOSE_NO_EVIDENCE
    assert checklist(Registration(False, None, ())).closing == CLOSE_NO_RENEWAL


def test_a_target_whose_last_read_failed_is_marked_unknown() -> None:
    (target,) = checklist(_reg(_hub(unknown=True))).targets
    assert (target.done, target.mark) == (False, "? unknown")
    (lost,) = checklist(_reg(_hub(status="lost-trust"))).targets
    assert lost.mark == "✖ lost trust"


@pytest.mark.parametrize(
    ("seen_at", "shown"),
    [
        (datetime(2020, 8, 3, 11, 0, tzinfo=timezone(timedelta(hours=2))), "09:00"),
        (datetime(2020, 8, 3, 9, 0), "09:00"),  # naive: UTC, as everywhere in the app
        (datetime(2020, 8, 3, 9, 0, tzinfo=UTC), "09:00"),
    ],
)
def test_evidence_times_are_utc_whatever_the_zone(
    seen_at: datetime, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        (target,) = checklist(_reg(_hub(source="live", seen_at=seen_at))).targets
    finally:
        monkeypatch.undo()
        time.tzset()
    assert target.evidence == f"seen 2020-08-03 {shown} UTC, live read"


def test_a_dps_whose_groups_were_never_seen_asks_for_them_word_for_word() -> None:
    closing = target_closing(_dps(groups_seen=False))
    listing = "az iot dps certificate list --dps-name dps1 --resource-group fleet-rg"
    groups = "az iot dps enrollment-group list --dps-name dps1 --resource-group fleet-rg"
    assert closing == (
        f"Then upload the new `{listing}` output, and `{groups}` (its enrollment groups "
        "were never seen), to CA Rotation Watch."
    )


def test_without_a_renewed_thumbprint_the_file_is_named_renewed() -> None:
    reg = _reg(_hub(renewed_name="new-ca"), thumb=None)
    (target,) = checklist(reg).targets
    download = "azsphere ca download --thumbprint <thumbprint> --destination tenant-ca-renewed.cer"
    assert download in target.commands


def test_no_group_command_without_a_name_for_the_renewed_ca() -> None:
    """With neither the renewed CA's name in the DPS nor its thumbprint there is no name to
    put in `--secondary-ca-name`: no command rather than a wrong one ("tenant-ca-")."""
    (target,) = checklist(_reg(_dps(groups_missing=("group-a",)), thumb=None)).targets
    assert not any("enrollment-group update" in c for c in target.commands)
    (named,) = checklist(_reg(_dps(groups_missing=("group-a",)))).targets
    assert named.commands[-1].endswith(
        "--enrollment-id group-a --secondary-ca-name tenant-ca-abcdef12"
    )


def test_no_group_command_where_the_dps_names_would_need_quoting_the_ca_commands_do() -> None:
    """A resource group name with a space cannot be put in a command safely: the checklist
    says what to do in words and writes no group command (rather than failing)."""
    state = TargetState(
        "/subscriptions/0000/resourcegroups/my rg/providers/microsoft.devices/"
        "provisioningservices/dps1",
        "dps",
        "dps1",
        VERIFIED,
        ABSENT,
        groups_missing=("group-a",),
    )
    (target,) = checklist(_reg(state)).targets
    assert target.commands == tuple(commands(state, _reg(state)))
    assert not any("enrollment-group update" in c for c in target.commands)
