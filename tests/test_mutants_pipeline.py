"""Kill tests for the blob pipeline's issue-21 paths (shared/app/pipeline.py) on a real
Azurite, a handful of small blobs each: each target's outcome of an uploaded listing (a
stale listing names itself, and what it would have changed is left as it was), and a Sphere
CA catalog's expired entries, which never count as a renewal (DESIGN §4)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from cryptography.x509.oid import NameOID

from shared.alerts.rules import load_rules
from shared.analysis.keys import key_material
from shared.analysis.listings import Listing
from shared.analysis.read_result import too_large
from shared.analysis.scan import analyze_bytes, analyze_read_result
from shared.app import handlers
from shared.app.pipeline import _KEY_IN_LARGE
from shared.local import samples
from shared.local.guards import refusal
from tests.registration_samples import HUB_ID, arm_listing
from tests.test_mutants_storage import KEY_PEM, NOW, deliver, put, uploads_by_name

SECOND_HUB = HUB_ID.replace("Fleet-Hub", "Second-Hub")
TENANT = "5707a9e0-1111-4222-8333-944445555666"
OLD = samples.tenant_ca(TENANT, datetime(2020, 7, 1, tzinfo=UTC), key_seed=4100)
NEW = samples.tenant_ca(TENANT, datetime(2020, 8, 1, tzinfo=UTC), key_seed=4101)


def sha1(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der, usedforsecurity=False).hexdigest().upper()


def sha256(issued: samples.Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def test_a_listing_older_than_the_snapshot_is_named_stale_and_changes_nothing(
    app_runtime: handlers.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """One document, two targets: the hub has a snapshot made after the blob was written
    (stale-listing, kept as it was), the second hub none (recorded). The upload row says which."""
    caplog.set_level(logging.INFO, logger="ca_watch")
    rt = app_runtime
    later = datetime.now(UTC) + timedelta(days=1)
    live = Listing(HUB_ID.lower(), "iot-hub", "Fleet-Hub", "iot-hub-certificates", ())
    rt.store.registrations.record_listing(live, "live", later)
    hub = json.loads(arm_listing(HUB_ID, [("old", OLD, True)]))["value"]
    second = json.loads(arm_listing(SECOND_HUB, [("old", OLD, True)]))["value"]
    put(rt, "both.json", json.dumps({"value": hub + second}).encode())
    deliver(rt, "both.json")

    assert uploads_by_name(rt)["both.json"]["listing_outcomes"] == [
        {"target": HUB_ID.lower(), "outcome": "stale-listing"},
        {"target": SECOND_HUB.lower(), "outcome": "recorded"},
    ]
    snapshots = {s.target: s for s in rt.store.registrations.snapshots()}
    assert (snapshots[HUB_ID.lower()].source, snapshots[HUB_ID.lower()].entries) == ("live", ())
    assert snapshots[SECOND_HUB.lower()].source == "both.json"
    # `process` and the daily self-health check name it from the day's failures
    ignored = [r for r in rt.store.iter_rows("uploadfailures") if r["status"] == "ignored"]
    assert [(r["name"], r["target"], r["error_code"]) for r in ignored] == [
        ("both.json", HUB_ID.lower(), "stale-listing")
    ]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"blob both.json: listing of {HUB_ID.lower()} is a stale-listing"]


def _catalog_entry(issued: samples.Issued, status: str, **flags: bool) -> dict[str, object]:
    return {
        "id": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c"
        f"/certificates/{sha1(issued)}",
        "name": sha1(issued),
        "type": "Microsoft.AzureSphere/catalogs/certificates",
        "properties": {
            "status": status,
            "thumbprint": sha1(issued),
            "certificate": base64.b64encode(issued.der).decode(),
            **flags,
        },
    }


@pytest.mark.parametrize(
    ("status", "flags"),
    [("Expired", {}), ("Revoked", {}), ("Revoked", {"isRevoked": False})],
    ids=["expired", "revoked", "revoked-status-beside-a-false-flag"],
)
def test_a_catalog_entry_expired_or_revoked_is_marked_never_a_renewal(
    app_runtime: handlers.Runtime, status: str, flags: dict[str, bool]
) -> None:
    """The catalog's status decides, as for a live read: "Revoked" beside a contradicting
    legacy ``isRevoked: false`` is still revoked (the safe reading)."""
    rt = app_runtime
    put(rt, "pca.cer", samples.azure_sphere_pca().der)  # the renewal authenticates
    deliver(rt, "pca.cer")
    catalog = {"value": [_catalog_entry(OLD, "Active"), _catalog_entry(NEW, status, **flags)]}
    put(rt, "catalog.json", json.dumps(catalog).encode())
    deliver(rt, "catalog.json")
    # The tenant is re-timed once the renewal is marked: the old CA stays in the alert index.
    far = datetime(2100, 1, 1, tzinfo=UTC)
    open_ = {c.sha256 for c in rt.store.index.open_tenant_certificates(far, all_open=True)}
    assert sha256(OLD) in open_
    revoked = {row["RowKey"]: row.get("revoked") for row in rt.store.iter_rows("tenantcas")}
    assert revoked == {sha256(OLD): None, sha256(NEW): True}


def test_a_catalog_entry_in_a_status_that_ends_nothing_is_not_marked(
    app_runtime: handlers.Runtime,
) -> None:
    rt = app_runtime
    catalog = {"value": [_catalog_entry(OLD, "Active"), _catalog_entry(NEW, "Inactive")]}
    put(rt, "catalog.json", json.dumps(catalog).encode())
    deliver(rt, "catalog.json")
    assert [row.get("revoked") for row in rt.store.iter_rows("tenantcas")] == [None, None]


def test_files_without_a_key_delivered_twice_stay(
    app_runtime: handlers.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate delivery checks the content for a key again (a row an older release
    wrote may not call a key a key): a key-free PKCS#12 the reader reads to its end, and
    the start of a certificate over the size limit, are no key and are not deleted."""
    key_free = pkcs12.serialize_key_and_certificates(
        None, None, OLD.certificate, None, NoEncryption()
    )
    limit = len(key_free)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(limit))
    handlers.reset_runtime()
    rt = handlers.runtime()
    put(rt, "certs.pfx", key_free)
    put(rt, "over.cer", OLD.der + b"\n" * limit)
    for name in ("certs.pfx", "over.cer", "certs.pfx", "over.cer"):
        deliver(rt, name)
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    assert sorted(b.name for b in container.list_blobs()) == ["certs.pfx", "over.cer"]
    uploads = uploads_by_name(rt)
    assert (uploads["certs.pfx"]["status"], uploads["over.cer"]["error"]["code"]) == (
        "analyzed",
        "too-large",
    )


def test_a_key_under_a_bad_name_or_over_the_limit_is_refused_as_a_key_and_deleted(
    app_runtime: handlers.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key check runs before the early refusals: a whole key under a name storage
    cannot list is named as the key it is; the start of a DER file over the size limit (a
    key cut short after its secret) is a key too, with the over-the-limit advice. A
    key-free PKCS#12 under a bad name is only a bad name, and stays."""
    key_free = pkcs12.serialize_key_and_certificates(
        None, None, OLD.certificate, None, NoEncryption()
    )
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(len(key_free)))
    handlers.reset_runtime()
    rt = handlers.runtime()
    key = ec.derive_private_key(0xB002, ec.SECP256R1())
    small_key = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    sec1 = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    # A certificate, then a SEC1 key whose first 50 bytes (version, the secret) are read.
    pad = len(key_free) + 1 - 50 - len(OLD.der)
    big_key = OLD.der + b"\n" * pad + sec1
    assert len(big_key) > len(key_free) > len(small_key)
    bad_key, bad_pfx = "k" * 1_030 + ".der", "p" * 1_030 + ".pfx"
    for name, data in ((bad_key, small_key), ("big.der", big_key), (bad_pfx, key_free)):
        put(rt, name, data)
        deliver(rt, name)
    uploads = uploads_by_name(rt)
    assert uploads[bad_key]["error"] == {
        "code": "private-key-material",
        "message": key_material(small_key).message,
    }
    assert uploads["big.der"]["error"] == {
        "code": "private-key-material",
        "message": _KEY_IN_LARGE,
    }
    assert uploads[bad_pfx]["error"]["code"] == "bad-blob-name"
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    assert [b.name for b in container.list_blobs()] == [bad_pfx]


def test_a_key_an_older_release_recorded_as_analysed_is_deleted_on_redelivery(
    app_runtime: handlers.Runtime,
) -> None:
    """The row of this content (same ETag) says "analysed", as an older, narrower key check
    wrote it: the content is checked again and the key deleted. A key under the name
    before does not make the certificate there now a key."""
    rt = app_runtime
    put(rt, "old.pem", KEY_PEM)
    deliver(rt, "old.pem")  # a key: refused and deleted
    put(rt, "old.pem", OLD.pem)  # the certificate that replaced it, delivered twice
    deliver(rt, "old.pem")
    deliver(rt, "old.pem")
    etag = put(rt, "device.pem", KEY_PEM)
    missed = analyze_bytes("device.pem", OLD.pem, load_rules(), NOW)  # what it concluded
    assert rt.store.uploads.record_upload("device.pem", etag, missed, NOW)
    deliver(rt, "device.pem")
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    assert [b.name for b in container.list_blobs()] == ["old.pem"]


def test_the_start_of_a_key_an_older_release_called_too_large_is_deleted_on_redelivery(
    app_runtime: handlers.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the size limit, only the file's start is read. A certificate followed by a SEC1
    key cut after its secret is key material (the key check of a cut file); a row an older
    release wrote calls it merely too large, so a redelivery checks it again and deletes it."""
    limit = 2_000
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(limit))
    handlers.reset_runtime()
    rt = handlers.runtime()
    key = ec.derive_private_key(0xB003, ec.SECP256R1())
    sec1 = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    big_key = OLD.der + b"\n" * (limit + 1 - 50 - len(OLD.der)) + sec1
    etag = put(rt, "big.der", big_key)
    missed = analyze_read_result("big.der", too_large(len(big_key), limit), load_rules(), NOW)
    assert rt.store.uploads.record_upload("big.der", etag, missed, NOW)
    deliver(rt, "big.der")
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    assert [b.name for b in container.list_blobs()] == []


def test_a_pkcs12_with_a_key_over_a_mebibyte_is_never_uploaded() -> None:
    """`ca-watch upload` reads each whole file before sending it, whatever its size: a
    PKCS#12 of 1.2 MB (a key, and a certificate with a large extension) is key material,
    as the reader finds reading it to its end, not a file merely over the 1 MiB default."""
    key = ec.derive_private_key(0xB004, ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")])
    padding = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\0" * 1_200_000
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(padding, critical=False)
        .sign(key, hashes.SHA256())
    )
    big = pkcs12.serialize_key_and_certificates(b"d", key, certificate, None, NoEncryption())
    assert len(big) > 1_200_000
    assert key_material(big) is None  # a whole PKCS#12: the reader decides
    assert refusal("device.pfx", big) == (
        "it holds private key material, which never leaves this machine; "
        "upload the certificate only"
    )


def test_a_pkcs12_of_certificates_only_is_uploaded() -> None:
    """The guard reads a whole local file to its end: a PKCS#12 that the reader proves
    key-free (certificates only) is sent, not refused as one that may hold a key."""
    certs_only = pkcs12.serialize_key_and_certificates(
        None, None, OLD.certificate, None, NoEncryption()
    )
    assert refusal("chain.pfx", certs_only) is None
