"""Registration listings: JSON documents that say which CA certificates a hub, a DPS or
another service trusts (DESIGN §3), recognised by content, not by name.

- IoT Hub: ``az iot hub certificate list`` / ARM ``Certificates - List By Iot Hub``
  (``{"value": [...]}`` or a bare array; ``id`` ``.../IotHubs/<hub>/certificates/<name>``).
- DPS: ``az iot dps certificate list`` (``.../provisioningServices/<dps>/certificates/...``).
- ``ca-watch/registrations/v1``: our manifest for IoT Central and third parties.
- The Azure Sphere tenant CA list (REST ``GET /v2/tenants/{id}/certificates``: ``Certificate``,
  ``Thumbprint``, ``IsActive``, ``IsRevoked``; the CLIs print the same fields in camel
  case, or a ``status``): not a target; its certificates are analysed like uploads.

Pure: a decoded JSON value in, values out; errors are ``ListingError`` with a fixed text
(never a value from the document).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from shared.alerts.registration import EnrollmentGroup

MANIFEST_SCHEMA = "ca-watch/registrations/v1"
FORMAT_IOT_HUB = "iot-hub-certificates"
FORMAT_DPS = "dps-certificates"
FORMAT_MANIFEST = "ca-watch-registrations"
FORMAT_SPHERE = "azure-sphere-ca-list"
KINDS = ("iot-hub", "dps", "iot-central", "other")
MAX_ENTRIES = 10_000  # a hub holds tens; more is not a listing we should trust

_THUMBPRINT = re.compile(r"[0-9A-F]{40}")
_ARM_CERTIFICATE = re.compile(
    r"^(?P<target>/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.devices/"
    r"(?P<type>iothubs|provisioningservices)/(?P<name>[^/]+))/certificates/(?P<cert>[^/]+)/?$",
    re.IGNORECASE,
)
# A "thumbprint" key (not "sha1_thumbprint": a scan result is not a listing) or our schema.
_SNIFF = re.compile(rb'"thumbprint"\s*:|"schema"\s*:\s*"ca-watch/registrations/', re.IGNORECASE)


class ListingError(ValueError):
    """A document that looks like a listing but cannot be read as one."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RegisteredCertificate:
    name: str  # the certificate's name in the hub/DPS, or ""
    thumbprint: str  # SHA-1, upper-case hex, no separators
    sha256: str | None  # lower-case hex, when the listing carries the body
    verified: bool
    subject: str | None = None
    expiry: datetime | None = None


@dataclass(frozen=True)
class Listing:
    target: str  # lower-case ARM id of the hub/DPS, or the manifest's target
    kind: str  # iot-hub | dps | iot-central | other
    display_name: str
    format: str
    certificates: tuple[RegisteredCertificate, ...]
    # The target's enrollment groups (DPS, IoT Central); None when this listing did not
    # read them (a certificate list alone): the group clause of DESIGN §4 rule 1 is unchecked.
    groups: tuple[EnrollmentGroup, ...] | None = None


@dataclass(frozen=True)
class SphereCaEntry:
    """One tenant CA of an Azure Sphere CA list (its body, when the list carries one)."""

    thumbprint: str
    der: bytes | None
    is_active: bool | None
    is_revoked: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "thumbprint": self.thumbprint,
            "sha256": hashlib.sha256(self.der).hexdigest() if self.der else None,
            "is_active": self.is_active,
            "is_revoked": self.is_revoked,
        }


@dataclass(frozen=True)
class ListingDocument:
    format: str
    listings: tuple[Listing, ...] = ()
    sphere_entries: tuple[SphereCaEntry, ...] = ()


def normalize_thumbprint(value: object) -> str:
    """Upper-case hex without colons, spaces or dashes; ListingError when not SHA-1 hex."""
    if not isinstance(value, str):
        raise ListingError("malformed-listing", "a thumbprint is not a string")
    text = re.sub(r"[\s:\-]", "", value).upper()
    if not _THUMBPRINT.fullmatch(text):
        raise ListingError("malformed-listing", "a thumbprint is not 40 hex digits (SHA-1)")
    return text


_JSON_OPENERS = (b"{", b"[")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def looks_like_listing(data: bytes) -> bool:
    """A cheap sniff: JSON text (UTF-8, UTF-8 BOM or UTF-16) with a ``thumbprint`` key or
    the manifest schema. Certificate formats never start with ``{`` or ``[``."""
    head = data[:4096]
    # Every certificate upload passes here: leave at the first byte unless it can open JSON
    # (a brace or bracket after white space, or a byte-order mark).
    if head.lstrip()[:1] not in _JSON_OPENERS and not head.startswith(_BOMS):
        return False
    encoding = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    stripped = head.decode(encoding, errors="ignore").lstrip()
    if not stripped.startswith(("{", "[")):
        return False
    return bool(_SNIFF.search(stripped.encode("utf-8")))


def read_listing_document(data: bytes) -> ListingDocument:
    """Decode and parse a listing upload (``looks_like_listing`` said yes)."""
    text = _as_text(data)
    if text is None:
        raise ListingError("malformed-listing", "the listing is not UTF-8 or UTF-16 text")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ListingError("malformed-listing", "the listing is not valid JSON") from exc
    return parse_listing_document(document)


def parse_listing(document: object) -> list[Listing]:
    """The registration targets in an already-decoded listing (none for a Sphere CA list)."""
    return list(parse_listing_document(document).listings)


def parse_listing_document(document: object) -> ListingDocument:
    if isinstance(document, Mapping) and document.get("schema") == MANIFEST_SCHEMA:
        return ListingDocument(FORMAT_MANIFEST, (_manifest(document),))
    entries = _entries(document)
    if not entries:
        raise ListingError("empty-listing", "the listing holds no certificates")
    if all(isinstance(e, Mapping) and "properties" in e for e in entries):
        return _arm_listing(entries)
    if all(isinstance(e, Mapping) and _get(e, "thumbprint") is not None for e in entries):
        return ListingDocument(FORMAT_SPHERE, sphere_entries=tuple(_sphere(e) for e in entries))
    raise ListingError("malformed-listing", "the listing's entries have no known shape")


def _entries(document: object) -> list[Any]:
    if isinstance(document, Mapping):
        value = document.get("value")
        if not isinstance(value, list):
            raise ListingError("malformed-listing", 'a listing object needs a "value" array')
        document = value
    if not isinstance(document, list):
        raise ListingError("malformed-listing", "a listing is an object or an array")
    if len(document) > MAX_ENTRIES:
        raise ListingError("malformed-listing", f"more than {MAX_ENTRIES} entries")
    return document


def _arm_listing(entries: list[Any]) -> ListingDocument:
    """IoT Hub or DPS certificate entries, grouped by the hub/DPS they belong to."""
    grouped: dict[str, tuple[str, str, list[RegisteredCertificate]]] = {}
    formats: set[str] = set()
    for entry in entries:
        match = _ARM_CERTIFICATE.match(str(entry.get("id")))  # a missing id is "None"
        if match is None:
            raise ListingError(
                "malformed-listing", "an entry's id is not an IoT Hub or DPS certificate id"
            )
        props = entry["properties"]
        if not isinstance(props, Mapping):
            raise ListingError("malformed-listing", "an entry's properties is not an object")
        is_hub = match["type"].lower() == "iothubs"
        formats.add(FORMAT_IOT_HUB if is_hub else FORMAT_DPS)
        target = match["target"].lower()
        _, _, certs = grouped.setdefault(
            target, ("iot-hub" if is_hub else "dps", match["name"], [])
        )
        name = str(entry.get("name") or match["cert"])
        certs.append(_registered(props, name, props.get("isVerified", False)))
    if len(formats) > 1:
        raise ListingError("malformed-listing", "a listing mixes IoT Hub and DPS certificates")
    listings = tuple(
        Listing(target, kind, name, next(iter(formats)), tuple(certs))
        for target, (kind, name, certs) in sorted(grouped.items())
    )
    return ListingDocument(next(iter(formats)), listings)


def _registered(props: Mapping[str, Any], name: str, verified: object) -> RegisteredCertificate:
    body = _body(props.get("certificate"))
    thumbprint = props.get("thumbprint")
    if thumbprint is None and body is None:
        raise ListingError("malformed-listing", "an entry has neither thumbprint nor certificate")
    sha1 = normalize_thumbprint(thumbprint) if thumbprint is not None else None
    if body is not None:
        body_sha1 = hashlib.sha1(body, usedforsecurity=False).hexdigest().upper()
        if sha1 is not None and sha1 != body_sha1:
            raise ListingError("malformed-listing", "an entry's thumbprint does not match its body")
        sha1 = body_sha1
    assert sha1 is not None
    if not isinstance(verified, bool):
        raise ListingError("malformed-listing", "a verified flag is not true or false")
    subject = props.get("subject")
    return RegisteredCertificate(
        name=name,
        thumbprint=sha1,
        sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
        verified=verified,
        subject=subject if isinstance(subject, str) else None,
        expiry=_date(props.get("expiry")),
    )


def _manifest(document: Mapping[str, Any]) -> Listing:
    target = document.get("target")
    if not isinstance(target, str) or not target.strip():
        raise ListingError("malformed-listing", 'the manifest needs a "target" string')
    kind = document.get("kind", "other")
    if kind not in ("iot-central", "other"):
        raise ListingError("malformed-listing", 'a manifest "kind" is iot-central or other')
    certs = document.get("certificates")
    if not isinstance(certs, list) or len(certs) > MAX_ENTRIES:
        raise ListingError("malformed-listing", 'the manifest needs a "certificates" array')
    registered = []
    for entry in certs:
        if not isinstance(entry, Mapping):
            raise ListingError("malformed-listing", "a manifest certificate is not an object")
        registered.append(
            _registered(entry, str(entry.get("name") or ""), entry.get("verified", False))
        )
    return Listing(target.strip().lower(), kind, target.strip(), FORMAT_MANIFEST, tuple(registered))


def _sphere(entry: Mapping[str, Any]) -> SphereCaEntry:
    body = _body(_get(entry, "certificate"))
    thumbprint = normalize_thumbprint(_get(entry, "thumbprint"))
    if body is not None and hashlib.sha1(body, usedforsecurity=False).hexdigest().upper() != (
        thumbprint
    ):
        raise ListingError("malformed-listing", "an entry's thumbprint does not match its body")
    status = _get(entry, "status")
    active, revoked = _get(entry, "isActive"), _get(entry, "isRevoked")
    if isinstance(status, str):
        active = status.lower() == "active" if active is None else active
        revoked = status.lower() == "revoked" if revoked is None else revoked
    return SphereCaEntry(
        thumbprint,
        body,
        active if isinstance(active, bool) else None,
        revoked if isinstance(revoked, bool) else None,
    )


def _get(entry: Mapping[str, Any], key: str) -> Any:
    """A field by name, whatever its case (the REST API capitalises, the CLIs do not)."""
    wanted = key.lower()
    for name, value in entry.items():
        if isinstance(name, str) and name.lower() == wanted:
            return value
    return None


def _body(value: object) -> bytes | None:
    """A certificate body given as base64 DER or PEM text; None when absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ListingError("malformed-listing", "a certificate body is not text")
    text = re.sub(r"-----(BEGIN|END) CERTIFICATE-----|\s", "", value)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ListingError("malformed-listing", "a certificate body is not base64") from exc
    if not der.startswith(b"\x30"):
        raise ListingError("malformed-listing", "a certificate body is not a DER certificate")
    return der


def _date(value: object) -> datetime | None:
    """RFC 1123 (``Tue, 01 Dec 2026 10:00:00 GMT``, what ARM returns) or ISO 8601."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(value)  # takes a "Z" since Python 3.11
        except ValueError as exc:
            raise ListingError("malformed-listing", "an expiry is not an RFC 1123 date") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_text(data: bytes) -> str | None:
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
