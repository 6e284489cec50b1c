"""``ca-watch upload --dps`` on a real Azurite (issue 22): the groups that ``az iot dps
enrollment-group list`` prints go up inside an envelope naming their DPS, with the DPS
certificate list, and the blob function records them as the DPS's snapshot; the same
groups uploaded raw are refused with the code that says how. Shapes:
tests/enrollment_samples.py and tests/registration_samples.py (credits there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.app import handlers
from shared.local import samples
from tests import enrollment_samples as groups
from tests.registration_samples import DPS_ID, HUB_ID, arm_listing
from tests.test_cli_commands import cli

OLD = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
NEW = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=42)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """What the two az commands print, saved as an operator would (PowerShell: UTF-16)."""
    (tmp_path / "groups.json").write_text(
        json.dumps([groups.dps_ca_reference_group("sphere", "tenant-ca", "renewal")], indent=2),
        encoding="utf-16",
    )
    (tmp_path / "certificates.json").write_bytes(
        arm_listing(DPS_ID, [("tenant-ca", OLD, True), ("renewal", NEW, True)])
    )
    return tmp_path


def test_upload_dps_records_the_groups_as_the_dps_snapshot(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], outputs: Path
) -> None:
    code, out, err = cli(
        capsys,
        "upload",
        "--dps",
        DPS_ID,
        str(outputs / "groups.json"),
        str(outputs / "certificates.json"),
    )
    assert code == 0, err
    assert "uploaded Fleet-DPS.enrollment-groups." in out
    code, out, _ = cli(capsys, "process", "-q")
    assert code == 0, out
    (snapshot,) = app_runtime.store.registrations.snapshots()
    assert (snapshot.target, snapshot.kind) == (DPS_ID.lower(), "dps")
    assert {entry.name for entry in snapshot.entries} == {"tenant-ca", "renewal"}


def test_raw_groups_are_refused_with_how_to_upload_them(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], outputs: Path
) -> None:
    raw = outputs / "raw"
    raw.mkdir()
    (raw / "groups.json").write_bytes((outputs / "groups.json").read_bytes())
    assert cli(capsys, "upload", "-q", str(raw))[0] == 0
    code, out, _ = cli(capsys, "process")
    assert code == 1 and "enrollment-groups-need-target" in out
    (row,) = app_runtime.store.uploads.upload_rows("groups.json")
    assert row["error_code"] == "enrollment-groups-need-target"
    assert app_runtime.store.registrations.snapshots() == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([HUB_ID, "groups.json", "certificates.json"], "needs a DPS resource id"),
        (["not-an-id", "groups.json", "certificates.json"], "needs a DPS resource id"),
        ([DPS_ID, "groups.json"], "exactly two files"),
        ([DPS_ID, "groups.json", "groups.json"], "one the certificate list"),
        ([DPS_ID, "groups.json", "missing.json"], "missing.json: cannot read"),
        ([DPS_ID, "groups.json", "other-dps.json"], "not the certificate list of its target DPS"),
    ],
)
def test_upload_dps_says_what_is_wrong_before_uploading(
    capsys: pytest.CaptureFixture[str], outputs: Path, args: list[str], says: str
) -> None:
    (outputs / "other-dps.json").write_bytes(
        arm_listing(DPS_ID.replace("Fleet-DPS", "Other-DPS"), [("tenant-ca", OLD, True)])
    )
    paths = [args[0], *(str(outputs / name) for name in args[1:])]
    code, _out, err = cli(capsys, "upload", "--dps", *paths)
    assert code == 2 and says in err and "Traceback" not in err
