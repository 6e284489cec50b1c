"""What ``ca-watch scan`` and the blob function report for crafted DER, exactly (issue 16).

The DER reader's refusals reach the user as the ``error`` of an ``unreadable`` file in the
scan/v1 JSON (and the CLI's ``code: message`` line), so these tables assert the whole code and
message for one broken thing at a time, and the facts of well-formed edge cases (length-form
boundaries, OID first arcs, unusual but legal fields) where ``cryptography`` is the reference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from analyzer_samples import rules
from crafted_der import (
    CA_TRUE,
    ECDSA_SHA256,
    SIGNATURE,
    basic_constraints,
    certificate,
    cn,
    extensions,
    generalized,
    length_octets,
    name,
    oid,
    pem,
    seq,
    tbs,
    tlv,
    utc,
)
from cryptography import x509

from shared.analysis import der
from shared.analysis.scan import analyze_bytes
from shared.local.common import describe_error

NOW = datetime(2024, 1, 1, tzinfo=UTC)
_CERT = "certificate 1 of 1: malformed certificate: "
_DAMAGED = "the DER is damaged: "


@pytest.fixture(autouse=True)
def _decode_afresh() -> None:
    """The reader caches decoded names and algorithms across files (a fleet repeats them):
    clear them, so each case here is decoded, not served from an earlier test's result."""
    for cached in (der._name, der._rdn, der._algorithm_identifier):
        cached.cache_clear()


def scan(data: bytes) -> dict[str, Any]:
    return analyze_bytes("upload.cer", data, rules(), NOW).to_json()


def _time(text: str) -> bytes:
    return utc(text) if len(text) == 13 else generalized(text)


# (what is wrong, the file, error code, error message)
MALFORMED: list[tuple[str, bytes, str, str]] = [
    # -- lengths, read before anything else (the reader's first look at a DER file) --
    (
        "short length past the end",
        bytes.fromhex("30050201"),
        "truncated",
        _DAMAGED + "truncated: element at offset 0 claims 5 bytes, 2 remain",
    ),
    (
        "length 0x80 in one length octet, nothing after",
        bytes.fromhex("308180"),
        "truncated",
        _DAMAGED + "truncated: element at offset 0 claims 128 bytes, 0 remain",
    ),
    (
        "two length octets, one present",
        bytes.fromhex("308201"),
        "truncated",
        _DAMAGED + "truncated: length at offset 0 runs past the end",
    ),
    (
        "4-byte length field (16 MiB)",
        bytes.fromhex("3084010000000500"),
        "truncated",
        _DAMAGED + "truncated: element at offset 0 claims 16777216 bytes, 2 remain",
    ),
    (
        "5-byte length field",
        bytes.fromhex("30850100000000"),
        "malformed-der",
        _DAMAGED + "length of 5 bytes at offset 0 is too large",
    ),
    (
        "length 0x7f in the long form",
        bytes.fromhex("30817f") + bytes(0x7F),
        "malformed-der",
        _DAMAGED + "non-minimal length encoding at offset 0",
    ),
    (
        "one lone byte inside a SEQUENCE",
        bytes.fromhex("300102"),
        "truncated",
        _DAMAGED + "truncated: header at offset 2 runs past the end",
    ),
    (
        "high tag number inside a SEQUENCE",
        bytes.fromhex("3003bf0100"),
        "malformed-der",
        _DAMAGED + "unsupported high tag number at offset 2",
    ),
    (
        "indefinite length inside a definite SEQUENCE",
        bytes.fromhex("308184") + bytes.fromhex("3080") + bytes(128) + bytes.fromhex("0500"),
        "malformed-der",
        "BER data that is not PKCS#7 or PKCS#12",
    ),
    # -- the Certificate SEQUENCE (PEM, so the bytes reach the certificate parser as they are) --
    (
        "Certificate is a SET",
        pem(tlv(0x31)),
        "malformed-certificate",
        _CERT + "Certificate: expected tag 0x30, found 0x31",
    ),
    (
        "two bytes after the certificate",
        pem(certificate() + b"\x05\x00"),
        "malformed-certificate",
        _CERT + "2 bytes after the certificate",
    ),
    (
        "TBSCertificate is a SET",
        pem(certificate(body=tlv(0x31, b"\x05\x00"))),
        "malformed-certificate",
        _CERT + "TBSCertificate: expected tag 0x30, found 0x31",
    ),
    (
        "signatureAlgorithm is a bare OID",
        pem(certificate(algorithm=oid("2a8648ce3d040302"))),
        "malformed-certificate",
        _CERT + "AlgorithmIdentifier: expected tag 0x30, found 0x06",
    ),
    (
        "signatureValue is an OCTET STRING",
        pem(certificate(signature=tlv(0x04, b"\x00\x01"))),
        "malformed-certificate",
        _CERT + "signatureValue: expected tag 0x03, found 0x04",
    ),
    (
        "a fourth element",
        seq(tbs(), ECDSA_SHA256, SIGNATURE, tlv(0x05)),
        "malformed-certificate",
        _CERT + "Certificate has more than 3 elements",
    ),
    (
        "empty signature BIT STRING, last in the file",
        certificate(signature=tlv(0x03)),
        "malformed-certificate",
        _CERT + "signatureValue must be a whole number of octets",
    ),
    (
        "signature with 7 unused bits",
        certificate(signature=tlv(0x03, b"\x07\x80")),
        "malformed-certificate",
        _CERT + "signatureValue must be a whole number of octets",
    ),
    # -- TBSCertificate fields, each wrong on its own --
    (
        "TBSCertificate with five fields",
        certificate(extra=None, spki=None),
        "malformed-certificate",
        _CERT + "TBSCertificate is missing required fields",
    ),
    (
        "serialNumber is an OCTET STRING",
        certificate(serial=tlv(0x04, b"\x01")),
        "malformed-certificate",
        _CERT + "serialNumber: expected tag 0x02, found 0x04",
    ),
    (
        "issuer is a SET",
        certificate(issuer=tlv(0x31)),
        "malformed-certificate",
        _CERT + "issuer: expected tag 0x30, found 0x31",
    ),
    (
        "validity is a SET",
        certificate(validity=tlv(0x31)),
        "malformed-certificate",
        _CERT + "validity: expected tag 0x30, found 0x31",
    ),
    (
        "subject is a SET",
        certificate(subject=tlv(0x31)),
        "malformed-certificate",
        _CERT + "subject: expected tag 0x30, found 0x31",
    ),
    (
        "subjectPublicKeyInfo is a SET",
        certificate(spki=tlv(0x31)),
        "malformed-certificate",
        _CERT + "subjectPublicKeyInfo: expected tag 0x30, found 0x31",
    ),
    (
        "serialNumber is empty",
        certificate(serial=tlv(0x02)),
        "malformed-certificate",
        _CERT + "serialNumber is empty",
    ),
    (
        "TBSCertificate.signature is NULL",
        certificate(inner_algorithm=tlv(0x05)),
        "malformed-certificate",
        _CERT + "AlgorithmIdentifier: expected tag 0x30, found 0x05",
    ),
    (
        "validity holds one time",
        certificate(validity=seq(utc("200101000000Z"))),
        "malformed-certificate",
        _CERT + "validity must hold notBefore and notAfter",
    ),
    # -- validity times --
    (
        "UTCTime with four-digit year",
        certificate(validity=seq(utc("20200101000000Z"), utc("300101000000Z"))),
        "malformed-certificate",
        _CERT + "validity time b'20200101000000Z' is not UTCTime or GeneralizedTime in UTC",
    ),
    (
        "GeneralizedTime without seconds",
        certificate(validity=seq(generalized("202001010000Z"), utc("300101000000Z"))),
        "malformed-certificate",
        _CERT + "validity time b'202001010000Z' is not UTCTime or GeneralizedTime in UTC",
    ),
    (
        "a space in the year",
        certificate(validity=seq(utc("2 0101000000Z"), utc("300101000000Z"))),
        "malformed-certificate",
        _CERT + "validity time b'2 0101000000Z' is not a valid date",
    ),
    (
        "a space before the Z (int() would read 2020-01-12 12:30)",
        certificate(validity=seq(utc("20112123000 Z"), utc("300101000000Z"))),
        "malformed-certificate",
        _CERT + "validity time b'20112123000 Z' is not a valid date",
    ),
    # -- object identifiers --
    (
        "empty signature algorithm OID",
        certificate(algorithm=seq(tlv(0x06))),
        "malformed-certificate",
        _CERT + "empty OBJECT IDENTIFIER",
    ),
    (
        "attribute type OID starts with 0x80",
        certificate(subject=name([("8001", 0x0C, b"x")])),
        "malformed-certificate",
        _CERT + "non-minimal OBJECT IDENTIFIER arc",
    ),
    (
        "attribute type OID ends mid-arc",
        certificate(subject=name([("2a86", 0x0C, b"x")])),
        "malformed-certificate",
        _CERT + "truncated OBJECT IDENTIFIER",
    ),
    # -- extensions --
    (
        "Extensions is a SET",
        certificate(extra=tlv(0xA3, tlv(0x31))),
        "malformed-certificate",
        _CERT + "Extensions: expected tag 0x30, found 0x31",
    ),
    (
        "an Extension that is an OCTET STRING",
        certificate(extra=extensions(tlv(0x04, oid("551d0f") + tlv(0x04, b"\x03\x02\x01\x06")))),
        "malformed-certificate",
        _CERT + "Extension: expected tag 0x30, found 0x04",
    ),
    (
        "extnID is an INTEGER",
        certificate(extra=extensions(seq(tlv(0x02, b"\x01"), tlv(0x04, seq())))),
        "malformed-certificate",
        _CERT + "extnID: expected tag 0x06, found 0x02",
    ),
    (
        "basicConstraints extnValue is a BIT STRING",
        certificate(extra=extensions(seq(oid("551d13"), tlv(0x03, b"\x00" + seq())))),
        "malformed-certificate",
        _CERT + "extnValue: expected tag 0x04, found 0x03",
    ),
    (
        "BasicConstraints is a BOOLEAN",
        certificate(extra=extensions(seq(oid("551d13"), tlv(0x04, CA_TRUE)))),
        "malformed-certificate",
        _CERT + "BasicConstraints: expected tag 0x30, found 0x01",
    ),
    (
        "bytes after BasicConstraints",
        certificate(extra=extensions(seq(oid("551d13"), tlv(0x04, seq(CA_TRUE) + b"\x05\x00")))),
        "malformed-certificate",
        _CERT + "basicConstraints: trailing bytes",
    ),
    (
        "cA of two octets",
        certificate(extra=extensions(basic_constraints(tlv(0x01, b"\xff\xff")))),
        "malformed-certificate",
        _CERT + "basicConstraints: cA must be one octet",
    ),
]


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_der_is_reported_with_what_is_wrong(data: bytes, code: str, message: str) -> None:
    result = scan(data)
    assert (result["status"], result["error"]) == (
        "unreadable",
        {"code": code, "message": message},
    )
    assert result["certificates"] == []


def test_the_cli_line_names_the_code_once() -> None:
    """``ca-watch scan`` prints ``code: message``, the code not repeated."""
    error = scan(bytes.fromhex("30050201"))["error"]
    assert describe_error(error["code"], error["message"]) == (
        "truncated: the DER is damaged: element at offset 0 claims 5 bytes, 2 remain"
    )


def _crypto_subject(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def _cn_of_content_length(content_length: int) -> tuple[bytes, str]:
    """A CN-only Name whose SEQUENCE content is exactly ``content_length`` bytes, and its CN."""
    header = b"\x30" + length_octets(content_length)
    for size in range(content_length):
        subject = cn("x" * size)
        if subject.startswith(header) and len(subject) == len(header) + content_length:
            return subject, "x" * size
    raise AssertionError(content_length)


@pytest.mark.filterwarnings("ignore:Attribute's length")  # cryptography: CN over 64
@pytest.mark.parametrize("content_length", [0x7F, 0x80, 0x81, 0xFF, 0x100])
def test_names_at_the_length_form_boundaries_read_like_cryptography(content_length: int) -> None:
    subject, value = _cn_of_content_length(content_length)
    der = certificate(subject=subject)
    (got,) = scan(der)["certificates"]
    assert got["subject"] == _crypto_subject(der) == "CN=" + value


def _bc(*inner: bytes) -> bytes:
    return extensions(basic_constraints(*inner))


_PATH_LEN_0 = tlv(0x02, b"\x00")
_ISSUER_UNIQUE_ID = tlv(0x81, b"\x00\x01")  # [1] IMPLICIT BIT STRING

# (what is unusual, the certificate, the scan/v1 fields it must give)
WELL_FORMED: list[tuple[str, bytes, dict[str, object]]] = [
    (
        "version 1: no [0] version, no extensions",
        certificate(version=None, extra=None),
        {"subject": "CN=Subject", "serial_number": "123", "is_ca": False},
    ),
    (
        "empty signature (only the unused-bits octet)",
        certificate(signature=tlv(0x03, b"\x00")),
        {"subject": "CN=Subject"},
    ),
    (
        "GeneralizedTime in December 2050",
        certificate(validity=seq(utc("491231235959Z"), generalized("20501231235959Z"))),
        {"not_before": "2049-12-31T23:59:59Z", "not_after": "2050-12-31T23:59:59Z"},
    ),
    ("cA TRUE", certificate(), {"is_ca": True}),
    (
        "cA TRUE in a critical extension",
        certificate(extra=extensions(basic_constraints(CA_TRUE, critical=True))),
        {"is_ca": True},
    ),
    ("empty BasicConstraints (cA defaults to FALSE)", certificate(extra=_bc()), {"is_ca": False}),
    ("pathLenConstraint only", certificate(extra=_bc(_PATH_LEN_0)), {"is_ca": False}),
    (
        "cA FALSE spelt out, then pathLenConstraint",
        certificate(extra=_bc(tlv(0x01, b"\x00"), _PATH_LEN_0)),
        {"is_ca": False},
    ),
    ("cA 0x01 (BER TRUE)", certificate(extra=_bc(tlv(0x01, b"\x01"))), {"is_ca": True}),
    (
        "issuerUniqueID before the extensions",
        certificate(extra=_ISSUER_UNIQUE_ID + extensions(basic_constraints(CA_TRUE))),
        {"is_ca": True},
    ),
    (
        "keyUsage before basicConstraints",
        certificate(
            extra=extensions(
                seq(oid("551d0f"), tlv(0x04, b"\x03\x02\x01\x06")), basic_constraints(CA_TRUE)
            )
        ),
        {"is_ca": True},
    ),
]


@pytest.mark.parametrize(
    ("der", "expected"),
    [case[1:] for case in WELL_FORMED],
    ids=[case[0] for case in WELL_FORMED],
)
def test_unusual_but_readable_certificates(der: bytes, expected: dict[str, object]) -> None:
    result = scan(der)
    assert (result["status"], result["error"]) == ("analyzed", None)
    (got,) = result["certificates"]
    assert {key: got[key] for key in expected} == expected
    loaded = x509.load_der_x509_certificate(der)  # the reference reads the same facts
    assert got["subject"] == loaded.subject.rfc4514_string()
    assert got["not_after"] == loaded.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


# OBJECT IDENTIFIER first octets around the 40/80 split (X.690 8.19.4), as attribute types
# a name prints in dotted form; cryptography prints the same.
@pytest.mark.parametrize(
    ("content_hex", "dotted"),
    [
        ("00", "0.0"),
        ("27", "0.39"),
        ("28", "1.0"),
        ("4f", "1.39"),
        ("50", "2.0"),
        ("7f", "2.47"),
        ("8100", "2.48"),
        ("8837", "2.999"),
        ("2a864886f70d", "1.2.840.113549"),
    ],
)
def test_unknown_attribute_types_print_as_dotted_oids(content_hex: str, dotted: str) -> None:
    der = certificate(subject=name([(content_hex, 0x0C, b"v")]))
    (got,) = scan(der)["certificates"]
    assert got["subject"] == _crypto_subject(der) == f"{dotted}=v"


# Values that need RFC 4514 escaping, and the text both readers print for them.
@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("plain", "plain"),
        ("", ""),
        ("#x", "\\#x"),
        ("#", "\\#"),
        (" x", "\\ x"),
        ("x ", "x\\ "),
        ("abc ", "abc\\ "),
        ("# b", "\\# b"),
        ("  ", "\\ \\ "),
        (" ", "\\ "),  # one space: escaped once, as leading and trailing at the same time
        ("a\\b", "a\\\\b"),
        ('a,b+c"d<e>f;g', 'a\\,b\\+c\\"d\\<e\\>f\\;g'),
        ("a\0b", "a\\00b"),
        ("X,Y", "X\\,Y"),
        ("a b,", "a b\\,"),
        ("x#y z", "x#y z"),
        ("ü,é", "ü\\,é"),
    ],
)
def test_name_values_are_escaped_like_cryptography(value: str, printed: str) -> None:
    der = certificate(subject=cn(value))
    (got,) = scan(der)["certificates"]
    assert got["subject"] == "CN=" + printed
    if value:  # cryptography warns on an empty CN but prints it the same
        assert got["subject"] == _crypto_subject(der)
