"""A small, strict DER reader for the few fields ``cryptography`` does not expose.

Why hand-written: ``cryptography`` reports only the outer ``signatureAlgorithm`` and
hides ``TBSCertificate.signature`` (the inner AlgorithmIdentifier), whose byte-for-byte
comparison is the point of this product. It also raises on a whole certificate when one
extension is odd (the real proof-of-possession certificate) while we need only
basicConstraints, and building its ``Name`` objects costs ~10 µs each where the whole
analysis budget is 25 µs. pyasn1/asn1crypto would cost 20-50x more. So this module walks
the DER by hand with plain tuples: every length is checked against its parent,
indefinite and non-minimal lengths are refused, and ``tests/test_der.py`` fuzzes it.
Every failure is a ``DerError``; no other exception escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30
TAG_SET = 0x31
TAG_CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed
TAG_CONTEXT_3 = 0xA3  # [3] EXPLICIT, constructed

OID_BASIC_CONSTRAINTS_CONTENT = b"\x55\x1d\x13"  # 2.5.29.19
_BASIC_CONSTRAINTS_EXTN_ID = b"\x06\x03" + OID_BASIC_CONSTRAINTS_CONTENT
# The tags of serialNumber, issuer, validity, subject and subjectPublicKeyInfo.
_TBS_TAGS = (TAG_INTEGER, TAG_SEQUENCE, TAG_SEQUENCE, TAG_SEQUENCE, TAG_SEQUENCE)

# (tag, content_start, end): a tuple, not an object, because this runs ~40 times per
# certificate on the hot path.
Tlv = tuple[int, int, int]


class DerError(ValueError):
    """The bytes are not the DER structure expected; the message says where."""


def read_tlv(data: bytes, offset: int, limit: int) -> Tlv:
    """Read one tag-length-value at ``offset`` that must end at or before ``limit``."""
    if offset + 2 > limit:
        raise DerError(f"truncated: header at offset {offset} runs past the end")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError(f"unsupported high tag number at offset {offset}")
    length = data[offset + 1]
    pos = offset + 2
    if length < 0x80:  # short form, the common case: no further checks needed
        end = pos + length
        if end > limit:
            raise DerError(
                f"truncated: element at offset {offset} claims {length} bytes, {limit - pos} remain"
            )
        return tag, pos, end
    count = length & 0x7F
    if count == 0:
        raise DerError(f"indefinite length at offset {offset} (BER, not DER)")
    if count > 4:
        raise DerError(f"length of {count} bytes at offset {offset} is too large")
    if pos + count > limit:
        raise DerError(f"truncated: length at offset {offset} runs past the end")
    if data[pos] == 0:
        raise DerError(f"non-minimal length encoding at offset {offset}")
    length = int.from_bytes(data[pos : pos + count], "big")
    if length < 0x80:
        raise DerError(f"non-minimal length encoding at offset {offset}")
    pos += count
    end = pos + length
    if end > limit:
        raise DerError(
            f"truncated: element at offset {offset} claims {length} bytes, {limit - pos} remain"
        )
    return tag, pos, end


def children(data: bytes, parent: Tlv) -> list[Tlv]:
    """The elements directly inside a constructed element, in order."""
    items: list[Tlv] = []
    pos, end = parent[1], parent[2]
    while pos < end:
        # read_tlv inlined for the short form (most elements): this loop is the hot path.
        if pos + 2 <= end and data[pos + 1] < 0x80 and data[pos] & 0x1F != 0x1F:
            item_end = pos + 2 + data[pos + 1]
            if item_end <= end:
                items.append((data[pos], pos + 2, item_end))
                pos = item_end
                continue
        item = read_tlv(data, pos, end)  # long form, or an error with its message
        items.append(item)
        pos = item[2]
    return items


def expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    if tlv[0] != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{tlv[0]:02x}")
    return tlv


def decode_oid(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets."""
    if not content:
        raise DerError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    fresh = True
    for byte in content:
        if fresh and byte == 0x80:
            raise DerError("non-minimal OBJECT IDENTIFIER arc")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    if not fresh:
        raise DerError("truncated OBJECT IDENTIFIER")
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


@dataclass(frozen=True, slots=True)
class AlgorithmIdentifier:
    der: bytes  # the whole SEQUENCE, for the byte-for-byte comparison
    oid: str
    parameters: bytes | None  # DER of the parameters, None when absent


def parse_algorithm_identifier(data: bytes, tlv: Tlv) -> AlgorithmIdentifier:
    expect(tlv, TAG_SEQUENCE, "AlgorithmIdentifier")
    return _algorithm_identifier(element_bytes(data, tlv))


@lru_cache(maxsize=256)  # a handful of distinct algorithms exist; decode each once
def _algorithm_identifier(der: bytes) -> AlgorithmIdentifier:
    outer = read_tlv(der, 0, len(der))
    oid_tlv = expect(read_tlv(der, outer[1], outer[2]), TAG_OID, "AlgorithmIdentifier.algorithm")
    params: bytes | None = None
    if oid_tlv[2] < outer[2]:
        param_tlv = read_tlv(der, oid_tlv[2], outer[2])
        if param_tlv[2] != outer[2]:
            raise DerError("AlgorithmIdentifier holds more than one parameter")
        params = der[oid_tlv[2] : outer[2]]
    return AlgorithmIdentifier(der, decode_oid(der[oid_tlv[1] : oid_tlv[2]]), params)


def _header_length(tlv: Tlv) -> int:
    length = tlv[2] - tlv[1]
    return 2 if length < 0x80 else 2 + (length.bit_length() + 7) // 8


def element_bytes(data: bytes, tlv: Tlv) -> bytes:
    """The whole encoding (tag, length and content) of an element."""
    return data[tlv[1] - _header_length(tlv) : tlv[2]]


class CertificateLayout(NamedTuple):
    """The parts of one X.509 certificate that we read ourselves. A NamedTuple, not a
    frozen dataclass: as immutable, and built in a fifth of the time on the hot path."""

    tbs: bytes  # TBSCertificate DER, what the issuer signed
    inner_algorithm: AlgorithmIdentifier  # TBSCertificate.signature
    outer_algorithm: AlgorithmIdentifier  # Certificate.signatureAlgorithm
    signature: bytes  # BIT STRING content without the unused-bits octet
    serial_number: int
    issuer: Tlv  # the issuer Name SEQUENCE (offsets into the certificate DER)
    not_before: datetime
    not_after: datetime
    subject: Tlv
    spki: bytes  # SubjectPublicKeyInfo DER, loadable with load_der_public_key
    spki_algorithm: AlgorithmIdentifier  # subjectPublicKeyInfo.algorithm
    is_ca: bool | None  # basicConstraints cA; None when the extension is absent


def parse_certificate(data: bytes) -> CertificateLayout:
    """Walk Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }."""
    limit = len(data)
    cert = expect(read_tlv(data, 0, limit), TAG_SEQUENCE, "Certificate")
    if cert[2] != limit:
        raise DerError(f"{limit - cert[2]} bytes after the certificate")
    tbs = expect(read_tlv(data, cert[1], cert[2]), TAG_SEQUENCE, "TBSCertificate")
    outer_tlv = read_tlv(data, tbs[2], cert[2])
    outer = parse_algorithm_identifier(data, outer_tlv)
    bits = expect(read_tlv(data, outer_tlv[2], cert[2]), TAG_BIT_STRING, "signatureValue")
    if bits[2] != cert[2]:
        raise DerError("Certificate has more than 3 elements")
    if bits[2] - bits[1] < 1 or data[bits[1]] != 0:
        raise DerError("signatureValue must be a whole number of octets")

    fields = children(data, tbs)
    index = 1 if fields and fields[0][0] == TAG_CONTEXT_0 else 0  # optional version
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    if len(fields) < index + 6:
        raise DerError("TBSCertificate is missing required fields")
    serial, signature, issuer, validity, subject, spki = fields[index : index + 6]
    # One tuple comparison for the five tags (the common case); expect() names the first
    # wrong one when they differ.
    if (serial[0], issuer[0], validity[0], subject[0], spki[0]) != _TBS_TAGS:
        expect(serial, TAG_INTEGER, "serialNumber")
        expect(issuer, TAG_SEQUENCE, "issuer")
        expect(validity, TAG_SEQUENCE, "validity")
        expect(subject, TAG_SEQUENCE, "subject")
        expect(spki, TAG_SEQUENCE, "subjectPublicKeyInfo")
    if serial[1] == serial[2]:
        raise DerError("serialNumber is empty")
    inner = parse_algorithm_identifier(data, signature)
    times = children(data, validity)
    if len(times) != 2:
        raise DerError("validity must hold notBefore and notAfter")
    spki_algorithm = parse_algorithm_identifier(data, read_tlv(data, spki[1], spki[2]))

    is_ca: bool | None = None
    for field in fields[index + 6 :]:
        if field[0] != TAG_CONTEXT_3:
            continue  # issuerUniqueID / subjectUniqueID
        extensions = expect(read_tlv(data, field[1], field[2]), TAG_SEQUENCE, "Extensions")
        for ext in children(data, extensions):
            if ext[0] != TAG_SEQUENCE:
                expect(ext, TAG_SEQUENCE, "Extension")  # raises with the message
            # Most extensions are not basicConstraints: tell on the first 5 bytes (tag,
            # length 3, 2.5.29.19); the others only need an extnID that fits.
            if data[ext[1] : ext[1] + 5] == _BASIC_CONSTRAINTS_EXTN_ID:
                is_ca = _basic_constraints(data, ext)
            else:
                expect(read_tlv(data, ext[1], ext[2]), TAG_OID, "extnID")
    return CertificateLayout(  # positional, in field order: keywords cost ~0.3 µs more
        element_bytes(data, tbs),  # tbs
        inner,  # inner_algorithm
        outer,  # outer_algorithm
        data[bits[1] + 1 : bits[2]],  # signature
        int.from_bytes(data[serial[1] : serial[2]], "big", signed=True),  # serial_number
        issuer,  # issuer
        parse_time(data, times[0]),  # not_before
        parse_time(data, times[1]),  # not_after
        subject,  # subject
        element_bytes(data, spki),  # spki
        spki_algorithm,  # spki_algorithm
        is_ca,  # is_ca
    )


def parse_time(data: bytes, tlv: Tlv) -> datetime:
    """UTCTime (YYMMDDHHMMSSZ, RFC 5280 years 1950-2049) or GeneralizedTime
    (YYYYMMDDHHMMSSZ), the only forms RFC 5280 allows."""
    text = data[tlv[1] : tlv[2]]
    # The form is checked outside the try: DerError is a ValueError, and "not a valid date"
    # would hide which of the two is wrong.
    if tlv[0] == TAG_UTC_TIME and len(text) == 13 and text[-1:] == b"Z":
        year_digits = 2
    elif tlv[0] == TAG_GENERALIZED_TIME and len(text) == 15 and text[-1:] == b"Z":
        year_digits = 4
    else:
        raise DerError(f"validity time {text!r} is not UTCTime or GeneralizedTime in UTC")
    try:
        if not text[:-1].isdigit():  # also refuses the signs and spaces int() accepts
            raise ValueError
        year = int(text[:year_digits])
        if year_digits == 2:
            year += 1900 if year >= 50 else 2000
        # One int() and divmods: a third of the cost of five int() calls.
        rest_value, second = divmod(int(text[year_digits:-1]), 100)
        rest_value, minute = divmod(rest_value, 100)
        rest_value, hour = divmod(rest_value, 100)
        month, day = divmod(rest_value, 100)
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise DerError(f"validity time {text!r} is not a valid date") from None


def _basic_constraints(data: bytes, ext: Tlv) -> bool:
    """cA of a basicConstraints extension, whose first 5 bytes the caller has matched."""
    parts = children(data, ext)  # also refuses an extnID that runs past the extension
    value = expect(parts[-1], TAG_OCTET_STRING, "extnValue")
    inner = expect(read_tlv(data, value[1], value[2]), TAG_SEQUENCE, "BasicConstraints")
    if inner[2] != value[2]:
        raise DerError("basicConstraints: trailing bytes")
    if inner[1] == inner[2]:
        return False
    first = read_tlv(data, inner[1], inner[2])
    if first[0] != TAG_BOOLEAN:
        return False
    if first[2] - first[1] != 1:
        raise DerError("basicConstraints: cA must be one octet")
    return data[first[1]] != 0


# --- Distinguished names -----------------------------------------------------------
# Short names as RFC 4514 and ``cryptography`` print them; others print as dotted OIDs.
_NAME_ATTRIBUTES: dict[bytes, str] = {
    b"\x55\x04\x03": "CN",
    b"\x55\x04\x06": "C",
    b"\x55\x04\x07": "L",
    b"\x55\x04\x08": "ST",
    b"\x55\x04\x09": "STREET",
    b"\x55\x04\x0a": "O",
    b"\x55\x04\x0b": "OU",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01": "UID",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19": "DC",
}
_STRING_CODECS: dict[int, str] = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x14: "latin-1",  # TeletexString, as most decoders treat it
    0x1A: "ascii",  # VisibleString
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}


_NEEDS_ESCAPE = re.compile(r'[\\,+"<>;\0]|^[# ]| $')


def _escape_rfc4514(value: str) -> str:
    """The escaping of ``cryptography``'s ``rfc4514_string``, so both print the same."""
    if not value or not _NEEDS_ESCAPE.search(value):
        return value
    out = value.replace("\\", "\\\\")
    for char in ',+"<>;':
        out = out.replace(char, "\\" + char)
    out = out.replace("\0", "\\00")
    if out[0] == "#" or (out[0] == " " and len(out) > 1):  # a lone space: escaped once, below
        out = "\\" + out
    if out[-1] == " ":
        out = out[:-1] + "\\ "
    return out


class NameParts(NamedTuple):
    text: str  # "C=US,ST=…,CN=…" in certificate order, values escaped per RFC 4514
    common_name: str | None  # first CN, unescaped
    organization: str | None  # first O, unescaped


def parse_name(data: bytes, name: Tlv) -> NameParts:
    expect(name, TAG_SEQUENCE, "Name")
    return _name(element_bytes(data, name))


@lru_cache(maxsize=4096)  # issuer names repeat across a fleet's certificates
def _name(der: bytes) -> NameParts:
    """Name ::= SEQUENCE OF RDN; RDN ::= SET OF AttributeTypeAndValue."""
    _tag, pos, end = read_tlv(der, 0, len(der))
    rdn_texts: list[str] = []
    common_name = organization = None
    while pos < end:  # children() inlined: a subject name is parsed per certificate
        # read_tlv inlined for the short form (every RDN in practice); else it reads the
        # long form or raises with its message.
        length = der[pos + 1] if pos + 2 <= end else 0x80
        if length < 0x80 and pos + 2 + length <= end:
            tag, start = der[pos], pos + 2
            pos = start + length
        else:
            tag, start, pos = read_tlv(der, pos, end)
        if tag != TAG_SET:
            raise DerError(f"RelativeDistinguishedName: expected tag 0x31, found 0x{tag:02x}")
        text, rdn_cn, rdn_o = _rdn(der[start:pos])
        rdn_texts.append(text)
        if common_name is None:
            common_name = rdn_cn
        if organization is None:
            organization = rdn_o
    return NameParts(",".join(rdn_texts), common_name, organization)


@lru_cache(maxsize=4096)  # C=US, O=Microsoft Corporation, ...: most RDNs repeat, decode once
def _rdn(data: bytes) -> tuple[str, str | None, str | None]:
    """One RDN's SET content -> (its RFC 4514 text, first CN, first O)."""
    parts: list[str] = []
    common_name = organization = None
    pos, end = 0, len(data)
    while pos < end:
        tag, start, pos = read_tlv(data, pos, end)
        # The type is a short OID in practice: checked inline, read_tlv otherwise.
        if start + 2 <= pos and data[start] == TAG_OID and data[start + 1] < 0x80:
            oid_start = start + 2
            oid_end = oid_start + data[start + 1]
            if oid_end > pos:
                read_tlv(data, start, pos)  # raises the truncation with its message
        else:
            _, oid_start, oid_end = expect(read_tlv(data, start, pos), TAG_OID, "AttributeType")
        value_tlv = read_tlv(data, oid_end, pos)
        if tag != TAG_SEQUENCE or value_tlv[2] != pos:
            raise DerError("AttributeTypeAndValue must be { type, value }")
        oid_bytes = data[oid_start:oid_end]
        label = _NAME_ATTRIBUTES.get(oid_bytes) or decode_oid(oid_bytes)
        codec = _STRING_CODECS.get(value_tlv[0])
        if codec is None:  # not a string type: hex of the content, as cryptography does
            parts.append(f"{label}=#{data[value_tlv[1] : value_tlv[2]].hex()}")
            continue
        try:
            value = data[value_tlv[1] : value_tlv[2]].decode(codec)
        except UnicodeDecodeError:
            raise DerError(f"{label} is not valid {codec}") from None
        parts.append(f"{label}={_escape_rfc4514(value)}")
        if label == "CN" and common_name is None:
            common_name = value
        elif label == "O" and organization is None:
            organization = value
    return parts[0] if len(parts) == 1 else "+".join(parts), common_name, organization
