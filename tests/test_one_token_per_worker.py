"""One credential per worker process: 100 blob invocations through the registered function
make exactly one token request.

Storage is a real Azurite over HTTPS with OAuth (``--oauth basic``: it checks a bearer
token's issuer, audience and lifetime, not its signature), with a certificate from a CA
this test makes. The token comes from a loopback HTTP server standing in for the App
Service managed identity endpoint (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, which
azure-identity reads): Entra ID itself cannot run here, so that endpoint is the fake, and
it counts the requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from identity_endpoint import IDENTITY_HEADER, IdentityEndpoint
from tls_samples import make_tls_files

from shared.app import handlers
from shared.local import samples
from shared.local.azurite import Azurite
from shared.local.runner import blob_trigger_argument, registered_function
from shared.storage import connections


@pytest.fixture
def identity_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    ca, cert, key = make_tls_files(tmp_path)
    server = Azurite(
        tmp_path / "azurite",
        extra_args=("--oauth", "basic", "--cert", str(cert), "--key", str(key)),
    ).start()
    endpoint = IdentityEndpoint()
    base = "https://127.0.0.1"
    for name in ("CertStorage", "AzureWebJobsStorage"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "CertStorage__blobServiceUri": f"{base}:{server.blob_port}/devstoreaccount1",
        "CertStorage__queueServiceUri": f"{base}:{server.queue_port}/devstoreaccount1",
        "CertStorage__tableServiceUri": f"{base}:{server.table_port}/devstoreaccount1",
        "CertStorage__credential": "managedidentity",
        "IDENTITY_ENDPOINT": endpoint.url,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "REQUESTS_CA_BUNDLE": str(ca),  # the SDKs trust the test CA, and only it
        "ALERT_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    connections.shared_credential.cache_clear()
    handlers.reset_runtime()
    try:
        yield endpoint
    finally:
        handlers.reset_runtime()
        connections.shared_credential.cache_clear()
        endpoint.close()
        server.wipe()


@pytest.mark.timeout(300)
def test_a_hundred_invocations_make_one_token_request(identity_storage) -> None:
    rt = handlers.runtime()
    handlers.ensure_containers(rt)
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    tenant = samples.tenant_ca()
    names = [f"device-{i:03d}.pem" for i in range(100)]
    for i, name in enumerate(names):
        device = samples.device_certificate(tenant, device_id=f"{i:0128x}")
        container.get_blob_client(name).upload_blob(device.pem, overwrite=True)
    function = registered_function("analyze_upload")
    for name in names:
        function(blob_trigger_argument(rt.settings.cert_container, name))
    report = rt.store.report()
    assert sorted(u["name"] for u in report["uploads"]) == names
    assert {u["status"] for u in report["uploads"]} == {"analyzed"}
    assert identity_storage.requests == [
        "/msi/token?api-version=2019-08-01&resource=https://storage.azure.com"
    ]
