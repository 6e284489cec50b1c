"""Every key form of issue 23 leaves no copy (DESIGN §2): the blob function deletes the
upload and every version of it, and no result blob, table row or log line holds a byte of
the key; ``ca-watch upload`` refuses each form. Against a real Azurite, behind a proxy
that adds the blob versioning Azurite lacks (tests/versioning_proxy.py: a fake, for what
cannot run here). Each form was kept on main before this change."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from hostile_samples import openssl_pkcs12, with_iterations
from test_private_keys import cli
from versioning_proxy import VersioningProxy, versioning_proxy

from shared.app import handlers
from shared.local import samples
from shared.local.azurite import Azurite
from shared.local.runner import process_pending
from shared.storage.connections import azurite_connection_string

SIZE_LIMIT = 4_000  # even: a limit + 1 byte read of UTF-16 ends on an odd byte


@dataclass(frozen=True)
class Form:
    name: str
    data: bytes
    secrets: tuple[bytes, ...]  # what would betray the key, as bytes or as text


def _ec_key(seed: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(seed, ec.SECP256R1())


def _scalar(seed: int) -> bytes:
    return seed.to_bytes(32, "big")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _pkcs8(seed: int) -> bytes:
    return _ec_key(seed).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def _key_secrets(seed: int) -> tuple[bytes, ...]:
    der = _pkcs8(seed)
    text = base64.b64encode(der)
    return (der, _scalar(seed), _b64url(_scalar(seed)), text[:40], text[40:80])


def _slices(data: bytes) -> tuple[bytes, ...]:
    """Pieces of an upload that hides its key (encrypted): none may be stored."""
    step = max(len(data) // 4, 24)
    return tuple(data[i : i + 24] for i in range(step, len(data) - 24, step))


def _tenant_with_key() -> tuple[samples.Issued, bytes, tuple[bytes, ...]]:
    """A certificate, its key as PEM, and that key's secrets (a PFX pairs the two)."""
    tenant = samples.tenant_ca()
    key = tenant.key
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    text = base64.b64encode(der)
    secrets = (der, scalar, _b64url(scalar), text[:40], text[40:80])
    return tenant, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), secrets


def _password_pfx() -> Form:
    tenant, _, _ = _tenant_with_key()
    data = pkcs12.serialize_key_and_certificates(
        b"exported", tenant.key, tenant.certificate, None, BestAvailableEncryption(b"pw")
    )
    return Form("exported.pfx", data, _slices(data))


def _mac_only_pfx() -> Form:
    """``-keypbe NONE``: the password guards only the MAC; the key bag is in the clear."""
    tenant, key_pem, secrets = _tenant_with_key()
    data = openssl_pkcs12(
        [tenant.der], ("-keypbe", "NONE", "-certpbe", "NONE"), password="secret", key_pem=key_pem
    )
    assert secrets[1] in data  # the key is readable without the password
    return Form("mac-only.pfx", data, (*secrets, *_slices(data)))


def _over_iterated_pfx() -> Form:
    tenant, key_pem, _ = _tenant_with_key()
    data = with_iterations(openssl_pkcs12([tenant.der], key_pem=key_pem), mac=2**24)
    return Form("slow.p12", data, _slices(data))


def _pkcs8_newline() -> Form:
    return Form("device.key.der", _pkcs8(0xA004) + b"\n", _key_secrets(0xA004))


def _pkcs8_then_certificate() -> Form:
    data = _pkcs8(0xA005) + samples.tenant_ca().der
    return Form("key-and-cert.der", data, _key_secrets(0xA005))


def _dsa_traditional() -> Form:
    key = dsa.generate_private_key(1024)  # noqa: S505 - a test key: only its form matters
    der = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    secret = key.private_numbers().x.to_bytes(20, "big")
    return Form("legacy-dsa.der", der, (der, secret, base64.b64encode(der)[:40]))


def _listing_with_key() -> Form:
    """An IoT Hub listing whose certificate body is a pasted key (base64 DER)."""
    hub = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/hub1"
    body = base64.b64encode(_pkcs8(0xA006)).decode()
    entry = {
        "id": f"{hub}/certificates/ca",
        "name": "ca",
        "properties": {"thumbprint": "AB" * 20, "isVerified": True, "certificate": body},
    }
    return Form("hub1.json", json.dumps({"value": [entry]}).encode(), _key_secrets(0xA006))


def _manifest_with_key() -> Form:
    key_pem = _ec_key(0xA007).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    document = {
        "schema": "ca-watch/registrations/v1",
        "target": "central-app",
        "kind": "iot-central",
        "certificates": [{"thumbprint": "CD" * 20, "verified": True, "note": key_pem.decode()}],
    }
    return Form("central.json", json.dumps(document).encode(), _key_secrets(0xA007))


def _jwk() -> Form:
    numbers = _ec_key(0xA008).private_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.public_numbers.x.to_bytes(32, "big")).decode(),
        "y": _b64url(numbers.public_numbers.y.to_bytes(32, "big")).decode(),
        "d": _b64url(_scalar(0xA008)).decode(),
    }
    return Form("device.jwk", json.dumps(jwk).encode(), _key_secrets(0xA008))


def _utf16_pem_over_the_limit() -> Form:
    """PowerShell's ``>`` writes UTF-16; the key first, then enough certificates to pass
    the limit, so only its start is read, ending on an odd byte."""
    key_pem = _ec_key(0xA009).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    text = key_pem + samples.tenant_ca().pem * 8
    data = text.decode("ascii").encode("utf-16")
    assert len(data) > SIZE_LIMIT
    secrets = _key_secrets(0xA009)
    as_utf16 = tuple(text.decode("ascii").encode("utf-16-le") for text in secrets[3:])
    return Form("bundle-utf16.pem", data, (*secrets, *as_utf16))


FORMS: dict[str, Callable[[], Form]] = {
    "password-protected-pfx": _password_pfx,
    "pfx-key-readable-without-password": _mac_only_pfx,
    "over-iterated-pkcs12": _over_iterated_pfx,
    "pkcs8-der-with-trailing-newline": _pkcs8_newline,
    "pkcs8-der-followed-by-certificate": _pkcs8_then_certificate,
    "traditional-dsa-der": _dsa_traditional,
    "key-in-listing-json": _listing_with_key,
    "key-in-manifest": _manifest_with_key,
    "jwk-with-d": _jwk,
    "utf16-pem-over-the-limit-key-first": _utf16_pem_over_the_limit,
}


@dataclass
class Versioned:
    rt: handlers.Runtime
    proxy: VersioningProxy
    tables: TableServiceClient

    @property
    def container(self):  # the SDK's ContainerClient
        return self.rt.blobs.get_container_client(self.rt.settings.cert_container)

    def stored(self) -> bytes:
        """Every byte a reader of storage could get: each blob of the upload and results
        containers with its snapshots and versions, and every table entity."""
        out = bytearray()
        for name in (self.rt.settings.cert_container, self.rt.settings.results_container):
            container = self.rt.blobs.get_container_client(name)
            for item in container.list_blobs(include=["snapshots", "versions"]):
                client = container.get_blob_client(
                    item.name, snapshot=item.snapshot, version_id=item.version_id
                )
                out += client.download_blob().readall()
        for table in self.tables.list_tables():
            for entity in self.tables.get_table_client(table.name).list_entities():
                out += repr(dict(entity)).encode()
        return bytes(out)


@pytest.fixture
def versioned(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Versioned]:
    with versioning_proxy(azurite.blob_port, azurite.connection_string) as proxy:
        monkeypatch.setenv(
            "CertStorage",
            azurite_connection_string(
                "127.0.0.1", proxy.port, azurite.queue_port, azurite.table_port
            ),
        )
        monkeypatch.setenv("CERT_CONTAINER", f"certs{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("RESULTS_CONTAINER", f"results{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("ALERT_OUTBOX_DIR", str(tmp_path / "outbox"))
        monkeypatch.setenv("MAX_UPLOAD_BYTES", str(SIZE_LIMIT))
        monkeypatch.delenv("RULES_FILE", raising=False)
        handlers.reset_runtime()
        rt = handlers.runtime()
        rt.store.delete_all()
        rt.store.ensure_tables()
        handlers.ensure_containers(rt)
        tables = TableServiceClient.from_connection_string(azurite.connection_string)
        yield Versioned(rt, proxy, tables)
        handlers.reset_runtime()


def _assert_no_copy(versioned: Versioned, form: Form, logged: str) -> None:
    assert [(b.name, b.version_id) for b in versioned.container.list_blobs(
        include=["snapshots", "versions"]
    )] == [], "the blob or a version of it stayed"  # fmt: skip
    stored = versioned.stored()
    logged_bytes = logged.encode("utf-8", "replace")
    for secret in form.secrets:
        assert secret not in stored, "key bytes stayed in storage"
        assert secret not in logged_bytes, "key bytes reached a log"


@pytest.mark.parametrize("form_name", sorted(FORMS))
def test_each_key_form_is_deleted_with_its_versions_and_leaves_no_byte(
    versioned: Versioned, form_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    form = FORMS[form_name]()
    versioned.container.upload_blob(form.name, form.data)
    # Overwritten with the same bytes before the function ran: an earlier version too.
    versioned.container.upload_blob(form.name, form.data, overwrite=True)
    assert len(versioned.proxy.versions) == 1

    assert process_pending(versioned.rt) == (1, 0)

    (row,) = versioned.rt.store.report()["uploads"]
    assert (row["name"], row["status"], row["error"]["code"]) == (
        form.name,
        "rejected",
        "private-key-material",
    )
    _assert_no_copy(versioned, form, caplog.text)


def test_a_key_replaced_before_the_function_ran_is_found_in_its_version(
    versioned: Versioned, caplog: pytest.LogCaptureFixture
) -> None:
    """A key uploaded, then overwritten by a certificate before any event was handled: the
    events bring the certificate, and the key stays as a version unless the function
    looks at the versions no row records."""
    caplog.set_level(logging.DEBUG)
    form = _pkcs8_newline()
    versioned.container.upload_blob("device.pem", form.data)
    certificate = samples.tenant_ca().pem
    versioned.container.upload_blob("device.pem", certificate, overwrite=True)

    assert process_pending(versioned.rt) == (1, 0)

    (row,) = versioned.rt.store.report()["uploads"]
    assert row["status"] == "analyzed"  # the certificate itself stays, as it should
    listed = list(versioned.container.list_blobs(include=["versions"]))
    assert [(b.name, b.version_id) for b in listed] == [("device.pem", None)]
    assert versioned.proxy.versions == []
    stored = versioned.stored()
    for secret in form.secrets:
        assert secret not in stored
        assert secret not in caplog.text.encode("utf-8", "replace")


def test_a_password_pfx_replaced_before_the_function_ran_is_found_in_its_version(
    versioned: Versioned,
) -> None:
    """A whole PKCS#12 that only the reader can call key material (the key check leaves a
    whole one to it): found in an earlier version too, and deleted."""
    form = _password_pfx()
    versioned.container.upload_blob(form.name, form.data)
    versioned.container.upload_blob(form.name, samples.tenant_ca().pem, overwrite=True)
    assert process_pending(versioned.rt) == (1, 0)
    assert versioned.proxy.versions == []
    assert not any(secret in versioned.stored() for secret in form.secrets)


def test_a_certificate_version_never_processed_is_kept(versioned: Versioned) -> None:
    """Only versions that hold a key go: an overwritten certificate stays a version."""
    versioned.container.upload_blob("ca.pem", samples.tenant_ca().pem)
    versioned.container.upload_blob("ca.pem", samples.azure_sphere_pca().pem, overwrite=True)
    assert process_pending(versioned.rt) == (1, 0)
    assert len(versioned.proxy.versions) == 1


def test_ca_watch_upload_refuses_every_form(app_runtime, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    forms = [make() for make in FORMS.values()]
    for form in forms:
        (tree / form.name).write_bytes(form.data)
    (tree / "ca.pem").write_bytes(samples.tenant_ca().pem)

    done = cli("upload", str(tree))

    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said
    for form in forms:
        assert f"{form.name}: not uploaded: it holds private key material" in said
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    assert [b.name for b in container.list_blobs()] == ["ca.pem"]


def test_a_key_under_a_name_refused_unread_is_still_checked_and_deleted(
    versioned: Versioned,
) -> None:
    """A name storage listings cannot carry used to be refused without reading the blob,
    so a key under it stayed: the key check runs before that early return too."""
    form = _pkcs8_newline()
    name = "k" * 1_030 + ".der"  # over the 1,024 characters Azure allows; Azurite takes it
    versioned.container.upload_blob(name, form.data)
    assert process_pending(versioned.rt) == (1, 0)
    (row,) = versioned.rt.store.report()["uploads"]
    assert (row["status"], row["error"]["code"]) == ("rejected", "private-key-material")
    assert list(versioned.container.list_blobs(include=["versions"])) == []
    assert not any(secret in versioned.stored() for secret in form.secrets)


def test_the_sweep_goes_past_a_recorded_version_and_says_what_it_deleted(
    versioned: Versioned, caplog: pytest.LogCaptureFixture
) -> None:
    """Versions come oldest first: a recorded one (judged when it was current) is passed
    over, not the end of the sweep; the key version after it is deleted, and the log names
    the blob."""
    caplog.set_level(logging.WARNING, logger="ca_watch")
    recorded = samples.tenant_ca().pem
    versioned.container.upload_blob("device.pem", recorded)
    assert process_pending(versioned.rt) == (1, 0)
    versioned.container.upload_blob("device.pem", _pkcs8_newline().data, overwrite=True)
    versioned.container.upload_blob("device.pem", samples.azure_sphere_pca().pem, overwrite=True)
    assert process_pending(versioned.rt) == (1, 0)
    certs = versioned.rt.settings.cert_container  # (results are versioned too)
    assert [v.content for v in versioned.proxy.versions if v.container == certs] == [recorded]
    swept = [r.getMessage() for r in caplog.records if "earlier version" in r.getMessage()]
    assert swept == [
        "blob device.pem: an earlier version, never processed, held private key material: deleted"
    ]


def test_versions_deleted_by_someone_else_meanwhile_do_not_stop_the_sweep(
    versioned: Versioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another event's sweep may delete a version between this event's listing and its
    read (the read finds nothing), or between its read and its delete (the delete finds
    nothing): the sweep goes on to the next version, and the event succeeds."""
    versioned.container.upload_blob("device.pem", samples.tenant_ca().pem)
    versioned.container.upload_blob("device.pem", _pkcs8_newline().data, overwrite=True)
    versioned.container.upload_blob("device.pem", samples.azure_sphere_pca().pem, overwrite=True)
    proxy = versioned.proxy
    first, key = proxy.versions
    find = proxy.find
    asked: list[str] = []

    def deleted_meanwhile(container: str, name: str, version_id: str) -> object:
        asked.append(version_id)
        if version_id == first.version_id or asked.count(key.version_id) == 2:
            found = find(container, name, version_id)
            if found is not None:
                proxy.drop(found)  # someone else's delete, just before this request
            return None
        return find(container, name, version_id)

    monkeypatch.setattr(proxy, "find", deleted_meanwhile)
    assert process_pending(versioned.rt) == (1, 0)
    assert asked == [first.version_id, key.version_id, key.version_id]
    assert proxy.versions == []


def test_a_version_is_read_whole_up_to_the_limit_and_only_its_start_past_it(
    versioned: Versioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key-free PKCS#12 version of exactly MAX_UPLOAD_BYTES is read whole, so the reader
    proves it key-free and it stays; a version one byte over is judged by its start, where a
    key cut after its secret (behind a certificate) is key material, and it goes."""
    tenant = samples.tenant_ca()
    key_free = pkcs12.serialize_key_and_certificates(
        None, None, tenant.certificate, None, NoEncryption()
    )
    limit = len(key_free)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(limit))
    handlers.reset_runtime()
    rt = handlers.runtime()
    sec1 = _ec_key(0xA0F1).private_bytes(
        Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()
    )
    pad = limit + 1 - 50 - len(tenant.der)  # the limit + 1 bytes read end 50 into the key
    assert pad > 0
    cut_key = tenant.der + b"\n" * pad + sec1
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, earlier in (("chain.pfx", key_free), ("big.der", cut_key)):
        container.upload_blob(name, earlier)
        container.upload_blob(name, samples.azure_sphere_pca().pem, overwrite=True)
    assert process_pending(rt) == (2, 0)
    assert [(v.name, v.content) for v in versioned.proxy.versions] == [("chain.pfx", key_free)]
