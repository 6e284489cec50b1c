"""PKCS#7 / CMS SignedData (``.p7b``) -> the DER of each certificate it carries. Pure.

Why walked here and not loaded with ``cryptography``: its PKCS#7 loader parses every
certificate and refuses the whole file when one of them is odd, and the odd ones are the
very certificates this product exists to find (a tenant CA whose two AlgorithmIdentifiers
differ only in NULL parameters). So the structure is walked with asn1crypto (a
well-kept ASN.1 library that reads BER: ``openssl crl2pkcs7`` output, indefinite
lengths), and each certificate's bytes are taken from ``certificates [0]`` untouched, to
be analysed on its own: one bad certificate never loses the others.
"""

from __future__ import annotations

from shared.analysis.der import (
    TAG_CONTEXT_0,
    TAG_OID,
    TAG_SEQUENCE,
    DerError,
    children,
    element_bytes,
    read_tlv,
)
from shared.analysis.read_result import ErrorCode, ReadError

_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")


def read_pkcs7(data: bytes) -> list[bytes]:
    """The certificates of a SignedData ContentInfo, in file order."""
    if (found := _read_der(data)) is not None:
        return found
    return _read_with_asn1crypto(data)


def _read_with_asn1crypto(data: bytes) -> list[bytes]:
    """Any BER SignedData; the errors of damaged ones."""
    from asn1crypto import cms  # lazy: BER and damaged files only

    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise ReadError(ErrorCode.MALFORMED_PKCS7, "the PKCS#7 file is not SignedData")
        # Each choice keeps the bytes it was read from: dump() returns them unchanged. An
        # absent ``certificates`` is asn1crypto's Void, which iterates as empty.
        found = [
            choice.chosen.dump()
            for choice in info["content"]["certificates"]
            if choice.name == "certificate"
        ]
    except ReadError:
        raise
    except Exception:  # asn1crypto raises ValueError, TypeError, RecursionError, ...
        raise ReadError(
            ErrorCode.MALFORMED_PKCS7, "the PKCS#7 structure could not be read"
        ) from None
    if not found:
        raise ReadError(ErrorCode.NO_CERTIFICATES, "the PKCS#7 file holds no certificate")
    return found


def _read_der(data: bytes) -> list[bytes] | None:
    """The certificates of a strict-DER SignedData with at least one, read with the
    project's DER reader (~10x faster than asn1crypto); None for anything else (BER, no
    certificates, damage), which asn1crypto then reads or explains."""
    try:
        top = read_tlv(data, 0, len(data))
        parts = children(data, top)
        if top[2] != len(data) or len(parts) != 2 or parts[0][0] != TAG_OID:
            return None
        if data[parts[0][1] : parts[0][2]] != _OID_SIGNED_DATA or parts[1][0] != TAG_CONTEXT_0:
            return None
        signed = read_tlv(data, parts[1][1], parts[1][2])
        if signed[0] != TAG_SEQUENCE or signed[2] != parts[1][2]:
            return None
        for field in children(data, signed):
            if field[0] == TAG_CONTEXT_0:  # certificates [0] IMPLICIT
                found = [element_bytes(data, item) for item in children(data, field)]
                if found and all(item[0] == TAG_SEQUENCE for item in children(data, field)):
                    return found
                return None
    except DerError:
        return None
    return None
