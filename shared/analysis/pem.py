"""PEM text -> DER certificates: bundles, ``openssl x509 -text`` preambles, RFC 1421
headers, ``TRUSTED CERTIFICATE`` and ``PKCS7`` blocks. A private key anywhere refuses the
whole file before anything is decoded. Pure.

Blocks are found in one linear pass over the markers (DESIGN §2: a bound on the work per
file): a hostile file of 58,222 ``-----BEGIN X-----`` lines without END lines used to cost
one search to the end of the file per BEGIN, 28 s in all.
"""

from __future__ import annotations

import binascii
import re

from shared.analysis.der import DerError, element_bytes, read_tlv
from shared.analysis.read_result import ErrorCode, ReadError, ReadResult

# Every BEGIN and END marker, in one scan; a lookahead, so markers that share dashes
# ("-----END X-----BEGIN Y-----") are all found, as the reference regex finds them. The
# label alphabet has no "-", so each attempt stops at the next dash: linear in the text.
_PEM_MARKER = re.compile(rb"(?=-----(BEGIN|END) ([A-Z0-9 #/]+)-----)")
# The reference definition of a block (a back-reference regex: quadratic on hostile
# text); the tests check the linear scanner against it on small inputs.
PEM_BLOCK_REFERENCE = re.compile(rb"-----BEGIN ([A-Z0-9 #/]+)-----(.*?)-----END \1-----", re.DOTALL)

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
_PEM_HEADER_LINE = re.compile(rb"^[A-Za-z-]+:.*$", re.MULTILINE)


def scan_pem(text: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """(label, body) of each BEGIN..END pair, and the label of every BEGIN line.

    A block runs from a BEGIN to the first END of the same label after it; BEGINs inside
    a block are not starts of blocks; a BEGIN without its END is skipped. One pass over
    the markers, each END list walked forward once per label: linear in the text.
    """
    found = _PEM_MARKER.findall(text)  # [(b"BEGIN" | b"END", label)], in C
    if not found:
        return [], []
    begins = [label for kind, label in found if kind == b"BEGIN"]
    if len(begins) == len(found):
        return [], begins  # no END line at all: no block (a cheap hostile case)
    starts = [match.start() for match in _PEM_MARKER.finditer(text)]
    ends: dict[bytes, list[tuple[int, int]]] = {}
    for (kind, label), start in zip(found, starts, strict=True):
        if kind == b"END":  # "-----END " + label + "-----"
            ends.setdefault(label, []).append((start, start + 14 + len(label)))
    next_end: dict[bytes, int] = {}  # per label: index of the first END not yet passed
    blocks: list[tuple[bytes, bytes]] = []
    inside_until = 0
    for (kind, label), start in zip(found, starts, strict=True):
        if kind != b"BEGIN":
            continue
        end = start + 16 + len(label)  # "-----BEGIN " + label + "-----"
        if start < inside_until:
            continue  # inside the body of the previous block
        candidates = ends.get(label, ())
        index = next_end.get(label, 0)
        while index < len(candidates) and candidates[index][0] < end:
            index += 1
        next_end[label] = index
        if index == len(candidates):
            continue  # no END for this one
        end_start, end_end = candidates[index]
        blocks.append((label, text[end:end_start]))
        inside_until = end_end
    return blocks, begins


def _pem_blocks(text: bytes) -> list[tuple[bytes, bytes]]:
    """What ``PEM_BLOCK_REFERENCE.findall`` finds, in linear time."""
    return scan_pem(text)[0]


def read_pem(text: bytes) -> ReadResult:
    blocks, begins = scan_pem(text)
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
            der = pem_body(body, index)
            if label == b"TRUSTED CERTIFICATE":
                der = _leading_element(der, index)  # OpenSSL appends trust settings
            certificates.append(der)
            kinds.add("pem")
        elif label in _PKCS7_LABELS:
            from shared.analysis.pkcs7 import read_pkcs7  # lazy: rare, keeps PEM fast

            certificates.extend(read_pkcs7(pem_body(body, index)))
            kinds.add("pkcs7-pem")
        elif label in _OTHER_LABELS:
            refusals.append(_OTHER_LABELS[label])
        else:
            # The label is [A-Z0-9 #/]+ (_PEM_MARKER), so it always decodes.
            refusals.append(
                (ErrorCode.UNSUPPORTED_PEM_BLOCK, f"a PEM block of type {label.decode()!r}")
            )
    if not certificates:
        code, what = refusals[0] if refusals else (ErrorCode.NO_CERTIFICATES, "no certificate")
        raise ReadError(code, f"the file holds {what}, not a certificate")
    return ReadResult(tuple(certificates), "+".join(sorted(kinds)))


def pem_body(body: bytes, index: int) -> bytes:
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
