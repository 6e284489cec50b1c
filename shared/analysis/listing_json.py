"""Is this upload a registration listing, and its JSON value: recognised by content in the
whole upload (a key may come late; Windows PowerShell 5.1 writes UTF-16), decoded as UTF-8
or UTF-16, with a key twice in one object refused (the stdlib would keep the last one
silently) and a private key anywhere refused. Pure."""

from __future__ import annotations

import json
import re
from typing import Any

from shared.analysis.listing_error import ListingError

# The keys that make JSON a listing: a "thumbprint" (not "sha1_thumbprint": a scan result
# is not a listing), a group's id or attestation, an IoT Central slot's "sha1Thumbprint",
# or our schemas. Keys in any letter case, as the parser reads them; the schema's value
# exactly, as the parser compares it.
_SNIFF = re.compile(
    r'"(?i:thumbprint|sha1thumbprint|enrollmentgroupid|attestation)"\s*:'
    r'|"(?i:schema)"\s*:\s*"ca-watch/(?:registrations|enrollment-groups)/'
)
_SNIFF_BYTES = 4096  # where a JSON opener or byte-order mark must show

_JSON_OPENERS = (b"{", b"[")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def looks_like_listing(data: bytes, max_bytes: int | None = None) -> bool:
    """JSON text (UTF-8, UTF-8 BOM or UTF-16 with BOM) with a listing's key anywhere in
    its first ``max_bytes`` (all of it by default: the blob function passes no more than
    MAX_UPLOAD_BYTES). Certificate formats never start with ``{`` or ``[``."""
    head = data[:_SNIFF_BYTES]
    # Every certificate upload passes here: leave at the first byte unless it can open JSON
    # (a brace or bracket after white space, or a byte-order mark).
    if head.lstrip()[:1] not in _JSON_OPENERS and not head.startswith(_BOMS):
        return False
    encoding = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    if not head.decode(encoding, errors="ignore").lstrip().startswith(("{", "[")):
        return False
    # The whole file, bounded by the upload limit: a key may come late (a long body first,
    # or UTF-16 doubling every byte).
    return _SNIFF.search(data[:max_bytes].decode(encoding, errors="ignore")) is not None


def listing_in_text(data: bytes) -> bool:
    """Whether a certificate text file (PEM) also holds a listing's JSON, as ``cat ca.pem
    list.json > both`` writes: refused rather than dropped silently (issue 21)."""
    encoding = "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif data[1:2] == b"\x00":
        encoding = "utf-16-le"  # as the reader, UTF-16 without a BOM
    text = data.decode(encoding, errors="ignore")
    return "{" in text and _SNIFF.search(text) is not None


def decode_listing_json(data: bytes) -> object:
    """A listing upload's JSON value: UTF-8 (BOM or not) or UTF-16 with a BOM, no private
    key anywhere, no object with a key twice."""
    text = _as_text(data)
    if text is None:
        raise ListingError("malformed-listing", "the listing is not UTF-8 or UTF-16 text")
    if "PRIVATE KEY-----" in text:
        # Whatever the JSON around it (a tool's output with a "privateKey" field): the
        # blob function refuses and deletes it, as it does a key file.
        raise ListingError(
            "private-key-material",
            "the listing holds a private key; it was not stored. Upload the listing only "
            "and keep the key secret",
        )
    try:
        return json.loads(text, object_pairs_hook=_unambiguous_object)
    except ListingError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ListingError("malformed-listing", "the listing is not valid JSON") from exc


def _unambiguous_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json``'s hook for every object: a key twice, in any letter case, is refused (the
    stdlib keeps the last silently; the tools print each key once)."""
    result = dict(pairs)
    if len(result) != len(pairs) or len({key.lower() for key in result}) != len(result):
        raise duplicate_key_error()
    return result


def duplicate_key_error() -> ListingError:
    return ListingError(
        "duplicate-json-key",
        "an object holds the same key twice (in some letter case), so the listing is "
        "ambiguous; save the tool's output again, unedited",
    )


def _as_text(data: bytes) -> str | None:
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
