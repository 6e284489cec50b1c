"""The key check's refusal for each form, word for word (shared/analysis/keys.py): which
form the user is told was found, through every path that finds it (PEM, DER, base64,
JSON decoded or cut short, UTF-16 with and without a byte order mark). Pure.

The refusal names the form, never a byte of the key (tests/test_keys_check.py)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from shared.analysis.keys import key_material
from shared.analysis.reader import ErrorCode
from shared.local import samples

_EC = ec.derive_private_key(0xB001, ec.SECP256R1())
_RSA = rsa.generate_private_key(65537, 2048)
_DSA = dsa.generate_private_key(2048)
ADVICE = "it was not stored. Upload the certificates only and keep the key secret"


def _der(key: object, fmt: PrivateFormat = PrivateFormat.PKCS8, password: bytes = b"") -> bytes:
    encryption = BestAvailableEncryption(password) if password else NoEncryption()
    return key.private_bytes(Encoding.DER, fmt, encryption)  # type: ignore[attr-defined]


PKCS8 = _der(_EC)
PKCS1 = _der(_RSA, PrivateFormat.TraditionalOpenSSL)
SEC1 = _der(_EC, PrivateFormat.TraditionalOpenSSL)
PEM = samples.pem(PKCS8, "PRIVATE KEY")
PFX = pkcs12.serialize_key_and_certificates(
    None, None, samples.tenant_ca().certificate, None, NoEncryption()
)
JWK = json.dumps({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB", "d": "c2VjcmV0"})
IN_JSON = json.dumps({"value": [{"certificate": base64.b64encode(PKCS8).decode()}]})
CUT_PFX = "a PKCS#12 file that cannot be read to its end (it may hold a key)"

FORMS = [
    ("pem", PEM, True, "a private key (PEM)"),
    (
        "putty",
        b"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
        True,
        "a private key (PEM)",
    ),
    (
        "utf16-bom-be",
        PEM.decode().encode("utf-16-be").join([b"\xfe\xff", b""]),
        True,
        "a private key (PEM)",
    ),
    ("utf16-le", PEM.decode().encode("utf-16-le"), True, "a private key (PEM)"),
    ("utf16-be", PEM.decode().encode("utf-16-be"), True, "a private key (PEM)"),
    ("base64", base64.encodebytes(PKCS8), True, "a private key (base64 of DER)"),
    (
        "utf8-bom-base64",
        b"\xef\xbb\xbf" + base64.b64encode(PKCS8),
        True,
        "a private key (base64 of DER)",
    ),
    ("base64-start", base64.b64encode(SEC1)[:61], False, "a private key (base64 of DER)"),
    ("pkcs8", PKCS8, True, "a private key (PKCS#8)"),
    ("space-then-der", b" \r\n" + PKCS8, True, "a private key (PKCS#8)"),
    (
        "encrypted",
        _der(_EC, PrivateFormat.PKCS8, b"secret"),
        True,
        "a private key (encrypted PKCS#8)",
    ),
    ("sec1", SEC1, True, "a private key (SEC1 EC)"),
    ("pkcs1", PKCS1, True, "a private key (PKCS#1 RSA)"),
    ("sec1-start", SEC1[:45], False, "a private key (SEC1 EC)"),
    ("dsa", _der(_DSA, PrivateFormat.TraditionalOpenSSL), True, "a private key (DSA)"),
    ("pfx-and-more", PFX + b"\n", True, CUT_PFX),
    ("pfx-start", PFX[:200], False, CUT_PFX),
    ("jwk", JWK.encode(), True, "a private key (a JWK with a private member)"),
    ("jwk-start", JWK.encode()[:-3], False, "a private key (a JWK with a private member)"),
    ("json", IN_JSON.encode(), True, "a private key inside JSON"),
    ("json-start", IN_JSON.encode()[:-3], False, "a private key inside JSON"),
]


@pytest.mark.parametrize(
    ("data", "whole", "form"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS]
)
def test_the_refusal_names_the_form_found(data: bytes, whole: bool, form: str) -> None:
    refusal = key_material(data, whole=whole)
    assert refusal is not None
    assert (refusal.code, refusal.message) == (
        ErrorCode.PRIVATE_KEY_MATERIAL,
        f"the file holds {form}; {ADVICE}",
    )
