"""Table keys and the text forms of times and ETags, shared by every table family."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from azure.core.exceptions import HttpResponseError

MAX_CONFLICT_RETRIES = 20  # ETag retries before a row counts as too contended
# Table keys may not hold these characters; they are percent-encoded.
_KEY_UNSAFE = {"/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F", "%": "%25"}


def table_key(value: str) -> str:
    out = "".join(_KEY_UNSAFE.get(ch, ch) for ch in value)
    return "".join(ch if ch >= " " and ch != "\x7f" else f"%{ord(ch):02X}" for ch in out)


def normalize_etag(etag: str) -> str:
    """The SDKs quote ETags in some answers and not in others; compare them bare."""
    return etag.strip().strip('"')


def upload_partition(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def precondition_failed(exc: HttpResponseError) -> bool:
    """An ETag condition lost a race (412): the caller reads again and retries."""
    return getattr(exc, "status_code", None) == 412
