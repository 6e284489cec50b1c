"""Read an uploaded file into DER certificates, or refuse it with a reason.

Handles PEM (bundles, ``openssl x509 -text`` preambles, CRLF, UTF-8 BOM, UTF-16 from a
PowerShell redirect), DER ``.cer``/``.crt``, bare base64 (the Azure Sphere REST API),
PKCS#7 (DER, PEM, BER) and PKCS#12 without a password. Private key material is refused
as ``private-key-material`` and its bytes never reach a result, a log or an exception
message: errors carry only fixed texts and counts. Pure: bytes in, a value out.

This module tells formats apart and reads single certificates (the hot path); ``pem``
reads PEM text, and ``pkcs7`` / ``pkcs12`` (imported only when such a file comes) walk the
wrappers certificate by certificate, each with a bound on its work per file.
"""

from __future__ import annotations

import base64
import binascii
import re

from shared.analysis.der import (
    TAG_INTEGER,
    TAG_OID,
    TAG_SEQUENCE,
    DerError,
    children,
    decode_oid,
    read_tlv,
)
from shared.analysis.keys import der_key_form
from shared.analysis.pem import pem_body, read_pem
from shared.analysis.read_result import (
    DEFAULT_MAX_UPLOAD_BYTES,
    REJECTING_CODES,
    ErrorCode,
    ReadError,
    ReadResult,
    Status,
    too_large,
)

__all__ = [  # the reader's public face; the values live in read_result
    "DEFAULT_MAX_UPLOAD_BYTES",
    "REJECTING_CODES",
    "ErrorCode",
    "ReadError",
    "ReadResult",
    "Status",
    "read_certificates",
    "too_large",
]

_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")

# OIDs that say what a DER SEQUENCE holds.
_OID_PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"


def read_certificates(data: bytes, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> ReadResult:
    """Every certificate in ``data``; never raises for any input."""
    if len(data) > max_bytes:
        return too_large(len(data), max_bytes)
    try:
        return _read(data)
    except ReadError as error:
        return ReadResult(error=error)
    except Exception:  # a library bug must not take the pipeline down; say so plainly
        return ReadResult(
            error=ReadError(ErrorCode.NOT_A_CERTIFICATE, "the file could not be parsed")
        )


_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"
_CERT_END = b"-----END CERTIFICATE-----"


def _read_single_pem(data: bytes) -> ReadResult | None:
    """The common upload, one ``CERTIFICATE`` block at the very start, read without the
    general PEM machinery; None when the file is anything else (the general path runs).
    Same result as ``read_pem``: the only BEGIN is this one, so no other block, no key
    and no missing END can exist."""
    if not data.startswith(_CERT_BEGIN) or data.count(b"-----BEGIN ") != 1:
        return None
    end = data.find(_CERT_END, len(_CERT_BEGIN))
    if end < 0:
        return None  # let the general path report the truncation
    return ReadResult((pem_body(data[len(_CERT_BEGIN) : end], 1),), "pem")


def _read(data: bytes) -> ReadResult:
    if (single := _read_single_pem(data)) is not None:
        return single
    if data[:1] == b"\x30" and data[1:2] != b"\x00":
        # DER (a SEQUENCE with a length): no text form starts so, not even UTF-16 ("0\0").
        return _read_der(data)
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise ReadError(ErrorCode.EMPTY, "the file is empty")
    text = _as_ascii_text(data)
    if text is not None:
        if b"-----BEGIN " in text:
            return read_pem(text)
        compact = b"".join(text.split())
        if compact and _BASE64_TEXT.match(compact):
            try:
                der = base64.b64decode(compact, validate=True)
            except binascii.Error:
                raise ReadError(
                    ErrorCode.NOT_A_CERTIFICATE,
                    "text that is neither PEM nor valid base64",
                ) from None
            if der[:1] != b"\x30":
                raise ReadError(
                    ErrorCode.NOT_A_CERTIFICATE, "base64 text that does not decode to DER"
                )
            result = _read_der(der)
            return ReadResult(result.certificates, "base64-" + result.format)
        if data[:1] != b"\x30":
            raise ReadError(
                ErrorCode.NOT_A_CERTIFICATE,
                "text without a PEM block or base64 certificate; "
                "export the certificate as PEM (.pem) or DER (.cer)",
            )
    return _read_der(data)


def _as_ascii_text(data: bytes) -> bytes | None:
    """The file as ASCII text when it is text (UTF-8 with or without BOM, or UTF-16 as a
    PowerShell ``>`` redirect writes it); None for binary."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        codec = "utf-16-le"  # UTF-16 without a BOM
    elif len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] != 0:
        codec = "utf-16-be"
    elif data.startswith(b"\xef\xbb\xbf"):
        return data[3:] if _is_text(data[3:]) else None
    else:
        return data if _is_text(data) else None
    try:
        decoded = data.decode(codec)
    except UnicodeDecodeError:
        raise ReadError(
            ErrorCode.BAD_TEXT_ENCODING,
            "UTF-16 text that does not decode; save the file as UTF-8 or ASCII",
        ) from None
    return decoded.encode("ascii", "replace")


def _is_text(data: bytes) -> bool:
    if data[:1] == b"\x30":
        return False  # DER always starts with SEQUENCE; a text file never does
    return b"-----BEGIN " in data or all(
        32 <= byte < 127 or byte in (9, 10, 13) for byte in data[:512]
    )


# --- Binary ------------------------------------------------------------------------
def _read_der(data: bytes) -> ReadResult:
    if data[:1] != b"\x30":
        raise ReadError(
            ErrorCode.NOT_A_CERTIFICATE,
            "not a certificate: neither PEM text nor DER (which starts with 0x30)",
        )
    kind = _der_kind(data)
    if kind == "certificate":
        return ReadResult((data,), "der")
    if kind == "pkcs7":
        from shared.analysis.pkcs7 import read_pkcs7  # lazy: rare, keeps the hot path lean

        return ReadResult(tuple(read_pkcs7(data)), "pkcs7-der")
    if kind == "pkcs12":
        from shared.analysis.pkcs12 import read_pkcs12  # lazy, as above

        return ReadResult(tuple(read_pkcs12(data)), "pkcs12")
    if kind == "private-key":
        raise ReadError(
            ErrorCode.PRIVATE_KEY_MATERIAL,
            "the file is a private key (DER); it was not stored. Upload the certificate only",
        )
    raise ReadError(ErrorCode.NOT_A_CERTIFICATE, "DER data that is not a certificate")


def _der_kind(data: bytes) -> str:
    """What a DER/BER SEQUENCE holds, from its first elements."""
    try:
        top = read_tlv(data, 0, len(data))
    except DerError as exc:
        if "indefinite length" in str(exc):
            return _ber_kind(data)
        code = ErrorCode.TRUNCATED if "truncated" in str(exc) else ErrorCode.MALFORMED_DER
        raise ReadError(code, f"the DER is damaged: {exc}") from None
    try:
        parts = children(data, top)
    except DerError as exc:
        if "indefinite length" in str(exc):
            return _ber_kind(data)
        code = ErrorCode.TRUNCATED if "truncated" in str(exc) else ErrorCode.MALFORMED_DER
        raise ReadError(code, f"the DER is damaged: {exc}") from None
    tags = [part[0] for part in parts]
    signed = tags[:3] == [TAG_SEQUENCE, TAG_SEQUENCE, 0x03]
    key_form = None if signed else der_key_form(data, top)
    if key_form is not None:  # before the trailing bytes: a key with a newline is a key
        # A PKCS#12 with trailing bytes goes to its reader too: one it cannot read to
        # its end is refused as key material there.
        return "pkcs12" if key_form == "pkcs12" else "private-key"
    if top[2] != len(data):
        raise ReadError(
            ErrorCode.MALFORMED_DER, f"{len(data) - top[2]} unexpected bytes after the DER"
        )
    if signed:
        # Certificates, CSRs and CRLs are all SIGNED{...}: tell them apart by the body.
        return _signed_kind(data, parts[0])
    if tags[:1] == [TAG_OID]:
        oid = decode_oid(data[parts[0][1] : parts[0][2]])
        if oid == _OID_PKCS7_SIGNED_DATA:
            return "pkcs7"
    return "other"


_TIME_TAGS = (0x17, 0x18)  # UTCTime, GeneralizedTime


def _signed_kind(data: bytes, body: tuple[int, int, int]) -> str:
    """ "certificate", or the code of a CSR or CRL, from the signed body's first fields.

    TBSCertificate: [0] version, serial, signature, issuer, validity (a SEQUENCE), ...
    CertificationRequestInfo: version, subject, subjectPKInfo, [0] attributes.
    TBSCertList: version?, signature, issuer, thisUpdate (a time), ...
    """
    try:
        tags = [part[0] for part in children(data, body)]
    except DerError:
        return "certificate"  # damaged: the certificate parser says where
    if tags[:1] == [TAG_INTEGER] and tags[1:4] == [TAG_SEQUENCE, TAG_SEQUENCE, 0xA0]:
        raise ReadError(
            ErrorCode.CERTIFICATE_REQUEST,
            "the file holds a certificate signing request (DER), not a certificate",
        )
    start = 1 if tags[:1] == [TAG_INTEGER] else 0
    if tags[start : start + 2] == [TAG_SEQUENCE, TAG_SEQUENCE] and (
        len(tags) > start + 2 and tags[start + 2] in _TIME_TAGS
    ):
        raise ReadError(
            ErrorCode.CRL, "the file holds a certificate revocation list (DER), not a certificate"
        )
    return "certificate"


def _ber_kind(data: bytes) -> str:
    # BER with indefinite lengths: only PKCS#7 from `openssl crl2pkcs7` and PKCS#12 from
    # some tools come this way. The ContentInfo OID sits right after the header.
    if data[:2] == b"\x30\x80" and data[2:3] == b"\x06":
        try:
            oid_tlv = read_tlv(data, 2, len(data))
        except DerError:
            return "other"
        if decode_oid(data[oid_tlv[1] : oid_tlv[2]]) == _OID_PKCS7_SIGNED_DATA:
            return "pkcs7"
    if data[:2] == b"\x30\x80" and data[2:5] == b"\x02\x01\x03":
        return "pkcs12"
    raise ReadError(ErrorCode.MALFORMED_DER, "BER data that is not PKCS#7 or PKCS#12")
