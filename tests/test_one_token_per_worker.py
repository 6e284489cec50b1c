"""One credential per worker process: 100 blob invocations through the registered function
make exactly one token request.

Storage is a real Azurite over HTTPS with OAuth (``--oauth basic``: it checks a bearer
token's issuer, audience and lifetime, not its signature), with a certificate from a CA
this test makes. The token comes from a loopback HTTP server standing in for the App
Service managed identity endpoint (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, which
azure-identity reads): Entra ID itself cannot run here, so that endpoint is the fake, and
it counts the requests."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from identity_endpoint import IDENTITY_HEADER, IdentityEndpoint

from shared.app import handlers
from shared.local import samples
from shared.local.azurite import Azurite
from shared.local.runner import blob_trigger_argument, registered_function
from shared.storage import connections


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca-watch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def identity_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    ca, cert, key = tls_files(tmp_path)
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
