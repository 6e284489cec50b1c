"""The key check itself (shared/analysis/keys.py), pure: each form is found, in a whole
file and in the start of one; what holds no key (certificates, public JWKs, listings,
the real public corpus) is never refused; the refusal never carries a byte of the key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from registration_samples import arm_listing, manifest, sphere_ca_list

from shared.analysis.keys import key_material
from shared.analysis.reader import ErrorCode
from shared.app.pipeline import holds_private_key
from shared.local import samples

CORPUS = Path(__file__).parent / "data" / "azure-sphere-public"
HUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/hub1"
_EC = ec.derive_private_key(0xB001, ec.SECP256R1())
_RSA = rsa.generate_private_key(65537, 2048)


def _der(key: object, fmt: PrivateFormat = PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(Encoding.DER, fmt, NoEncryption())  # type: ignore[attr-defined]


def _found(data: bytes, *, whole: bool = True) -> bool:
    refusal = key_material(data, whole=whole)
    if refusal is None:
        return False
    assert refusal.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert "stored" in refusal.message
    return True


KEYS = {
    "pkcs8": _der(_EC),
    "pkcs1": _der(_RSA, PrivateFormat.TraditionalOpenSSL),
    "sec1": _der(_EC, PrivateFormat.TraditionalOpenSSL),
}


@pytest.mark.parametrize("name", sorted(KEYS))
@pytest.mark.parametrize(
    "wrap",
    ["alone", "newline", "crlf", "then-cert", "after-cert", "base64", "utf16-pem", "json-b64"],
)
def test_each_key_is_found_however_it_is_wrapped(name: str, wrap: str) -> None:
    der, cert = KEYS[name], samples.tenant_ca().der
    data = {
        "alone": der,
        "newline": der + b"\n",
        "crlf": der + b"\r\n",
        "then-cert": der + cert,
        "after-cert": cert + b"\n" + der,
        "base64": base64.encodebytes(der),
        "utf16-pem": samples.pem(der, "PRIVATE KEY").decode().encode("utf-16"),
        "json-b64": json.dumps({"value": [{"certificate": base64.b64encode(der).decode()}]}),
    }[wrap]
    data = data.encode() if isinstance(data, str) else data
    assert _found(data)
    refusal = key_material(data)
    assert refusal is not None and base64.b64encode(der)[:16].decode() not in refusal.message


def test_the_start_of_a_utf16_file_cut_at_an_odd_byte_still_shows_its_key() -> None:
    text = samples.pem(KEYS["pkcs8"], "PRIVATE KEY") + samples.tenant_ca().pem * 4
    data = text.decode().encode("utf-16-le")  # no BOM: the NUL pattern tells
    for cut in (301, 302, 999):
        assert _found(data[:cut], whole=False)


def test_a_pkcs12_cut_short_or_not_whole_is_key_material_a_whole_one_is_left_to_the_reader() -> (
    None
):
    pfx = pkcs12.serialize_key_and_certificates(
        None, None, samples.tenant_ca().certificate, None, NoEncryption()
    )
    assert key_material(pfx) is None  # whole: the reader reads it to its end
    assert not holds_private_key(pfx)  # and finds no key: a key-free PFX is accepted
    assert _found(pfx[:200], whole=False)
    assert _found(pfx + b"\n")
    assert _found(json.dumps({"certificate": base64.b64encode(pfx).decode()}).encode())


def test_a_jwk_with_a_private_member_is_found_a_public_one_is_not() -> None:
    public = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB"}
    assert not _found(json.dumps(public).encode())
    assert not _found(json.dumps({"keys": [public]}).encode())
    for member in ("d", "p", "k"):
        private = json.dumps({"keys": [{**public, member: "c2VjcmV0"}]}).encode()
        assert _found(private)
        assert _found(private[:-3], whole=False)  # cut short: the raw text tells


def test_json_escapes_do_not_hide_a_pem_key() -> None:
    pem = samples.pem(KEYS["pkcs8"], "PRIVATE KEY").decode()
    hidden = json.dumps({"note": pem}).replace("-", "\\u002d")
    assert "-----BEGIN" not in hidden
    assert _found(hidden.encode())


def test_what_holds_no_key_is_never_refused() -> None:
    tenant = samples.tenant_ca()
    device = samples.device_certificate(tenant)
    files = [
        tenant.pem,
        tenant.der,
        tenant.der + b"\n",
        tenant.pem + device.pem,
        base64.b64encode(tenant.der),
        tenant.pem.decode().encode("utf-16"),
        arm_listing(HUB, [("ca", tenant, True)], with_body=True),
        manifest("central-app", [(tenant, True)]),
        sphere_ca_list([(tenant, True)]),
        b"",
        b"not a certificate",
        b"0123456789 looks like DER to nobody",
    ]
    files += [path.read_bytes() for path in sorted(CORPUS.rglob("*")) if path.is_file()]
    for data in files:
        assert key_material(data) is None
        assert key_material(data[: max(len(data) // 2, 1)], whole=False) is None
