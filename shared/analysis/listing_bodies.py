"""A listing's certificate body as Azure stores what it was given: base64 DER, PEM text,
base64 of a PEM file's text, or a placeholder (then the entry's thumbprint names it). Pure."""

from __future__ import annotations

import binascii

from shared.analysis.der import TAG_BIT_STRING, TAG_SEQUENCE, DerError, children, read_tlv
from shared.analysis.listing_error import ListingError
from shared.analysis.pem import pem_body, scan_pem
from shared.analysis.read_result import ReadError


def certificate_body(value: object) -> bytes | None:
    """The DER certificate a listing's ``certificate`` field holds, or None when the field
    is absent, empty or a placeholder (ARM's examples print ``"####"``; others ``"MA=="``):
    the entry's thumbprint then names it, as the live pull always did.

    Azure stores what it was given: base64 DER, PEM text, or (``az iot hub certificate
    create -p ca.pem`` since azure-cli 2.32) base64 of the PEM file's text.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ListingError("malformed-listing", "a certificate body is not text")
    if not value.isascii():
        return None
    data = value.encode("ascii")
    if b"-----BEGIN " not in data:
        try:
            data = binascii.a2b_base64(data.translate(None, _WHITESPACE), strict_mode=True)
        except binascii.Error:
            return None
        if _is_signed_der(data):
            return data
    if b"-----BEGIN " in data:
        return _first_pem_certificate(data)
    return None


_WHITESPACE = b" \t\r\n\x0b\x0c"
_PEM_CERTIFICATE_LABELS = (b"CERTIFICATE", b"X509 CERTIFICATE")


def _first_pem_certificate(text: bytes) -> bytes | None:
    """The first CERTIFICATE block of PEM text (a bundle's first one is what was
    registered); a key block refuses the whole listing, never echoed."""
    blocks, begins = scan_pem(text)
    if any(b"PRIVATE KEY" in label for label in begins):
        raise ListingError(
            "private-key-material",
            "a certificate body holds a private key; it was not stored. Upload the listing "
            "only and keep the key secret",
        )
    for index, (label, body) in enumerate(blocks, start=1):
        if label in _PEM_CERTIFICATE_LABELS:
            try:
                der = pem_body(body, index)
            except ReadError:
                return None
            return der if _is_signed_der(der) else None
    return None


def _is_signed_der(data: bytes) -> bool:
    """DER shaped like a certificate: one SEQUENCE of SEQUENCE, SEQUENCE, BIT STRING that
    spans the data (``MA==`` decodes to a lone ``0``: not one)."""
    try:
        top = read_tlv(data, 0, len(data))
        if top[0] != TAG_SEQUENCE or top[2] != len(data):
            return False
        tags = [part[0] for part in children(data, top)]
    except DerError:
        return False
    return tags == [TAG_SEQUENCE, TAG_SEQUENCE, TAG_BIT_STRING]
