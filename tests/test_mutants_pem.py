"""What ``ca-watch scan`` and the blob function report for PEM text at its edges (issue 16).

People paste, concatenate and re-save PEM files: blocks glued without a newline, CRLF, odd
whitespace, headers, a missing END line, broken base64. Each table row is one such file and the
exact scan/v1 result the user sees: the certificates read, or the ``error`` code and message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from analyzer_samples import rules
from crafted_der import certificate, cn, pem, tlv
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from shared.analysis.scan import analyze_bytes

NOW = datetime(2024, 1, 1, tzinfo=UTC)
FIRST = certificate(subject=cn("First"))
SECOND = certificate(subject=cn("Second"))
THIRD = certificate(subject=cn("Third"))


def scan(data: bytes) -> dict[str, Any]:
    return analyze_bytes("upload.pem", data, rules(), NOW).to_json()


def _body(der: bytes) -> bytes:
    """The base64 lines of a CERTIFICATE block, with their newlines."""
    return pem(der).split(b"-----\n", 1)[1].rsplit(b"-----END", 1)[0]


def _pkcs7_pem(der: bytes) -> bytes:
    loaded = x509.load_der_x509_certificate(der)
    return pkcs7.serialize_certificates([loaded], Encoding.PEM)


_KEY = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
_PREAMBLE = b"subject=CN = First\n"

# (what the file looks like, its bytes, the subjects read and the format, or code and message)
READABLE: list[tuple[str, bytes, list[str], str]] = [
    (
        "three certificates",
        pem(FIRST) + pem(SECOND) + pem(THIRD),
        ["CN=First", "CN=Second", "CN=Third"],
        "pem",
    ),
    (
        "two files glued by cat, no newline between",
        pem(FIRST).rstrip(b"\n") + pem(SECOND),
        ["CN=First", "CN=Second"],
        "pem",
    ),
    (
        "CRLF line ends",
        pem(FIRST, eol="\r\n") + pem(SECOND, eol="\r\n"),
        ["CN=First", "CN=Second"],
        "pem",
    ),
    (
        "base64 on the BEGIN line, after a preamble",
        _PREAMBLE + b"-----BEGIN CERTIFICATE-----" + _body(FIRST) + b"-----END CERTIFICATE-----\n",
        ["CN=First"],
        "pem",
    ),
    (
        "tabs, trailing spaces, vertical tab and form feed in the base64",
        _PREAMBLE + pem(FIRST).replace(b"\n", b" \t\n\x0b\x0c", 3),
        ["CN=First"],
        "pem",
    ),
    (
        "RFC 1421 headers in the block",
        pem(FIRST).replace(b"-----\n", b"-----\nProc-Type: 4,MIC-CLEAR\nComment: x\n\n", 1),
        ["CN=First"],
        "pem",
    ),
    (
        "the words PRIVATE KEY in the text, no key block",
        b"Never upload the PRIVATE KEY.\n" + pem(FIRST),
        ["CN=First"],
        "pem",
    ),
    (
        "TRUSTED CERTIFICATE with OpenSSL trust settings after it",
        pem(
            FIRST + tlv(0x30, tlv(0x06, b"\x2b\x06\x01\x05\x05\x07\x03\x01")), "TRUSTED CERTIFICATE"
        ),
        ["CN=First"],
        "pem",
    ),
    (
        "a certificate and a PKCS7 block",
        pem(FIRST) + _pkcs7_pem(SECOND),
        ["CN=First", "CN=Second"],
        "pem+pkcs7-pem",
    ),
]


@pytest.mark.parametrize(
    ("data", "subjects", "form"),
    [case[1:] for case in READABLE],
    ids=[case[0] for case in READABLE],
)
def test_pem_files_people_make_are_read(data: bytes, subjects: list[str], form: str) -> None:
    result = scan(data)
    assert (result["status"], result["error"], result["format"]) == ("analyzed", None, form)
    assert [c["subject"] for c in result["certificates"]] == subjects


_NO_END = "PEM block(s) have no matching END line"
_GLUED = b"-----END CERTIFICATE-----BEGIN CERTIFICATE-----"

UNREADABLE: list[tuple[str, bytes, str, str]] = [
    (
        "missing END line after a good block",
        pem(FIRST) + pem(SECOND).rsplit(b"-----END", 1)[0],
        "truncated",
        f"1 {_NO_END}",
    ),
    (
        "a BEGIN without END, then a good block",
        b"-----BEGIN X509 CRL-----\nAAAA\n" + pem(FIRST),
        "truncated",
        f"1 {_NO_END}",
    ),
    (
        "a BEGIN inside a block, then a good block",
        pem(FIRST).replace(b"-----\n", b"-----\n-----BEGIN CERTIFICATE-----\n", 1) + pem(SECOND),
        "truncated",
        f"1 {_NO_END}",
    ),
    (
        "END and BEGIN sharing their dashes",
        pem(FIRST).replace(
            b"-----END CERTIFICATE-----\n",
            _GLUED + b"\n" + _body(SECOND) + b"-----END CERTIFICATE-----\n",
        ),
        "truncated",
        f"1 {_NO_END}",
    ),
    (
        "BEGIN and END sharing their dashes",
        _PREAMBLE + b"-----BEGIN CERTIFICATE-----END CERTIFICATE-----\n",
        "truncated",
        f"1 {_NO_END}",
    ),
    (
        "an empty block",
        _PREAMBLE + b"-----BEGIN CERTIFICATE----------END CERTIFICATE-----\n",
        "malformed-certificate",
        "certificate 1 of 1: malformed certificate: "
        "truncated: header at offset 0 runs past the end",
    ),
    (
        "a character outside base64",
        pem(FIRST).replace(b"\n", b"!\n", 2),
        "malformed-pem",
        "PEM block 1 has invalid base64",
    ),
    (
        "padding in the middle",
        pem(FIRST).replace(b"\n", b"==\n", 2),
        "malformed-pem",
        "PEM block 1 has invalid base64",
    ),
    (
        "bad base64 in the second block",
        pem(FIRST) + pem(SECOND).replace(b"\n", b"*\n", 2),
        "malformed-pem",
        "PEM block 2 has invalid base64",
    ),
    (
        "bad base64 in a PKCS7 block",
        pem(b"\x30\x00", "PKCS7").replace(b"\n", b".\n", 2),
        "malformed-pem",
        "PEM block 1 has invalid base64",
    ),
    (
        "TRUSTED CERTIFICATE cut short",
        pem(FIRST[:40], "TRUSTED CERTIFICATE"),
        "malformed-certificate",
        f"PEM block 1: truncated: element at offset 0 claims {len(FIRST) - 3} bytes, 37 remain",
    ),
    (
        "a private key next to the certificate",
        pem(FIRST) + _KEY,
        "private-key-material",
        # The one key check (shared/analysis/keys.py) speaks first, before the PEM reader.
        "the file holds a private key (PEM); it was not stored. Upload the certificates only "
        "and keep the key secret",
    ),
    (
        "a key under a label only the PEM reader knows",
        # The key check's label set is [A-Z0-9 ]; the PEM scanner's also takes "#" and "/":
        # the reader refuses such a key block itself, with its own advice.
        b"-----BEGIN OPENSSH/PRIVATE KEY-----\nAAAA\n-----END OPENSSH/PRIVATE KEY-----\n",
        "private-key-material",
        "the file holds a private key; it was not stored. Upload only the certificate "
        "(e.g. `openssl x509 -in FILE -out cert.pem`) and keep the key secret",
    ),
    (
        "lower-case labels",
        b"-----BEGIN certificate-----\nAAAA\n-----END certificate-----\n",
        "no-certificates",
        "the file holds no certificate, not a certificate",
    ),
    (
        "an unknown label",
        pem(FIRST, "CERTIFICATE CHAIN"),
        "unsupported-pem-block",
        "the file holds a PEM block of type 'CERTIFICATE CHAIN', not a certificate",
    ),
]


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [case[1:] for case in UNREADABLE],
    ids=[case[0] for case in UNREADABLE],
)
def test_broken_pem_is_reported_with_what_is_wrong(data: bytes, code: str, message: str) -> None:
    result = scan(data)
    status = "rejected" if code == "private-key-material" else "unreadable"
    assert (result["status"], result["error"]) == (status, {"code": code, "message": message})
    assert result["certificates"] == []
