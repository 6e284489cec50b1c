"""Hand-built DER for the reader's edge cases: a minimal certificate whose every field can be
replaced, so a test can make exactly one thing wrong (or one length sit on a boundary).

Not a test module. The encoder is written out here (lengths in short or long form,
minimal, as DER wants) so the tests do not depend on the reader they check. The signature
and the public key are filler: the reader never verifies a single certificate.
"""

from __future__ import annotations

import base64


def length_octets(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def tlv(tag: int, content: bytes = b"") -> bytes:
    return bytes([tag]) + length_octets(len(content)) + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def oid(content_hex: str) -> bytes:
    return tlv(0x06, bytes.fromhex(content_hex))


OID_CN = "550403"
OID_O = "55040a"
ECDSA_SHA256 = seq(oid("2a8648ce3d040302"))
SPKI = seq(seq(oid("2a8648ce3d0201"), oid("2a8648ce3d030107")), tlv(0x03, b"\x00\x04" + bytes(64)))
SIGNATURE = tlv(0x03, b"\x00" + bytes(range(1, 9)))


def name(*rdns: list[tuple[str, int, bytes]]) -> bytes:
    """Name from RDNs, each a list of (type OID hex, string tag, value octets)."""
    return seq(
        *(
            tlv(0x31, b"".join(seq(oid(kind), tlv(tag, value)) for kind, tag, value in rdn))
            for rdn in rdns
        )
    )


def cn(value: str) -> bytes:
    return name([(OID_CN, 0x0C, value.encode())])


def basic_constraints(*inner: bytes, critical: bool = False) -> bytes:
    flag = tlv(0x01, b"\xff") if critical else b""
    return seq(oid("551d13"), flag, tlv(0x04, seq(*inner)))


CA_TRUE = tlv(0x01, b"\xff")


def extensions(*items: bytes) -> bytes:
    return tlv(0xA3, seq(*items))


def utc(text: str) -> bytes:
    return tlv(0x17, text.encode())


def generalized(text: str) -> bytes:
    return tlv(0x18, text.encode())


_FIELDS = ("version", "serial", "inner_algorithm", "issuer", "validity", "subject", "spki", "extra")


def tbs(**fields: object) -> bytes:
    """TBSCertificate with the given fields replaced (``None`` leaves a field out; ``extra``
    is what follows subjectPublicKeyInfo: unique IDs and extensions)."""
    parts: dict[str, object] = {
        "version": tlv(0xA0, tlv(0x02, b"\x02")),
        "serial": tlv(0x02, b"\x01\x23"),
        "inner_algorithm": ECDSA_SHA256,
        "issuer": cn("Issuer"),
        "validity": seq(utc("200101000000Z"), utc("300101000000Z")),
        "subject": cn("Subject"),
        "spki": SPKI,
        "extra": extensions(basic_constraints(CA_TRUE)),
    }
    unknown = set(fields) - set(_FIELDS)
    assert not unknown, unknown
    parts.update(fields)
    return seq(*(part for part in parts.values() if isinstance(part, bytes)))


def certificate(
    body: bytes | None = None,
    algorithm: bytes = ECDSA_SHA256,
    signature: bytes = SIGNATURE,
    **fields: object,
) -> bytes:
    return seq(body if body is not None else tbs(**fields), algorithm, signature)


def pem(der: bytes, label: str = "CERTIFICATE", *, eol: str = "\n") -> bytes:
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return eol.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()
