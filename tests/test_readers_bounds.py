"""Bounded live reads (issue 23 §3) and the readers' settings (issue 22 §4), against the
loopback stand-ins (tests/live_standins.py): a hung service costs the alert pass nothing
and the pull at most ``REGISTRATION_PULL_BUDGET``; redirects are not followed; a target
the budget did not reach is recorded, never skipped silently."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.app import handlers
from shared.app.registration_pull import pull_registrations
from shared.local import samples
from shared.local.runner import process_pending, registered_function
from shared.settings import Settings, SettingsError
from tests.arm_server import HANG, Reply, certificates_path
from tests.live_standins import StandIns, central_groups_path, dps_query_path
from tests.registration_samples import DPS_ID, HUB_ID, SUB, arm_entry

NOW = datetime(2020, 8, 10, 9, 0, tzinfo=UTC)
INSIDE = datetime(2020, 7, 1, tzinfo=UTC)  # affected by the 2020 incident: an alert is due
HUB, DPS = HUB_ID.lower(), DPS_ID.lower()
HUB_PATH, DPS_PATH = certificates_path(HUB_ID), certificates_path(DPS_ID)
DPS_QUERY = dps_query_path(DPS_ID.rsplit("/", 1)[1])
APP = "contoso-fleet"
SLACK = 15.0  # seconds a loaded 2-core machine may add to a bounded wait


def targets(rt: handlers.Runtime) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in rt.store.report()["targets"]}


@pytest.mark.parametrize("hung", ["arm", "dps-data-plane"])
@pytest.mark.timeout(120)
def test_a_hung_service_costs_the_alert_pass_nothing_and_the_pull_records_timeout(
    app_runtime: handlers.Runtime,
    world: StandIns,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hung: str,
) -> None:
    old = samples.tenant_ca("3eed0001-2222-4333-8444-955556666777", INSIDE, key_seed=5001)
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    container.upload_blob("old.cer", old.der)
    process_pending(app_runtime)
    entry = arm_entry(DPS_ID, "old", old, verified=True)
    if hung == "arm":
        # ARM accepts the connection, reads the request, and never answers.
        world.arm.script(DPS_PATH, HANG)
    else:
        world.arm.script(DPS_PATH, Reply(200, {"value": [entry]}))
        world.dps.script(DPS_QUERY, HANG)
    world.central.script(central_groups_path(APP), Reply(200, {"value": []}))
    monkeypatch.setenv("REGISTRATION_TARGETS", DPS_ID)
    monkeypatch.setenv("IOT_CENTRAL_APPS", APP)
    monkeypatch.setenv("REGISTRATION_PULL_BUDGET", "3s")
    monkeypatch.setenv("ALERT_CHANNELS", "outbox")
    handlers.reset_runtime()
    rt = handlers.runtime()
    handlers.use_clock(lambda: NOW)

    started = time.monotonic()
    registered_function("send_alerts")(_timer_request())
    elapsed = time.monotonic() - started

    result = handlers.last_alert_result
    assert result is not None
    assert [item["channels"] for item in result["items"]] == [{"outbox": "sent"}]
    assert list(Path(rt.settings.alert_outbox_dir).glob("*")), "the alert was written"
    assert elapsed < 3 + SLACK  # the budget, not 30 s reads, nor azure-core's 300 s
    rows = targets(rt)
    assert rows[DPS]["error"]["code"] == "timeout"
    assert rows[DPS]["seen_at"] is None  # nothing half-read was recorded
    # The app after the DPS was not reached: recorded as such, not skipped silently.
    assert rows[APP]["error"] == {
        "code": "timeout",
        "message": "not read: the pull budget of 3 s ran out first",
    }
    assert world.central.count() == 0


def _timer_request() -> Any:
    from azure.functions.timer import TimerRequest

    return TimerRequest(past_due=False)


def test_a_redirect_is_not_followed_and_its_target_gets_nothing(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    elsewhere = f"{world.central.base_url}/steal{HUB_PATH}"
    world.arm.script(HUB_PATH, Reply(302, None, (("Location", elsewhere),)))
    settings = Settings.from_env({**os.environ, "REGISTRATION_TARGETS": HUB_ID})

    result = pull_registrations(app_runtime.store, settings, NOW)

    (outcome,) = result.outcomes
    assert outcome.error is not None and outcome.error[0] == "http-302"
    assert world.central.count() == 0 and world.arm.count() == 1
    assert targets(app_runtime)[HUB]["error"]["code"] == "http-302"


def test_a_target_after_the_budget_is_recorded_as_not_read(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    other = f"{SUB}/providers/Microsoft.Devices/IotHubs/Other-Hub"
    world.arm.script(HUB_PATH, HANG)
    world.arm.script(certificates_path(other), Reply(200, {"value": []}))
    env = {"REGISTRATION_TARGETS": f"{HUB_ID},{other}", "REGISTRATION_PULL_BUDGET": "2s"}
    settings = Settings.from_env({**os.environ, **env})

    started = time.monotonic()
    result = pull_registrations(app_runtime.store, settings, NOW)

    assert time.monotonic() - started < 2 + SLACK
    codes = [(o.target, o.error[0] if o.error else None) for o in result.outcomes]
    assert codes == [(HUB, "timeout"), (other.lower(), "timeout")]
    assert world.arm.count(certificates_path(other).lower()) == 0


# --- settings ----------------------------------------------------------------------------


def test_the_readers_settings_default_to_the_public_cloud() -> None:
    settings = Settings.from_env({})
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.dps_endpoint == "https://{name}.azure-devices-provisioning.net"
    assert settings.iot_central_endpoint == "https://{name}.azureiotcentral.com"
    assert settings.registration_pull_budget.total_seconds() == 180
    assert (settings.sphere_catalogs, settings.iot_central_apps) == ((), ())


def test_sovereign_endpoints_apps_and_catalogs_are_read() -> None:
    catalog = f"{SUB}/providers/Microsoft.AzureSphere/catalogs/Fleet-Catalog"
    settings = Settings.from_env(
        {
            "ARM_ENDPOINT": "https://management.chinacloudapi.cn/",
            "DPS_ENDPOINT": "https://{name}.azure-devices-provisioning.cn",
            "IOT_CENTRAL_ENDPOINT": "https://proxy.example/central/{name}",
            "IOT_CENTRAL_APPS": "App-One, https://app-two.azureiotcentral.com/, app-one",
            "SPHERE_CATALOGS": f"{catalog}, {catalog.lower()}",
            "REGISTRATION_PULL_BUDGET": "90s",
        }
    )
    assert settings.arm_endpoint == "https://management.chinacloudapi.cn"
    assert settings.iot_central_apps == ("app-one", "app-two")
    assert [c.name for c in settings.sphere_catalogs] == ["Fleet-Catalog"]
    assert settings.sphere_catalogs[0].target == catalog.lower()
    assert settings.registration_pull_budget.total_seconds() == 90


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ARM_ENDPOINT": "http://management.azure.com"}, "ARM_ENDPOINT="),
        ({"ARM_ENDPOINT": "https://{name}.example"}, "ARM_ENDPOINT="),
        ({"DPS_ENDPOINT": "https://dps.example"}, "needs one {name}"),
        ({"IOT_CENTRAL_ENDPOINT": "https://x.example/{name}?q=1"}, "IOT_CENTRAL_ENDPOINT="),
        ({"IOT_CENTRAL_APPS": "my app"}, "IOT_CENTRAL_APPS: 'my app'"),
        ({"SPHERE_CATALOGS": HUB_ID}, "not an Azure Sphere catalog resource id"),
        (
            {
                "SPHERE_CATALOGS": "/subscriptions/00000000-1111-2222-3333-444444444444/"
                "resourceGroups/../providers/Microsoft.AzureSphere/catalogs/c"
            },
            "not an Azure Sphere catalog resource id",
        ),
        ({"REGISTRATION_PULL_BUDGET": "soon"}, "REGISTRATION_PULL_BUDGET"),
    ],
)
def test_bad_reader_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert message in str(err.value)
