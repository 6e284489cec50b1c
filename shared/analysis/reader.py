"""Read an uploaded file into DER certificates, or refuse it with a reason.

Handles PEM (bundles, ``openssl x509 -text`` preambles, CRLF, UTF-8 BOM, UTF-16 from a
PowerShell redirect), DER ``.cer``/``.crt``, bare base64 (the Azure Sphere REST API),
PKCS#7 (DER, PEM, BER) and PKCS#12 without a password. Private key material is refused
as ``private-key-material`` and its bytes never reach a result, a log or an exception
message: errors carry only fixed texts and counts. Pure: bytes in, a value out.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from enum import StrEnum
from typing import NamedTuple

from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from shared.analysis.der import (
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    DerError,
    children,
    decode_oid,
    element_bytes,
    read_tlv,
)

DEFAULT_MAX_UPLOAD_BYTES = 1_048_576


class Status(StrEnum):
    ANALYZED = "analyzed"
    UNREADABLE = "unreadable"  # not a certificate format, truncated, malformed
    REJECTED = "rejected"  # refused on purpose: too large, key material, password


class ErrorCode(StrEnum):
    TOO_LARGE = "too-large"
    PRIVATE_KEY_MATERIAL = "private-key-material"
    PASSWORD_PROTECTED = "password-protected"  # noqa: S105 - an error code, not a password
    EMPTY = "empty"
    NOT_A_CERTIFICATE = "not-a-certificate"
    BAD_TEXT_ENCODING = "bad-text-encoding"
    MALFORMED_PEM = "malformed-pem"
    MALFORMED_DER = "malformed-der"
    TRUNCATED = "truncated"
    MALFORMED_CERTIFICATE = "malformed-certificate"
    MALFORMED_PKCS7 = "malformed-pkcs7"
    MALFORMED_PKCS12 = "malformed-pkcs12"
    NO_CERTIFICATES = "no-certificates"
    CERTIFICATE_REQUEST = "certificate-request"
    CRL = "crl"
    PUBLIC_KEY_ONLY = "public-key-only"
    UNSUPPORTED_PEM_BLOCK = "unsupported-pem-block"
    UNSUPPORTED_ENCODING = "unsupported-encoding"


REJECTING_CODES = frozenset(
    {ErrorCode.TOO_LARGE, ErrorCode.PRIVATE_KEY_MATERIAL, ErrorCode.PASSWORD_PROTECTED}
)


class ReadError(Exception):
    """A file we refuse; ``message`` is safe to log (no file content in it)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> Status:
        return Status.REJECTED if self.code in REJECTING_CODES else Status.UNREADABLE


class ReadResult(NamedTuple):
    """The certificates of one file, in file order, or why there are none. (Immutable; a
    NamedTuple because one is built per upload on the hot path.)"""

    certificates: tuple[bytes, ...] = ()
    format: str = ""  # "pem", "der", "base64", "pkcs7-der", "pkcs7-pem", "pkcs12", ...
    error: ReadError | None = None

    @property
    def status(self) -> Status:
        return self.error.status if self.error else Status.ANALYZED


def too_large(size: int, limit: int) -> ReadResult:
    """The refusal for a file over the limit, made without reading it."""
    return ReadResult(
        error=ReadError(
            ErrorCode.TOO_LARGE,
            f"{size} bytes is over the {limit}-byte limit (MAX_UPLOAD_BYTES); "
            "upload certificates only, or split the bundle",
        )
    )


# --- PEM ---------------------------------------------------------------------------
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #/]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #/]+)-----")
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"})
_KEY_LABEL = re.compile(rb"PRIVATE KEY|ENCRYPTED PRIVATE KEY")
_OTHER_LABELS: dict[bytes, tuple[ErrorCode, str]] = {
    b"CERTIFICATE REQUEST": (ErrorCode.CERTIFICATE_REQUEST, "a certificate signing request"),
    b"NEW CERTIFICATE REQUEST": (ErrorCode.CERTIFICATE_REQUEST, "a certificate signing request"),
    b"X509 CRL": (ErrorCode.CRL, "a certificate revocation list"),
    b"PUBLIC KEY": (ErrorCode.PUBLIC_KEY_ONLY, "a public key without a certificate"),
    b"RSA PUBLIC KEY": (ErrorCode.PUBLIC_KEY_ONLY, "a public key without a certificate"),
}
_WHITESPACE = b" \t\r\n\x0b\x0c"  # what bytes.split() splits on
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
_PEM_HEADER_LINE = re.compile(rb"^[A-Za-z-]+:.*$", re.MULTILINE)

# OIDs that say what a DER SEQUENCE holds.
_OID_PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_PKCS7_DATA = "1.2.840.113549.1.7.1"


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
    Same result as ``_read_pem``: the only BEGIN is this one, so no other block, no key
    and no missing END can exist."""
    if not data.startswith(_CERT_BEGIN) or data.count(b"-----BEGIN ") != 1:
        return None
    end = data.find(_CERT_END, len(_CERT_BEGIN))
    if end < 0:
        return None  # let the general path report the truncation
    return ReadResult((_pem_body(data[len(_CERT_BEGIN) : end], 1),), "pem")


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
            return _read_pem(text)
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


def _pem_blocks(text: bytes) -> list[tuple[bytes, bytes]]:
    """(label, body) of each BEGIN..END pair: what ``_PEM_BLOCK.findall`` finds, in a
    third of the time (a regex with a back-reference is slow on the hot path)."""
    blocks: list[tuple[bytes, bytes]] = []
    pos = 0
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        label = begin.group(1)
        end = text.find(b"-----END " + label + b"-----", begin.end())
        if end < 0:
            pos = begin.start() + 1  # no END for this one: look for the next BEGIN
            continue
        blocks.append((label, text[begin.end() : end]))
        pos = end + len(label) + 14  # past "-----END <label>-----"
    return blocks


def _read_pem(text: bytes) -> ReadResult:
    blocks = _pem_blocks(text)
    # Every block has a BEGIN: when the counts agree, no BEGIN lacks its END.
    begins = (
        [label for label, _ in blocks]
        if text.count(b"-----BEGIN ") == len(blocks)
        else _PEM_BEGIN.findall(text)
    )
    # A key anywhere refuses the whole file, before anything else is decoded.
    if b"PRIVATE KEY" in text and any(_KEY_LABEL.search(label) for label in begins):
        raise ReadError(
            ErrorCode.PRIVATE_KEY_MATERIAL,
            "the file holds a private key; it was not stored. Upload only the "
            "certificate (e.g. `openssl x509 -in FILE -out cert.pem`) and keep the key secret",
        )
    if len(blocks) < len(begins):
        raise ReadError(
            ErrorCode.TRUNCATED,
            f"{len(begins) - len(blocks)} PEM block(s) have no matching END line",
        )
    certificates: list[bytes] = []
    kinds: set[str] = set()
    refusals: list[tuple[ErrorCode, str]] = []
    for index, (label, body) in enumerate(blocks, start=1):
        if label in _CERT_LABELS:
            der = _pem_body(body, index)
            if label == b"TRUSTED CERTIFICATE":
                der = _leading_element(der, index)  # OpenSSL appends trust settings
            certificates.append(der)
            kinds.add("pem")
        elif label in _PKCS7_LABELS:
            certificates.extend(_read_pkcs7(_pem_body(body, index)))
            kinds.add("pkcs7-pem")
        elif label in _OTHER_LABELS:
            refusals.append(_OTHER_LABELS[label])
        else:
            refusals.append(
                (
                    ErrorCode.UNSUPPORTED_PEM_BLOCK,
                    f"a PEM block of type {label.decode('ascii', 'replace')!r}",
                )
            )
    if not certificates:
        code, what = refusals[0] if refusals else (ErrorCode.NO_CERTIFICATES, "no certificate")
        raise ReadError(code, f"the file holds {what}, not a certificate")
    return ReadResult(tuple(certificates), "+".join(sorted(kinds)))


def _pem_body(body: bytes, index: int) -> bytes:
    if b":" in body:  # RFC 1421 headers (Proc-Type: ...), rare
        body = _PEM_HEADER_LINE.sub(b"", body)
    try:
        # Strict: any character outside the alphabet, or misplaced padding, is an error.
        return binascii.a2b_base64(body.translate(None, _WHITESPACE), strict_mode=True)
    except binascii.Error:
        raise ReadError(ErrorCode.MALFORMED_PEM, f"PEM block {index} has invalid base64") from None


def _leading_element(der: bytes, index: int) -> bytes:
    try:
        return element_bytes(der, read_tlv(der, 0, len(der)))
    except DerError as exc:
        raise ReadError(ErrorCode.MALFORMED_CERTIFICATE, f"PEM block {index}: {exc}") from None


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
        return ReadResult(tuple(_read_pkcs7(data)), "pkcs7-der")
    if kind == "pkcs12":
        return ReadResult(tuple(_read_pkcs12(data)), "pkcs12")
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
    if top[2] != len(data):
        raise ReadError(
            ErrorCode.MALFORMED_DER, f"{len(data) - top[2]} unexpected bytes after the DER"
        )
    tags = [part[0] for part in parts]
    if tags[:3] == [TAG_SEQUENCE, TAG_SEQUENCE, 0x03]:
        # Certificates, CSRs and CRLs are all SIGNED{...}: tell them apart by the body.
        return _signed_kind(data, parts[0])
    if tags[:1] == [TAG_OID]:
        oid = decode_oid(data[parts[0][1] : parts[0][2]])
        if oid == _OID_PKCS7_SIGNED_DATA:
            return "pkcs7"
        return "other"
    if tags[:2] == [TAG_INTEGER, TAG_SEQUENCE]:
        version = data[parts[0][1] : parts[0][2]]
        if version == b"\x03":
            return "pkcs12"
        if version in (b"\x00", b"\x01") and TAG_OCTET_STRING in tags:
            return "private-key"  # PKCS#8 PrivateKeyInfo / OneAsymmetricKey
    if tags[:2] == [TAG_SEQUENCE, TAG_OCTET_STRING]:
        return "private-key"  # PKCS#8 EncryptedPrivateKeyInfo
    if tags[:2] == [TAG_INTEGER, TAG_OCTET_STRING] and data[parts[0][1] : parts[0][2]] == b"\x01":
        return "private-key"  # SEC1 ECPrivateKey
    if len(tags) >= 9 and all(tag == TAG_INTEGER for tag in tags[:9]):
        return "private-key"  # PKCS#1 RSAPrivateKey
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


def _read_pkcs7(data: bytes) -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        with warnings.catch_warnings():
            # cryptography warns when it falls back from DER to BER (crl2pkcs7 output).
            warnings.simplefilter("ignore")
            certs = pkcs7.load_der_pkcs7_certificates(data)
    except ValueError as exc:
        if "no certificate" in str(exc):  # a valid SignedData without certificates
            raise ReadError(
                ErrorCode.NO_CERTIFICATES, "the PKCS#7 file holds no certificate"
            ) from None
        raise ReadError(
            ErrorCode.MALFORMED_PKCS7, "the PKCS#7 structure could not be read"
        ) from None
    if not certs:
        raise ReadError(ErrorCode.NO_CERTIFICATES, "the PKCS#7 file holds no certificate")
    return [cert.public_bytes(Encoding.DER) for cert in certs]


def _read_pkcs12(data: bytes) -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding

    loaded = None
    for password in (None, b""):
        try:
            loaded = pkcs12.load_pkcs12(data, password)
            break
        except ValueError:
            continue
        except TypeError:
            continue
    if loaded is None:
        if _looks_like_pkcs12_with_mac(data):
            raise ReadError(
                ErrorCode.PASSWORD_PROTECTED,
                "the PKCS#12 file is protected by a password; export the certificate "
                "without its key (e.g. `openssl pkcs12 -in FILE -nokeys -out cert.pem`)",
            )
        raise ReadError(ErrorCode.MALFORMED_PKCS12, "the PKCS#12 structure could not be read")
    if loaded.key is not None:
        raise ReadError(
            ErrorCode.PRIVATE_KEY_MATERIAL,
            "the PKCS#12 file holds a private key; it was not stored. "
            "Export the certificate only (`openssl pkcs12 -in FILE -nokeys`)",
        )
    certs = ([loaded.cert] if loaded.cert else []) + list(loaded.additional_certs)
    if not certs:
        raise ReadError(ErrorCode.NO_CERTIFICATES, "the PKCS#12 file holds no certificate")
    return [cert.certificate.public_bytes(Encoding.DER) for cert in certs]


def _looks_like_pkcs12_with_mac(data: bytes) -> bool:
    try:
        top = read_tlv(data, 0, len(data))
        parts = children(data, top)
    except DerError:
        return data[:5] == b"\x30\x80\x02\x01\x03"
    return len(parts) == 3 and parts[2][0] == TAG_SEQUENCE
