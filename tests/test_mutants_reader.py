"""How an upload is recognised, as the user sees it: small crafted files in, the exact
status, format, certificates and error code and text out (the text reaches `ca-watch scan`
and its --json, DESIGN §2-§3). One table kills whole families of mutants in reader.py
(issue 16): the sniffing of PEM, DER, base64, UTF-8/UTF-16 text, PKCS#7/PKCS#12 and key
material, and every refusal's wording. Equivalent survivors: tests/MUTANTS.md.
"""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime
from typing import NamedTuple

import pytest
from analyzer_samples import pca, tenant
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from shared.analysis import reader
from shared.analysis.der import children, element_bytes, read_tlv
from shared.analysis.reader import ErrorCode, Status, read_certificates
from shared.local.samples import encode, pem

_DAMAGED = "the DER is damaged: "  # then der.py's own words (tested with der.py)
_BINARY = "not a certificate: neither PEM text nor DER (which starts with 0x30)"
_TEXT = (
    "text without a PEM block or base64 certificate; "
    "export the certificate as PEM (.pem) or DER (.cer)"
)
_NOT_BASE64 = "text that is neither PEM nor valid base64"
_NOT_DER_BASE64 = "base64 text that does not decode to DER"
_OTHER_DER = "DER data that is not a certificate"
_KEY = "the file is a private key (DER); it was not stored. Upload the certificate only"
_BER = "BER data that is not PKCS#7 or PKCS#12"
_CRL = "the file holds a certificate revocation list (DER), not a certificate"
_ITSELF = "the file itself"  # a certificate read as it is, for the certificate parser to judge
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")


class Want(NamedTuple):
    """What the reader must say: certificates (by name) and format, or code and text.
    A text ending in "*" is a prefix (the rest is der.py's)."""

    certificates: tuple[str, ...] = ()
    format: str = ""
    code: ErrorCode | None = None
    message: str = ""


def _seq(*parts: bytes) -> bytes:
    return encode(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return encode(0x02, bytes([value]))


def _octets(content: bytes = b"k") -> bytes:
    return encode(0x04, content)


def _elements(der: bytes) -> tuple[list[bytes], list[bytes]]:
    """(the signed body's fields, the outer elements) of a SIGNED{...} as bytes."""
    top = read_tlv(der, 0, len(der))
    outer = children(der, top)
    body = [element_bytes(der, field) for field in children(der, outer[0])]
    return body, [element_bytes(der, part) for part in outer]


def _resigned(der: bytes, keep: slice) -> bytes:
    """``der`` with only ``keep`` of its signed body's fields (the signature is not
    checked by the reader)."""
    body, outer = _elements(der)
    return _seq(_seq(*body[keep]), *outer[1:])


def _crl() -> bytes:
    issuer = pca()
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(datetime(2020, 1, 1, tzinfo=UTC))
        .next_update(datetime(2020, 2, 1, tzinfo=UTC))
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(issuer.key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def _csr() -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(tenant().key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def _pkcs12_ber() -> bytes:
    """A PKCS#12 whose outer SEQUENCE has an indefinite length, as some tools write it."""
    der = pkcs12.serialize_key_and_certificates(
        None, None, tenant().certificate, None, NoEncryption()
    )
    top = read_tlv(der, 0, len(der))
    return b"\x30\x80" + der[top[1] : top[2]] + b"\x00\x00"


@functools.cache
def _table() -> dict[str, tuple[bytes, Want]]:
    der = tenant().der
    b64 = base64.b64encode(der)
    wrapped = b"\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + b"\n"
    tenant_pem = tenant().pem
    crl, csr = _crl(), _csr()
    crl_body, _ = _elements(crl)
    ok = Want(("tenant",), "der")
    rows: dict[str, tuple[bytes, Want]] = {
        # Nothing in it
        "empty": (b"", Want(code=ErrorCode.EMPTY, message="the file is empty")),
        "blanks and NULs": (
            b" \r\n\t\x00",
            Want(code=ErrorCode.EMPTY, message="the file is empty"),
        ),
        "a UTF-8 BOM only": (
            b"\xef\xbb\xbf\n",
            Want(code=ErrorCode.EMPTY, message="the file is empty"),
        ),
        "a UTF-16 BOM only": (b"\xff\xfe", Want(code=ErrorCode.EMPTY, message="the file is empty")),
        # Text
        "a few letters": (b"XX\n", Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_BASE64)),
        "a sentence": (b"hello, world!\n", Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_TEXT)),
        "text with a tab": (b"not\ta cert!", Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_TEXT)),
        "text with DEL": (b"hello\x7f", Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY)),
        "base64 on one line": (b64, Want(("tenant",), "base64-der")),
        "base64 in 76 columns": (wrapped, Want(("tenant",), "base64-der")),
        "base64 indented by tabs": (
            b"\t" + wrapped.replace(b"\n", b"\n\t"),
            Want(("tenant",), "base64-der"),
        ),
        "base64 after a UTF-8 BOM": (b"\xef\xbb\xbf" + b64, Want(("tenant",), "base64-der")),
        "base64 badly padded": (
            b"abc",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_BASE64),
        ),
        "base64 padded mid-way": (
            b"QQ==QQ==",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_BASE64),
        ),
        "base64 of zeros": (
            b"AAAA",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_DER_BASE64),
        ),
        # PEM
        "PEM, one certificate": (tenant_pem, Want(("tenant",), "pem")),
        "PEM, two certificates": (tenant_pem + pca().pem, Want(("tenant", "pca"), "pem")),
        "PEM then a terminal colour code": (tenant_pem + b"\x1b[0m\n", Want(("tenant",), "pem")),
        "PEM with a stray END line": (
            tenant_pem + b"-----END CERTIFICATE-----\n",
            Want(("tenant",), "pem"),
        ),
        "PEM whose base64 is broken": (
            b"-----BEGIN CERTIFICATE-----\nMII*\n-----END CERTIFICATE-----\n",
            Want(code=ErrorCode.MALFORMED_PEM, message="PEM block 1 has invalid base64"),
        ),
        "PEM of a CRL": (
            pem(crl, "X509 CRL"),
            Want(
                code=ErrorCode.CRL,
                message="the file holds a certificate revocation list, not a certificate",
            ),
        ),
        "PEM after a UTF-8 preamble": (
            "Zertifikat f\u00fcr Contoso\n".encode() + tenant_pem,
            Want(("tenant",), "pem"),
        ),
        # UTF-16 (PowerShell's `>`), with and without a byte order mark
        "UTF-16 BE PEM": (
            b"\xfe\xff" + tenant_pem.decode().encode("utf-16-be"),
            Want(("tenant",), "pem"),
        ),
        "UTF-16 PEM after a non-ASCII preamble": (
            ("Zertifikat f\u00fcr Contoso\n" + tenant_pem.decode()).encode("utf-16"),
            Want(("tenant",), "pem"),
        ),
        "UTF-16 of odd length": (
            b"\xff\xfeA\x00B",
            Want(
                code=ErrorCode.BAD_TEXT_ENCODING,
                message="UTF-16 text that does not decode; save the file as UTF-8 or ASCII",
            ),
        ),
        "UTF-16 LE 'AB', no BOM": (
            "AB".encode("utf-16-le"),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_BASE64),
        ),
        "UTF-16 BE 'AB', no BOM": (
            "AB".encode("utf-16-be"),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_BASE64),
        ),
        "UTF-16 LE base64 from a '0'": (
            "0AAA".encode("utf-16-le"),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_NOT_DER_BASE64),
        ),
        # A first byte 0x30 ("0") means DER, also for UTF-16 text that is not base64
        "UTF-16 LE text from a '0'": (
            "0 hello!".encode("utf-16-le"),
            Want(code=ErrorCode.MALFORMED_DER, message="14 unexpected bytes after the DER"),
        ),
        "a lone 0x30": (b"\x30", Want(code=ErrorCode.TRUNCATED, message=_DAMAGED + "*")),
        # Binary that is not DER
        "three odd bytes": (
            b"\x01\x02\xff",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY),
        ),
        "four odd bytes ending NUL": (
            b"\x01\x02\x03\x00",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY),
        ),
        "NUL NUL A NUL": (
            b"\x00\x00A\x00",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY),
        ),
        "NUL NUL NUL A": (
            b"\x00\x00\x00A",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY),
        ),
        "binary after a UTF-8 BOM": (
            b"\xef\xbb\xbf\x01\x02",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY),
        ),
        "'0abc' after a UTF-8 BOM": (
            b"\xef\xbb\xbf0abc",
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_BINARY),
        ),
        # DER that is a certificate, or left to the certificate parser to judge
        "DER certificate": (der, ok),
        "DER certificate without its version (v1)": (
            _resigned(der, slice(1, None)),
            Want((_ITSELF,), "der"),
        ),
        "DER signed body of three fields": (
            _seq(_seq(_int(1), _seq(), _seq()), _seq(), encode(0x03, b"\x00")),
            Want((_ITSELF,), "der"),
        ),
        "DER signed body that is damaged": (
            _seq(b"\x30\x03\x02\x05\x01", _seq(), encode(0x03, b"\x00")),
            Want((_ITSELF,), "der"),
        ),
        "DER certificate with a fourth element": (
            _seq(*_elements(der)[1], b"\x05\x00"),
            Want((_ITSELF,), "der"),
        ),
        # DER that is something else
        "DER CSR": (
            csr,
            Want(
                code=ErrorCode.CERTIFICATE_REQUEST,
                message="the file holds a certificate signing request (DER), not a certificate",
            ),
        ),
        "DER CRL": (crl, Want(code=ErrorCode.CRL, message=_CRL)),
        "DER CRL v1 (no version)": (
            _resigned(crl, slice(1, None)),
            Want(code=ErrorCode.CRL, message=_CRL),
        ),
        "DER CRL with thisUpdate only": (
            _seq(_seq(*crl_body[:4]), *_elements(crl)[1][1:]),
            Want(code=ErrorCode.CRL, message=_CRL),
        ),
        "DER SEQUENCE of one INTEGER": (
            _seq(_int(5)),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_OTHER_DER),
        ),
        "DER version 0 without key octets": (
            _seq(_int(0), _seq()),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_OTHER_DER),
        ),
        "DER version 2 with octets": (
            _seq(_int(2), _seq(), _octets()),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_OTHER_DER),
        ),
        "DER INTEGER 1, INTEGER": (
            _seq(_int(1), _int(5)),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_OTHER_DER),
        ),
        "DER INTEGER 2, octets": (
            _seq(_int(2), _octets()),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_OTHER_DER),
        ),
        "DER eight INTEGERs": (
            _seq(*map(_int, range(8))),
            Want(code=ErrorCode.NOT_A_CERTIFICATE, message=_OTHER_DER),
        ),
        "DER 2 trailing bytes": (
            _seq(_int(5)) + b"\x05\x00",
            Want(code=ErrorCode.MALFORMED_DER, message="2 unexpected bytes after the DER"),
        ),
        "DER length not minimal": (
            b"\x30\x81\x03" + _int(5),
            Want(code=ErrorCode.MALFORMED_DER, message=_DAMAGED + "*"),
        ),
        "DER inner length not minimal": (
            b"\x30\x05\x02\x81\x01\x05\x00",
            Want(code=ErrorCode.MALFORMED_DER, message=_DAMAGED + "*"),
        ),
        "DER inner element truncated": (
            b"\x30\x03\x02\x05\x01",
            Want(code=ErrorCode.TRUNCATED, message=_DAMAGED + "*"),
        ),
        # Private keys (never stored)
        "PKCS#8 key v1": (
            _seq(_int(0), _seq(), _octets()),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        "PKCS#8 key v2 (OneAsymmetricKey)": (
            _seq(_int(1), _seq(), _octets()),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        "PKCS#8 encrypted key": (
            _seq(_seq(), _octets()),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        "an encrypted key with more after it": (
            _seq(_seq(), _octets(), _int(1)),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        "SEC1 EC key": (
            _seq(_int(1), _octets()),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        "PKCS#1 RSA key": (
            _seq(*map(_int, range(9))),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        "nine INTEGERs, then octets": (
            _seq(*map(_int, range(9)), _octets()),
            Want(code=ErrorCode.PRIVATE_KEY_MATERIAL, message=_KEY),
        ),
        # PKCS#7 / PKCS#12, DER and BER
        "PKCS#7 DER": (
            pkcs7.serialize_certificates([tenant().certificate], Encoding.DER),
            Want(("tenant",), "pkcs7-der"),
        ),
        "PKCS#12 BER": (_pkcs12_ber(), Want(("tenant",), "pkcs12")),
        "BER of a NULL": (
            b"\x30\x80\x05\x00\x00\x00",
            Want(code=ErrorCode.MALFORMED_DER, message=_BER),
        ),
        "BER of an OID that is not PKCS#7": (
            b"\x30\x80\x06\x01\x00\x00\x00",
            Want(code=ErrorCode.MALFORMED_DER, message=_BER),
        ),
        "DER holding BER after an OID": (
            b"\x30\x07\x06\x01\x00\x30\x80\x00\x00",
            Want(code=ErrorCode.MALFORMED_DER, message=_BER),
        ),
        "DER holding BER after INTEGER 3": (
            b"\x30\x07\x02\x01\x03\x30\x80\x00\x00",
            Want(code=ErrorCode.MALFORMED_DER, message=_BER),
        ),
        "DER holding BER after the PKCS#7 OID": (
            b"\x30\x0f" + _OID_SIGNED_DATA + b"\xa0\x80\x00\x00",
            Want(code=ErrorCode.MALFORMED_DER, message=_BER),
        ),
    }
    return rows


@pytest.mark.parametrize("name", list(_table()))
def test_each_crafted_upload_gets_its_exact_verdict(name: str) -> None:
    data, want = _table()[name]
    result = read_certificates(data)
    if want.code is None:
        assert result.error is None, result.error
        assert result.status is Status.ANALYZED
        assert result.format == want.format
        named = {"tenant": tenant().der, "pca": pca().der, _ITSELF: data}
        assert result.certificates == tuple(named[n] for n in want.certificates)
        return
    assert result.error is not None, result.format
    assert result.certificates == () and result.format == ""
    assert result.error.code is want.code
    assert result.status is (
        Status.REJECTED if want.code is ErrorCode.PRIVATE_KEY_MATERIAL else Status.UNREADABLE
    )
    if want.message.endswith("*"):
        assert result.error.message.startswith(want.message[:-1]), result.error.message
    else:
        assert result.error.message == want.message


def test_a_file_over_the_limit_says_its_size_and_the_limit() -> None:
    result = read_certificates(b"x" * 11, max_bytes=10)
    assert result.status is Status.REJECTED and result.error is not None
    assert result.error.code is ErrorCode.TOO_LARGE
    assert result.error.message == (
        "11 bytes is over the 10-byte limit (MAX_UPLOAD_BYTES); "
        "upload certificates only, or split the bundle"
    )
    at_limit = read_certificates(tenant().pem, max_bytes=len(tenant().pem))
    assert at_limit.status is Status.ANALYZED


def test_a_failure_inside_a_library_is_a_plain_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never raises: a bug below the reader is an unreadable file with a plain reason."""

    def broken(_: bytes) -> None:
        raise RuntimeError("library bug with file content")

    monkeypatch.setattr(reader, "read_pem", broken)
    result = read_certificates(b"preamble\n" + tenant().pem)
    assert result.status is Status.UNREADABLE and result.error is not None
    assert result.error.code is ErrorCode.NOT_A_CERTIFICATE
    assert result.error.message == "the file could not be parsed"
