"""The one key check: does an upload (or the start of one) hold private key material?

Every upload passes here before anything else reads it (DESIGN §2): certificate files,
registration listings and files over the size limit alike. The forms it knows:

- a PEM block whose label ends in ``PRIVATE KEY`` (PKCS#8, encrypted PKCS#8, RSA, EC,
  DSA, OpenSSH, PGP) anywhere in the text, also in UTF-16 text cut at any byte;
- DER keys (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1, traditional DSA) as any element of
  a run of DER elements: alone, with a trailing newline, before or after a certificate;
- a PKCS#12 that is not the whole file, or is cut short: it cannot be proven key-free
  (a whole one is read to its end by the reader, which refuses what it cannot prove);
- JSON (a listing, a manifest, anything): a JWK with a private member, or any string
  holding a PEM key or base64 of a DER key;
- bare base64 text of a DER key.

Pure: bytes in, a ``ReadError`` (fixed texts only, never file content) or None out.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator

from shared.analysis.der import (
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_SEQUENCE,
    DerError,
    Tlv,
    read_tlv,
)
from shared.analysis.read_result import ErrorCode, ReadError

_ADVICE = "it was not stored. Upload the certificates only and keep the key secret"
_PEM_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY|PuTTY-User-Key-File-")
_JSON_OPENERS = (b"{", b"[")
# JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_JWK_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_JWK_KTY = re.compile(rb'"kty"\s*:')
_JWK_PRIVATE = re.compile(rb'"(?:d|p|q|dp|dq|qi|oth|k)"\s*:')
_JSON_LONG_STRING = re.compile(rb'"([^"]{64,})"')  # a string long enough to hold a key
_PEM_MARKERS = re.compile(rb"-----(?:BEGIN|END) [A-Z0-9 ]+-----")
_JSON_TEXT_ESCAPES = re.compile(rb"\\[nrt/]")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=]+")
_WHITESPACE = b" \t\r\n\x0b\x0c"
_SEPARATORS = b" \t\r\n\x00"  # what may sit between concatenated DER elements
_MAX_DER_ELEMENTS = 64  # elements of one concatenation looked at: bounded work per file
_MAX_JSON_STRINGS = 20_000  # a listing holds at most 10,000 entries


def key_material(data: bytes, *, whole: bool = True) -> ReadError | None:
    """The refusal for ``data`` when it holds private key material, else None. ``whole``
    is False when ``data`` is only the start of a file (one over the size limit): then
    a PKCS#12 or a structure cut short counts as key material when it may hold one."""
    text = _as_text(data)
    if text is not None:
        return _text_key(text, whole)
    return _der_key(data, whole)


def _refusal(form: str) -> ReadError:
    return ReadError(ErrorCode.PRIVATE_KEY_MATERIAL, f"the file holds {form}; {_ADVICE}")


# --- Text --------------------------------------------------------------------------
def _as_text(data: bytes) -> bytes | None:
    """The file as ASCII-ish bytes when it is text; None for binary (DER). UTF-16 is
    decoded on an even length, so the start of a file cut at an odd byte still decodes."""
    if data[:1] == b"\x30" and data[1:2] != b"\x00":
        return None  # DER: a SEQUENCE with a length ("0\0" is UTF-16 text)
    codec = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        codec = "utf-16-le"
    elif len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] != 0:
        codec = "utf-16-be"
    if codec is None:
        return data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    even = data[: len(data) - len(data) % 2]
    # "replace": a lone surrogate cut at the end, or a damaged unit, must not hide the rest.
    return even.decode(codec, errors="replace").encode("ascii", "replace")


def _text_key(text: bytes, whole: bool) -> ReadError | None:
    if _holds_pem_key(text):
        return _refusal("a private key (PEM)")
    if text.startswith(b"-----BEGIN "):
        return None  # PEM without a key block (the common upload): the reader reads it
    stripped = text.lstrip()
    if stripped[:1] in _JSON_OPENERS:
        return _json_key(stripped, whole)
    if b"-----BEGIN " in text:
        return None  # PEM without a key block: the reader reads it
    if stripped[:1] == b"\x30":  # DER after white space: the reader refuses it, keys stay
        return _der_key(stripped, whole)
    compact = text.translate(None, _WHITESPACE + b"\x00")
    if compact and _BASE64_TEXT.fullmatch(compact):
        if not whole:
            compact = compact[: len(compact) - len(compact) % 4]
        der = _decode_base64(compact)
        if der is not None:
            found = _der_key(der, whole)
            return _refusal("a private key (base64 of DER)") if found else None
    return None


def _holds_pem_key(text: bytes) -> bool:
    # The substring tests run in C; the regex only when one of them hits.
    return (b"PRIVATE KEY" in text or b"PuTTY-User-Key-File-" in text) and bool(
        _PEM_KEY.search(text)
    )


def _decode_base64(text: bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return None


# --- JSON --------------------------------------------------------------------------
def _json_key(text: bytes, whole: bool) -> ReadError | None:
    document: object = None
    if whole:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
    if document is not None:
        for found in _json_findings(document):
            return _refusal(found)
        return None
    # Not JSON (or only its start): judge the raw text.
    if _JWK_KTY.search(text) and _JWK_PRIVATE.search(text):
        return _refusal("a private key (a JWK with a private member)")
    for count, match in enumerate(_JSON_LONG_STRING.finditer(text)):
        if count >= _MAX_JSON_STRINGS:
            break
        if _string_holds_key(_JSON_TEXT_ESCAPES.sub(b"", match.group(1))):
            return _refusal("a private key inside JSON")
    return None


def _json_findings(document: object) -> Iterator[str]:
    """What key material a decoded JSON value holds, depth first, without recursion."""
    stack = [document]
    strings = 0
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "kty" in item and _JWK_PRIVATE_MEMBERS & item.keys():
                yield "a private key (a JWK with a private member)"
                return
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) >= 64:
            strings += 1
            if strings > _MAX_JSON_STRINGS:
                return
            if _string_holds_key(item.encode("utf-8", "replace")):
                yield "a private key inside JSON"
                return


def _string_holds_key(value: bytes) -> bool:
    """A JSON string value: a PEM key, or base64 (PEM markers and white space aside) of a
    DER key or of a PKCS#12."""
    if _holds_pem_key(value):
        return True
    compact = _PEM_MARKERS.sub(b"", value).translate(None, _WHITESPACE)
    if not compact or not _BASE64_TEXT.fullmatch(compact):
        return False
    der = _decode_base64(compact)
    # A PKCS#12 inside JSON is never read to its end: it counts as key material.
    return der is not None and _der_key(der, whole=False) is not None


# --- DER ---------------------------------------------------------------------------
def _der_key(data: bytes, whole: bool) -> ReadError | None:
    """A key among the DER elements of ``data`` (one, or several one after another with
    white space between), or a PKCS#12 the reader will not read to its end."""
    pos, end = 0, len(data)
    for index in range(_MAX_DER_ELEMENTS):
        while pos < end and data[pos] in _SEPARATORS:
            pos += 1
        if pos >= end or data[pos] != TAG_SEQUENCE:
            return None
        try:
            element = read_tlv(data, pos, end)
        except DerError as exc:
            # Cut short (the start of an over-size file) or BER: what its start says.
            return _cut_short_key(data, pos, str(exc), whole)
        form = der_key_form(data, element)
        if form == "pkcs12":
            if whole and index == 0 and element[2] == end:
                return None  # the whole file: the reader proves it key-free, or refuses it
            return _refusal("a PKCS#12 file that cannot be read to its end (it may hold a key)")
        if form is not None:
            return _refusal(f"a private key ({form})")
        pos = element[2]
    return None


def _cut_short_key(data: bytes, pos: int, problem: str, whole: bool) -> ReadError | None:
    length = data[pos + 1] if pos + 1 < len(data) else 0
    # Where the content starts: after the length octets (none for BER's indefinite 0x80).
    start = pos + 2 + (length & 0x7F if length > 0x80 else 0)
    if data[start : start + 3] == b"\x02\x01\x03":  # a PKCS#12 (DER or BER): PFX version 3
        if whole and pos == 0 and "indefinite length" in problem:
            return None  # a whole BER PKCS#12: the reader decides
        return _refusal("a PKCS#12 file that cannot be read to its end (it may hold a key)")
    if not whole and "truncated" in problem:
        # Only the start of a key over the size limit: judge the children that are whole.
        form = der_key_form(data, (data[pos], start, len(data)), partial=True)
        if form is not None and form != "pkcs12":
            return _refusal(f"a private key ({form})")
    return None


def der_key_form(data: bytes, element: Tlv, *, partial: bool = False) -> str | None:
    """Which private key form a DER SEQUENCE is ("PKCS#8", ...), "pkcs12", or None, from
    its first children only (at most nine are read)."""
    tags: list[int] = []
    values: list[bytes] = []
    pos = element[1]
    while pos < element[2] and len(tags) < 9:
        try:
            child = read_tlv(data, pos, element[2])
        except DerError:
            if partial:
                break
            return None
        tags.append(child[0])
        values.append(data[child[1] : child[2]] if child[0] == TAG_INTEGER else b"")
        pos = child[2]
    if tags[:2] == [TAG_INTEGER, TAG_SEQUENCE]:
        if values[0] == b"\x03":
            return "pkcs12"
        if values[0] in (b"\x00", b"\x01") and TAG_OCTET_STRING in tags:
            return "PKCS#8"
    if tags[:2] == [TAG_SEQUENCE, TAG_OCTET_STRING]:
        return "encrypted PKCS#8"
    if tags[:2] == [TAG_INTEGER, TAG_OCTET_STRING] and values[0] == b"\x01":
        return "SEC1 EC"
    if len(tags) >= 9 and all(tag == TAG_INTEGER for tag in tags):
        return "PKCS#1 RSA"
    if len(tags) == 6 and all(tag == TAG_INTEGER for tag in tags) and values[0] == b"\x00":
        return "DSA"  # version, p, q, g, y, x: OpenSSL's traditional DSA key
    return None
