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

from asn1crypto import cms, core

from shared.analysis.read_result import ErrorCode, ReadError


def read_pkcs7(data: bytes) -> list[bytes]:
    """The certificates of a SignedData ContentInfo, in file order."""
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise ReadError(ErrorCode.MALFORMED_PKCS7, "the PKCS#7 file is not SignedData")
        certificates = info["content"]["certificates"]
        # Each choice keeps the bytes it was read from: dump() returns them unchanged.
        found = [
            choice.chosen.dump()
            for choice in (() if isinstance(certificates, core.Void) else certificates)
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
