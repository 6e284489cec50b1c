"""A user-assigned managed identity is asked for by its client id, in the storage connection
and in the ACS e-mail client: without it Azure picks the wrong identity, or none. The token
requests go to a loopback stand-in for the App Service identity endpoint (Entra ID cannot
run here), which records what each one asked for."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from identity_endpoint import IDENTITY_HEADER, IdentityEndpoint

from shared.channels.acs_email import email_credential
from shared.storage import connections

CLIENT_ID = "00000000-0000-0000-0000-00000000c1d0"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    server = IdentityEndpoint()
    monkeypatch.setenv("IDENTITY_ENDPOINT", server.url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for name in ("AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    connections.shared_credential.cache_clear()
    yield server
    connections.shared_credential.cache_clear()
    server.close()


def asked_client_ids(server: IdentityEndpoint) -> list[str]:
    return [parse_qs(urlsplit(path).query).get("client_id", [""])[0] for path in server.requests]


def test_the_storage_connection_asks_for_its_user_assigned_identity(endpoint) -> None:
    env = {
        "CertStorage__blobServiceUri": "https://account.blob.core.windows.net",
        "CertStorage__credential": "managedidentity",
        "CertStorage__clientId": CLIENT_ID,
    }
    client = connections.blob_service(env)
    client.credential.get_token("https://storage.azure.com/.default")
    assert asked_client_ids(endpoint) == [CLIENT_ID]


def test_the_storage_connection_without_a_client_id_asks_for_the_system_identity(
    endpoint,
) -> None:
    env = {
        "CertStorage__tableServiceUri": "https://account.table.core.windows.net",
        "CertStorage__credential": "managedidentity",
    }
    connections.table_service(env).credential.get_token("https://storage.azure.com/.default")
    assert asked_client_ids(endpoint) == [""]


def test_the_acs_client_asks_for_the_identity_named_by_azure_client_id(
    endpoint, monkeypatch
) -> None:
    """The infra sets AZURE_CLIENT_ID to the app's user-assigned identity. (Dropping the
    explicit ``managed_identity_client_id`` is an equivalent mutant: DefaultAzureCredential
    reads AZURE_CLIENT_ID itself; this test pins the behaviour either way.)"""
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    email_credential().get_token("https://communication.azure.com/.default")
    assert asked_client_ids(endpoint) == [CLIENT_ID]
