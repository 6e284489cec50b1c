"""The small findings of issue 23 §6, one test each: a secret in ``repr(Settings)``, a
Teams URL over plain http, a resource group of ``.`` or ``..``, and a crafted upload name
whose result blob would land on another upload's hashed result name."""

from __future__ import annotations

import hashlib

import pytest

from shared.app.pipeline import HASHED_RESULTS, result_blob_name
from shared.channels import build_channels
from shared.local import samples
from shared.local.runner import process_pending
from shared.settings import Settings, SettingsError, parse_registration_target

SIG = "Sx9-secret-signature-value"
HOOK = f"https://prod.westeurope.logic.azure.com/workflows/abc/invoke?api-version=1&sig={SIG}"
SUB = "00000000-0000-0000-0000-000000000001"


def test_repr_of_settings_shows_no_secret() -> None:
    settings = Settings.from_env(
        {
            "TEAMS_WEBHOOK_URL": HOOK,
            "ALERT_CHANNELS": "teams,smtp",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_USER": "alerts",
            "SMTP_PASSWORD": "hunter2-password",
        }
    )
    shown = repr(settings) + str(settings)
    assert SIG not in shown
    assert "hunter2-password" not in shown
    assert settings.teams_webhook_url == HOOK  # still there for the channel


@pytest.mark.parametrize(
    "url", ["http://prod.westeurope.logic.azure.com/workflows/abc?sig=x", "HTTP://x.example/a"]
)
def test_a_teams_url_over_plain_http_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match=r"TEAMS_WEBHOOK_URL must be an https:// URL"):
        Settings.from_env({"ALERT_CHANNELS": "teams", "TEAMS_WEBHOOK_URL": url})
    with pytest.raises(SettingsError, match=r"TEAMS_WEBHOOK_URL must be an https:// URL"):
        build_channels(Settings(alert_channels=("teams",), teams_webhook_url=url))


def test_a_teams_key_vault_reference_and_https_are_accepted() -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/teams/)"
    assert Settings.from_env({"TEAMS_WEBHOOK_URL": reference}).teams_webhook_url == reference
    assert Settings.from_env({"TEAMS_WEBHOOK_URL": HOOK}).teams_webhook_url == HOOK


@pytest.mark.parametrize("group", [".", "..", "rg."])
def test_a_resource_group_of_dots_is_refused(group: str) -> None:
    raw = f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Devices/IotHubs/hub1"
    with pytest.raises(SettingsError, match="resource group"):
        parse_registration_target(raw)
    with pytest.raises(SettingsError, match="REGISTRATION_TARGETS"):
        Settings.from_env({"REGISTRATION_TARGETS": raw})


@pytest.mark.parametrize("group", ["rg", "rg.prod", "(rg)-1_a"])
def test_ordinary_resource_groups_still_parse(group: str) -> None:
    raw = f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Devices/IotHubs/hub1"
    assert parse_registration_target(raw).resource_group == group


def test_a_crafted_upload_name_cannot_take_a_hashed_result_name() -> None:
    victim = "x" * 1_020  # too long for the suffix: its result is hashed
    hashed = result_blob_name(victim)
    assert hashed.startswith(HASHED_RESULTS)
    crafted = hashed.removesuffix(".json")  # an upload named after the victim's result
    assert result_blob_name(crafted) != hashed
    # Every name under the reserved prefix is hashed, by its own name.
    digest = hashlib.sha256(crafted.encode()).hexdigest()
    assert result_blob_name(crafted) == f"{HASHED_RESULTS}{digest}.json"


def test_crafted_and_victim_uploads_keep_their_own_results(app_runtime) -> None:
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    victim = "v" * 1_020
    crafted = result_blob_name(victim).removesuffix(".json")
    container.upload_blob(victim, samples.tenant_ca().pem)
    container.upload_blob(crafted, samples.azure_sphere_pca().pem)
    assert process_pending(app_runtime) == (2, 0)
    results = app_runtime.blobs.get_container_client(app_runtime.settings.results_container)
    names = sorted(b.name for b in results.list_blobs())
    assert len(names) == 2, names
    sources = {
        name: results.download_blob(name).readall().decode().count(f'"source": "{victim}"')
        for name in names
    }
    assert sorted(sources.values()) == [0, 1]


@pytest.mark.parametrize("group", [".", "..", "fleet-rg."])
def test_a_sphere_catalog_in_a_resource_group_arm_cannot_name_is_refused(group: str) -> None:
    """One resource-group rule for every ARM id a setting names (the catalogs had their
    own, which let "fleet-rg." through)."""
    catalog = (
        "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/"
        f"{group}/providers/Microsoft.AzureSphere/catalogs/fleet"
    )
    with pytest.raises(SettingsError, match="SPHERE_CATALOGS"):
        Settings.from_env({"SPHERE_CATALOGS": catalog})
