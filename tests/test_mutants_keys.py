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

from shared.analysis.der import read_tlv
from shared.analysis.keys import der_key_form, key_material
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


def refused(data: bytes, *, whole: bool = True) -> str | None:
    """The form a refusal names, or None when the data is not refused."""
    refusal = key_material(data, whole=whole)
    if refusal is None:
        return None
    return refusal.message.removeprefix("the file holds ").removesuffix(f"; {ADVICE}")


CERT = samples.tenant_ca()
# A UTF-16 PEM key cut anywhere: a lone surrogate unit and a non-ASCII character before it.
UTF16_ODD = "é\n".encode("utf-16-le") + b"\x00\xd8" + PEM.decode().encode("utf-16-le")
B64_SEC1_UTF16 = base64.b64encode(SEC1).decode().encode("utf-16-le")


def ber_pfx(*, cut: bool = False) -> bytes:
    """A PFX in BER with indefinite lengths (what some tools write): version 3 and a body."""
    body = b"\x02\x01\x03" + b"\x30\x80" + b"\x04\x02ab" + b"\x00\x00"
    return b"\x30\x80" + body + (b"" if cut else b"\x00\x00")


def seq(*children: bytes) -> bytes:
    content = b"".join(children)
    return b"\x30" + bytes([len(content)]) + content


INT0, INT1, INT2, EMPTY_SEQ, OCTETS = (
    b"\x02\x01\x00",
    b"\x02\x01\x01",
    b"\x02\x01\x02",
    b"\x30\x00",
    b"\x04\x02ab",
)


@pytest.mark.parametrize(
    ("data", "whole", "form"),
    [
        # DER first, text after: the DER is what the file is
        (PKCS8 + b"\n" + CERT.pem, True, "a private key (PKCS#8)"),
        # UTF-16 text that starts with "0" is text, not DER
        ("0\n".encode("utf-16-le") + PEM.decode().encode("utf-16-le"), True, "a private key (PEM)"),
        (UTF16_ODD, True, "a private key (PEM)"),
        # the start of a UTF-16 base64 key, cut at an odd byte and at a multiple of three
        (B64_SEC1_UTF16[:121], False, "a private key (base64 of DER)"),
        (B64_SEC1_UTF16[:124], False, "a private key (base64 of DER)"),
        (base64.b64encode(SEC1)[:66], False, "a private key (base64 of DER)"),
        # a certificate whose text mentions keys is a certificate
        (CERT.pem + b"\nno PRIVATE KEY here\n", True, None),
        # a lone SEQUENCE byte after a certificate, or alone: nothing to read, no crash
        (CERT.der + b"\n0", True, None),
        (b"0", False, None),
        # BER PKCS#12: whole, the reader decides; cut, after something, or only a start: refused
        (ber_pfx(), True, None),
        (ber_pfx(), False, CUT_PFX),
        (CERT.der + ber_pfx(), True, CUT_PFX),
        (PFX[:-5], True, CUT_PFX),
        (b"\x30\x81\xc8" + b"\x02\x01\x03" + b"\x30\x81\xc0" + b"\x00" * 20, False, CUT_PFX),
        # JSON that does not parse is judged on its text
        (JWK.encode() + b" trailing", True, "a private key (a JWK with a private member)"),
        # a cut JSON with a member named like a JWK's, but no "kty": no JWK
        (json.dumps({"value": [{"d": "x", "name": "n"}]}).encode()[:-3], False, None),
        # base64 with line breaks, escaped in JSON text or real in a decoded string
        (
            json.dumps({"c": base64.encodebytes(PKCS8).decode()}).encode()[:-1],
            False,
            "a private key inside JSON",
        ),
        (
            json.dumps({"c": base64.encodebytes(PKCS8).decode()}).encode(),
            True,
            "a private key inside JSON",
        ),
        (
            json.dumps({"c": "-----BEGIN DATA-----\n" + base64.b64encode(PKCS8).decode()}).encode(),
            True,
            "a private key inside JSON",
        ),
        # 64 characters is long enough to hold (the start of) a key
        (
            json.dumps({"c": base64.b64encode(SEC1).decode()[:64]}).encode(),
            True,
            "a private key inside JSON",
        ),
        # a lone surrogate in a JSON string is text like any other
        (json.dumps({"c": "\ud800" + "x" * 70}).encode(), True, None),
        # DER forms by their first children
        (seq(INT1, EMPTY_SEQ, OCTETS), True, "a private key (PKCS#8)"),  # RFC 5958 v2
        (seq(INT0, EMPTY_SEQ, EMPTY_SEQ), True, None),  # no key octets
        (seq(INT2, EMPTY_SEQ, OCTETS), True, None),  # no such version
        (seq(EMPTY_SEQ, OCTETS, INT0), True, "a private key (encrypted PKCS#8)"),
        (seq(*[INT1] * 9, EMPTY_SEQ), True, "a private key (PKCS#1 RSA)"),  # multi-prime
    ],
    ids=range(26),
)
def test_edges_of_each_path(data: bytes, whole: bool, form: str | None) -> None:
    assert refused(data, whole=whole) == (None if form is None else form)


def test_a_key_whose_later_child_is_broken_is_no_key_form() -> None:
    data = seq(INT0, EMPTY_SEQ, OCTETS, b"\x02\x05\x00")
    assert der_key_form(data, read_tlv(data, 0, len(data))) is None


def json_strings(count: int) -> bytes:
    """A document of ``count`` long strings; the key is the one looked at last."""
    filler = ["not base64! " * 6] * (count - 1)
    return json.dumps([base64.b64encode(PKCS8).decode(), *filler]).encode()


def test_the_work_on_json_strings_is_bounded() -> None:
    assert refused(json_strings(20_000)) == "a private key inside JSON"
    assert refused(json_strings(20_001)) is None  # the 20,001st string is not looked at
    text = json.dumps(["not base64! " * 6] * 20_000 + [base64.b64encode(PKCS8).decode()])
    assert refused(text.encode()[:-1], whole=False) is None  # cut: the raw text, bounded too
    fewer = json.dumps(["not base64! " * 6] * 19_999 + [base64.b64encode(PKCS8).decode()])
    assert refused(fewer.encode()[:-1], whole=False) == "a private key inside JSON"


@pytest.mark.parametrize(
    ("data", "whole", "form"),
    [
        # base64 with escaped line breaks in a cut JSON: an RSA key's children span them
        (
            json.dumps({"c": base64.encodebytes(PKCS1).decode()}).encode()[:-1],
            False,
            "a private key inside JSON",
        ),
        # a whole file that is a key cut short is no key form: the reader refuses it unread
        (SEC1[:45], True, None),
        # a whole key-free PKCS#12 is left to the reader, in base64 or after white space too
        (base64.encodebytes(PFX), True, None),
        (b" \n" + PFX, True, None),
        # UTF-16 is told by its zero bytes, whatever the first character
        (
            "\x01\n".encode("utf-16-le") + PEM.decode().encode("utf-16-le"),
            True,
            "a private key (PEM)",
        ),
        (
            "\x01\n".encode("utf-16-be") + PEM.decode().encode("utf-16-be"),
            True,
            "a private key (PEM)",
        ),
    ],
    ids=range(6),
)
def test_more_edges(data: bytes, whole: bool, form: str | None) -> None:
    assert refused(data, whole=whole) == form
