"""Settings from the environment, and storage clients from the CertStorage connection.

Azure AD cannot run here: the identity-based cases only build the clients (no request is
sent), which is enough to check that the right endpoint and credential type are chosen.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.settings import Settings, SettingsError
from shared.storage.connections import AZURITE_ACCOUNT, blob_service, table_service

SUBSCRIPTION = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
HUB_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-Fleet.EU(1)"
    "/providers/Microsoft.Devices/IotHubs/hub-contoso-eu"
)
DPS_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-fleet"
    "/providers/Microsoft.Devices/provisioningServices/dps-contoso"
)


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.alert_channels == ("outbox",) and settings.max_upload_bytes == 1_048_576


def test_empty_values_mean_the_default_not_an_empty_setting() -> None:
    """App settings often exist but are blank (Bicep passes ''): blank is 'not set'."""
    blank = {
        "CERT_CONTAINER": "",
        "MAX_UPLOAD_BYTES": " ",
        "ALERT_CHANNELS": "",
        "RULES_FILE": "",
        "SMTP_PORT": "",
        "SMTP_STARTTLS": "",
    }
    assert Settings.from_env(blank) == Settings()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MAX_UPLOAD_BYTES": "1MB"}, "MAX_UPLOAD_BYTES"),
        ({"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES"),
        ({"SMTP_PORT": "-25"}, "SMTP_PORT"),
        ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS"),
        ({"ALERT_CHANNELS": "outbox,pager"}, "pager"),
        ({"ALERT_EMAIL_ROUTES": "{not json"}, "ALERT_EMAIL_ROUTES"),
        ({"ALERT_EMAIL_ROUTES": '["a@x"]'}, "ALERT_EMAIL_ROUTES"),
        ({"REGISTRATION_TARGETS": f"{HUB_ID}/certificates/ca"}, "REGISTRATION_TARGETS"),
        ({"REGISTRATION_TARGETS": f"{HUB_ID},iothub-contoso"}, "REGISTRATION_TARGETS"),
        ({"REGISTRATION_TARGETS": HUB_ID.replace("IotHubs", "Sites")}, "REGISTRATION_TARGETS"),
        ({"REGISTRATION_TARGETS": HUB_ID.replace(SUBSCRIPTION, "sub")}, "REGISTRATION_TARGETS"),
        ({"REGISTRATION_REFRESH": "6"}, "REGISTRATION_REFRESH"),
        ({"REGISTRATION_REFRESH": "6 hours"}, "REGISTRATION_REFRESH"),
        ({"REGISTRATION_REFRESH": "0h"}, "REGISTRATION_REFRESH"),
        ({"REGISTRATION_REFRESH": "-1h"}, "REGISTRATION_REFRESH"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_registration_targets_are_iot_hub_and_dps_resource_ids() -> None:
    settings = Settings.from_env(
        {
            "REGISTRATION_TARGETS": f" {HUB_ID} ; {DPS_ID}/, {HUB_ID.lower()}",
            "REGISTRATION_REFRESH": "30m",
        }
    )
    hub, dps = settings.registration_targets  # the same hub in another case is one target
    assert (hub.kind, hub.name, hub.resource_group) == (
        "iot-hub",
        "hub-contoso-eu",
        "rg-Fleet.EU(1)",
    )
    assert (dps.kind, dps.name, dps.subscription_id) == ("dps", "dps-contoso", SUBSCRIPTION)
    assert hub.target == HUB_ID.lower() and dps.target == DPS_ID.lower()
    assert settings.registration_refresh == timedelta(minutes=30)
    assert Settings.from_env({}).registration_targets == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("1d", timedelta(days=1)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        ("", timedelta(hours=6)),
    ],
)
def test_registration_refresh_takes_a_duration(raw: str, expected: timedelta) -> None:
    assert Settings.from_env({"REGISTRATION_REFRESH": raw}).registration_refresh == expected


def test_per_tenant_routes_fall_back_to_the_default_recipients() -> None:
    settings = Settings.from_env(
        {
            "ALERT_EMAIL_TO": "pki@contoso.com; oncall@contoso.com",
            "ALERT_EMAIL_ROUTES": '{"9D7E79EB-E021-43CE-9F2B-FA944B447494": "a@x,b@y",'
            ' "be51057e-e6eb-487d-82c8-a7043ccab9e1": ["c@z"]}',
        }
    )
    assert settings.recipients_for("9d7e79eb-e021-43ce-9f2b-fa944b447494") == ("a@x", "b@y")
    assert settings.recipients_for("BE51057E-E6EB-487D-82C8-A7043CCAB9E1") == ("c@z",)
    assert settings.recipients_for("00000000-0000-0000-0000-000000000000") == (
        "pki@contoso.com",
        "oncall@contoso.com",
    )
    assert settings.recipients_for(None) == ("pki@contoso.com", "oncall@contoso.com")


def test_the_smtp_password_never_shows_in_the_settings_repr() -> None:
    settings = Settings.from_env({"SMTP_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)


def test_development_storage_means_azurite_on_its_default_ports() -> None:
    blob = blob_service({"CertStorage": "UseDevelopmentStorage=true"})
    table = table_service({})  # absent: the same local default
    assert blob.url.startswith(f"http://127.0.0.1:10000/{AZURITE_ACCOUNT}")
    assert table.url.startswith(f"http://127.0.0.1:10002/{AZURITE_ACCOUNT}")


def test_user_assigned_identity_connection_uses_its_client_id() -> None:
    env = {
        "CertStorage__blobServiceUri": "https://stcawatch.blob.core.windows.net",
        "CertStorage__tableServiceUri": "https://stcawatch.table.core.windows.net",
        "CertStorage__credential": "managedidentity",
        "CertStorage__clientId": "00000000-0000-0000-0000-00000000abcd",
    }
    blob = blob_service(env)
    table = table_service(env)
    assert blob.url.startswith("https://stcawatch.blob.core.windows.net")
    assert table.url.startswith("https://stcawatch.table.core.windows.net")
    assert isinstance(blob.credential, ManagedIdentityCredential)
    assert isinstance(table.credential, ManagedIdentityCredential)


def test_a_developer_signed_in_gets_the_default_credential_chain() -> None:
    env = {"CertStorage__blobServiceUri": "https://stcawatch.blob.core.windows.net"}
    assert isinstance(blob_service(env).credential, DefaultAzureCredential)


def test_an_identity_connection_without_its_service_uri_says_what_to_set() -> None:
    env = {"CertStorage__blobServiceUri": "https://stcawatch.blob.core.windows.net"}
    with pytest.raises(SettingsError, match="CertStorage__tableServiceUri"):
        table_service(env)
