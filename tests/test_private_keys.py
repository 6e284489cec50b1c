"""Private key material leaves no copy: ``ca-watch upload`` never sends it, and the blob
function deletes an uploaded key (its snapshots and every version) once the refusal is
recorded. Against a real Azurite.

What Azurite does not support, so these tests cannot show it: blob versioning (it keeps no
earlier versions: ``list_blobs(include=["versions"])`` answers with ``version_id`` None)
and blob soft delete (deleted blobs are gone at once). The function's version sweep runs
here all the same, over what Azurite lists; in Azure it deletes each earlier version by
``version_id``. Snapshots Azurite does keep, and the test proves they go too.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobClient
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from shared.app import handlers
from shared.local import samples
from shared.local.runner import blob_trigger_argument, process_pending, registered_function

PROJECT = Path(__file__).resolve().parent.parent


def key_der() -> bytes:
    key = ec.derive_private_key(0x7E57_0001, ec.SECP256R1())
    return key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def key_pem() -> bytes:
    return samples.pem(key_der(), "PRIVATE KEY")


def key_fragments() -> list[bytes]:
    """Byte strings that would betray the key: its DER, its raw scalar, its base64 lines."""
    der = key_der()
    text = base64.b64encode(der)
    return [der, (0x7E57_0001).to_bytes(32, "big"), *(text[i : i + 40] for i in (0, 40, 80))]


def every_stored_byte(rt: handlers.Runtime) -> bytes:
    """Every blob of the upload and results containers, with snapshots and versions."""
    out = bytearray()
    for container_name in (rt.settings.cert_container, rt.settings.results_container):
        container = rt.blobs.get_container_client(container_name)
        for item in container.list_blobs(include=["snapshots", "versions"]):
            client = container.get_blob_client(item.name, snapshot=item.snapshot)
            if item.version_id:
                client = container.get_blob_client(item.name, version_id=item.version_id)
            out += client.download_blob().readall()
    return bytes(out)


def cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.local.cli", *args], cwd=cwd, env=dict(os.environ),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_upload_refuses_key_material_before_sending(app_runtime, tmp_path) -> None:
    cert = samples.tenant_ca()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ca.pem").write_bytes(cert.pem)
    (tree / "device.key").write_bytes(key_pem())
    (tree / "bundle.pem").write_bytes(cert.pem + key_pem())
    (tree / "key.der").write_bytes(key_der())

    done = cli("upload", str(tree))
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr
    for refused in ("device.key", "bundle.pem", "key.der"):
        assert refused in said
    assert "private key" in said.lower()
    assert "Traceback" not in said
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    assert [b.name for b in container.list_blobs()] == ["ca.pem"]

    # No switch sends it: --force is not a way round the refusal.
    forced = cli("upload", "--force", str(tree / "device.key"))
    assert forced.returncode != 0
    assert [b.name for b in container.list_blobs()] == ["ca.pem"]
    assert not any(fragment in every_stored_byte(app_runtime) for fragment in key_fragments())


def test_blob_function_deletes_an_uploaded_key_and_every_copy(app_runtime) -> None:
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    container.upload_blob("keys/device.pem", samples.tenant_ca().pem + key_pem())
    container.get_blob_client("keys/device.pem").create_snapshot()  # a copy Azurite keeps
    container.upload_blob("ok.pem", samples.tenant_ca().pem)
    assert any(fragment in every_stored_byte(app_runtime) for fragment in key_fragments())

    assert process_pending(app_runtime) == (2, 0)

    uploads = {u["name"]: u for u in app_runtime.store.report()["uploads"]}
    assert uploads["keys/device.pem"]["status"] == "rejected"
    assert uploads["keys/device.pem"]["error"]["code"] == "private-key-material"
    assert uploads["ok.pem"]["status"] == "analyzed"
    listed = [
        (b.name, b.snapshot, b.version_id)
        for b in container.list_blobs(include=["snapshots", "versions"])
    ]
    assert [name for name, _, _ in listed] == ["ok.pem"]
    stored = every_stored_byte(app_runtime)
    assert not any(fragment in stored for fragment in key_fragments())
    # Processing again finds nothing new and brings nothing back.
    assert process_pending(app_runtime) == (0, 0)


def test_a_deletion_cut_short_is_finished_by_the_redelivered_event(
    app_runtime, monkeypatch
) -> None:
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    container.upload_blob("device.key", key_pem())
    analyze = registered_function("analyze_upload")
    original = BlobClient.delete_blob

    def storage_goes_away(self, *args, **kwargs):
        raise ServiceRequestError("connection reset while deleting")

    monkeypatch.setattr(BlobClient, "delete_blob", storage_goes_away)
    with pytest.raises(ServiceRequestError):  # the host will retry the event
        analyze(blob_trigger_argument(app_runtime.settings.cert_container, "device.key"))
    (row,) = app_runtime.store.report()["uploads"]
    assert row["error"]["code"] == "private-key-material"  # recorded first
    assert [b.name for b in container.list_blobs()] == ["device.key"]

    monkeypatch.setattr(BlobClient, "delete_blob", original)
    analyze(blob_trigger_argument(app_runtime.settings.cert_container, "device.key"))
    assert list(container.list_blobs()) == []
    assert not any(fragment in every_stored_byte(app_runtime) for fragment in key_fragments())


def test_an_over_size_upload_whose_start_holds_a_key_is_deleted(app_runtime, monkeypatch) -> None:
    """Over the limit, a file is not analysed; but the part read (the limit + 1 bytes) is
    enough to see a key at its start, and then the blob goes like any other key."""
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "2000")
    handlers.reset_runtime()
    rt = handlers.runtime()
    bundle = key_pem() + b"".join(samples.tenant_ca().pem for _ in range(6))
    assert len(bundle) > 2000
    upload = rt.blobs.get_container_client(rt.settings.cert_container)
    upload.upload_blob("big-with-key.pem", bundle)
    upload.upload_blob("big.pem", b"".join(samples.tenant_ca().pem for _ in range(6)))
    assert process_pending(rt) == (2, 0)
    codes = {u["name"]: u["error"]["code"] for u in rt.store.report()["uploads"]}
    assert codes == {"big-with-key.pem": "private-key-material", "big.pem": "too-large"}
    assert [b.name for b in upload.list_blobs()] == ["big.pem"]
    assert not any(fragment in every_stored_byte(rt) for fragment in key_fragments())
