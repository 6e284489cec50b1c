"""Registration listings: JSON documents that say which CA certificates a hub, a DPS or
another service trusts (DESIGN §3), recognised by content, not by name (docs/listings.md).

- IoT Hub: ``az iot hub certificate list`` / ARM ``Certificates - List By Iot Hub``
  (``{"value": [...]}`` or a bare array; ``id`` ``.../IotHubs/<hub>/certificates/<name>``).
- DPS: ``az iot dps certificate list`` (``.../provisioningServices/<dps>/certificates/...``).
- ``ca-watch/registrations/v1``: our manifest for IoT Central and third parties; it may not
  speak for an IoT Hub or DPS (those are read from ARM).
- Azure Sphere CA lists, not targets (their certificates are analysed like uploads): the
  ARM catalog form (``az sphere ca-certificate list``: entries under
  ``Microsoft.AzureSphere/catalogs/<c>/certificates/<serial>`` with ``properties.status``)
  and the legacy REST form (``GET /v2/tenants/{id}/certificates``: ``Certificate``,
  ``Thumbprint``, ``IsActive``, ``IsRevoked``, or a ``status``).
- Enrollment groups travel in an envelope naming their target (enrollment_envelope); a raw
  group document is refused here.

Read as Azure prints them: keys in any letter case (two spellings of one key, or one key
twice, refuse), a certificate body as base64 DER, PEM, base64 of PEM or a placeholder, the
same CA listed twice (verified wins), thumbprints in ASCII hex only, at most
``MAX_TARGETS`` targets per document.

Recognising and decoding an upload's JSON is listing_json.py's job, reading a certificate
body listing_bodies.py's. Pure: a decoded JSON value in, values out; errors are
``ListingError`` with a fixed text (never a value from the document).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from shared.alerts.registration import EnrollmentGroup
from shared.analysis.listing_bodies import certificate_body
from shared.analysis.listing_error import ListingError
from shared.analysis.listing_json import decode_listing_json, duplicate_key_error

MANIFEST_SCHEMA = "ca-watch/registrations/v1"
ENVELOPE_SCHEMA = "ca-watch/enrollment-groups/v1"  # enrollment_envelope: groups + their target
FORMAT_IOT_HUB = "iot-hub-certificates"
FORMAT_DPS = "dps-certificates"
FORMAT_MANIFEST = "ca-watch-registrations"
FORMAT_DPS_GROUPS = "dps-enrollment-groups"  # an envelope: a DPS's certificates and groups
FORMAT_SPHERE = "azure-sphere-ca-list"  # the legacy REST / azsphere shape
FORMAT_SPHERE_CATALOG = "azure-sphere-catalog-certificates"  # ARM: az sphere ca-certificate list
KINDS = ("iot-hub", "dps", "iot-central", "other")
MAX_ENTRIES = 10_000  # a hub holds tens; more is not a listing we should trust
# DESIGN §1/§3: a document speaks for a few targets, not thousands (one upload must not
# be able to touch every target on record).
MAX_TARGETS = 20
SPHERE_STATUSES = ("Active", "Inactive", "Expired", "Revoked")  # ARM CertificateStatus
NEVER_A_RENEWAL = frozenset({"Expired", "Revoked"})

# Upper-cased input against ASCII classes only: "\ufb00".upper() is "FF", so the input is
# checked to be ASCII first, and no IGNORECASE (which folds U+017F to "s", U+212A to "k").
_THUMBPRINT = re.compile(r"[0-9A-F]{40}")
_THUMBPRINT_SEPARATORS = re.compile(r"[\s:\-]", re.ASCII)
_ARM_CERTIFICATE = re.compile(
    r"^(?P<target>/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
    r"(?P<type>microsoft\.devices/iothubs|microsoft\.devices/provisioningservices"
    r"|microsoft\.azuresphere/catalogs)/(?P<name>[^/]+))/certificates/(?P<cert>[^/]+)/?$",
    re.IGNORECASE | re.ASCII,
)
_ARM_FORMATS = {
    "microsoft.devices/iothubs": (FORMAT_IOT_HUB, "iot-hub"),
    "microsoft.devices/provisioningservices": (FORMAT_DPS, "dps"),
    "microsoft.azuresphere/catalogs": (FORMAT_SPHERE_CATALOG, ""),
}
# What a manifest target may not contain, once lower-cased and stripped of everything but
# letters and digits: the resource type of an IoT Hub or a DPS, in any spelling of its id.
_ARM_TARGET_TYPES = ("microsoftdevicesiothubs", "microsoftdevicesprovisioningservices")


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
    # The catalog's CertificateStatus (Active, Inactive, Expired, Revoked) when the list
    # prints one; an unknown value is kept as printed; None for the legacy flags alone.
    status: str | None = None

    @property
    def never_a_renewal(self) -> bool:
        """Revoked or expired in the catalog: never counts as a renewal (DESIGN §4)."""
        return self.status in NEVER_A_RENEWAL or self.is_revoked is True

    def to_json(self) -> dict[str, Any]:
        return {
            "thumbprint": self.thumbprint,
            "sha256": hashlib.sha256(self.der).hexdigest() if self.der else None,
            "is_active": self.is_active,
            "is_revoked": self.is_revoked,
            "status": self.status,
        }


@dataclass(frozen=True)
class ListingDocument:
    format: str
    listings: tuple[Listing, ...] = ()
    sphere_entries: tuple[SphereCaEntry, ...] = ()


def normalize_thumbprint(value: object) -> str:
    """Upper-case ASCII hex without colons, spaces or dashes; ListingError when not SHA-1
    hex (any non-ASCII character included: a look-alike digit or a copied direction mark)."""
    if not isinstance(value, str):
        raise ListingError("malformed-listing", "a thumbprint is not a string")
    if not value.isascii():
        raise ListingError("malformed-listing", "a thumbprint holds a character that is not ASCII")
    text = _THUMBPRINT_SEPARATORS.sub("", value).upper()
    if not _THUMBPRINT.fullmatch(text):
        raise ListingError("malformed-listing", "a thumbprint is not 40 hex digits (SHA-1)")
    return text


def read_listing_document(data: bytes) -> ListingDocument:
    """Decode and parse a listing upload (``looks_like_listing`` said yes)."""
    return parse_listing_document(decode_listing_json(data))


def parse_listing(document: object) -> list[Listing]:
    """The registration targets in an already-decoded listing (none for a Sphere CA list)."""
    return list(parse_listing_document(document).listings)


def parse_listing_document(document: object) -> ListingDocument:
    """Keys are read in any letter case (the REST API and PowerShell capitalise them, the
    CLIs do not), as ``looks_like_listing`` finds them; two spellings of one key refuse."""
    if isinstance(document, Mapping):
        fields = fields_of(document)
        if fields.get("schema") == MANIFEST_SCHEMA:
            return ListingDocument(FORMAT_MANIFEST, (_manifest(fields),))
        if fields.get("schema") == ENVELOPE_SCHEMA:
            # Its parser builds on this module and on enrollment_listings: uploads come in
            # through enrollment_envelope.read_uploaded_listing, which reads both.
            raise ListingError(
                "malformed-listing", "an enrollment group envelope is read by enrollment_envelope"
            )
        if "value" not in fields and _is_group_document(fields):
            raise _groups_need_target()
        document = fields.get("value")
        if not isinstance(document, list):
            raise ListingError("malformed-listing", 'a listing object needs a "value" array')
    if not isinstance(document, list):
        raise ListingError("malformed-listing", "a listing is an object or an array")
    if len(document) > MAX_ENTRIES:
        raise ListingError("malformed-listing", f"more than {MAX_ENTRIES} entries")
    if not document:
        raise ListingError("empty-listing", "the listing holds no certificates")
    if all(isinstance(e, Mapping) for e in document):
        entries = [fields_of(e) for e in document]
        if all("properties" in e for e in entries):
            return _arm_listing(entries)
        if all(e.get("thumbprint") is not None for e in entries):
            return ListingDocument(FORMAT_SPHERE, sphere_entries=tuple(map(_sphere, entries)))
        if any(map(_is_group_document, entries)):
            raise _groups_need_target()
    raise ListingError("malformed-listing", "the listing's entries have no known shape")


# Keys only enrollment group documents have (lower case, as parsed): a DPS group's id, a
# group's attestation, an IoT Central slot's "info" with its "verified" flag.
_GROUP_KEYS = ("enrollmentgroupid", "attestation")


def _is_group_document(fields: Mapping[str, Any]) -> bool:
    return any(key in fields for key in _GROUP_KEYS) or ("verified" in fields and "info" in fields)


def _groups_need_target() -> ListingError:
    """Groups name no target of their own (docs/listings.md says why an envelope)."""
    return ListingError(
        "enrollment-groups-need-target",
        "enrollment groups do not say which DPS or IoT Central app they belong to: upload "
        "them with `ca-watch upload --dps DPS_RESOURCE_ID groups.json certificates.json`, or "
        'wrap them in a {"schema": "ca-watch/enrollment-groups/v1", "target": ...} envelope '
        "(docs/listings.md)",
    )


def fields_of(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """A JSON object's members by lower-case key; two spellings of one key are ambiguous."""
    fields = {key.lower(): value for key, value in mapping.items() if isinstance(key, str)}
    if len(fields) != sum(isinstance(key, str) for key in mapping):
        raise duplicate_key_error()
    return fields


def _arm_listing(entries: list[dict[str, Any]]) -> ListingDocument:
    """IoT Hub, DPS or Azure Sphere catalog certificate entries (ARM resources), grouped by
    the hub/DPS they belong to; a catalog's entries are tenant CAs, not a target."""
    grouped: dict[str, tuple[str, str, list[RegisteredCertificate]]] = {}
    sphere: list[SphereCaEntry] = []
    parents: set[str] = set()
    formats: set[str] = set()
    for entry in entries:
        match = _ARM_CERTIFICATE.match(str(entry.get("id")))  # a missing id is "None"
        if match is None:
            raise ListingError(
                "malformed-listing",
                "an entry's id is not an IoT Hub, DPS or Azure Sphere catalog certificate id",
            )
        props = entry["properties"]
        if not isinstance(props, Mapping):
            raise ListingError("malformed-listing", "an entry's properties is not an object")
        props = fields_of(props)
        listing_format, kind = _ARM_FORMATS[match["type"].lower()]
        formats.add(listing_format)
        target = match["target"].lower()
        if target not in parents and len(parents) == MAX_TARGETS:
            raise ListingError(
                "too-many-targets",
                f"the listing names more than {MAX_TARGETS} targets; upload one listing "
                "per hub, DPS or catalog (as `az iot hub certificate list` prints it)",
            )
        parents.add(target)
        if not kind:
            sphere.append(_sphere(props))
            continue
        _, _, certs = grouped.setdefault(target, (kind, match["name"], []))
        name = str(entry.get("name") or match["cert"])
        certs.append(_registered(props, name, props.get("isverified", False)))
    if len(formats) > 1:
        raise ListingError(
            "malformed-listing",
            "a listing mixes the certificates of IoT Hubs, DPSs or Azure Sphere catalogs",
        )
    (listing_format,) = formats
    listings = tuple(
        Listing(target, kind, name, listing_format, _verified_wins(certs))
        for target, (kind, name, certs) in sorted(grouped.items())
    )
    return ListingDocument(listing_format, listings, tuple(sphere))


def _verified_wins(certs: list[RegisteredCertificate]) -> tuple[RegisteredCertificate, ...]:
    """One entry per thumbprint, in first-seen order: a CA uploaded twice (once left
    unverified, once verified) is registered, so the verified entry (and its name) wins;
    a body either entry carried is kept."""
    kept: dict[str, RegisteredCertificate] = {}
    for cert in certs:
        seen = kept.get(cert.thumbprint)
        if seen is None:
            kept[cert.thumbprint] = cert
            continue
        winner = cert if cert.verified and not seen.verified else seen
        other = seen if winner is cert else cert
        if winner.sha256 is None and other.sha256 is not None:
            winner = replace(winner, sha256=other.sha256)
        kept[cert.thumbprint] = winner
    return tuple(kept.values())


def _registered(props: Mapping[str, Any], name: str, verified: object) -> RegisteredCertificate:
    """One certificate of a hub/DPS listing or a manifest (``props``: lower-case keys)."""
    body = certificate_body(props.get("certificate"))
    thumbprint = props.get("thumbprint")
    if thumbprint is None and body is None:
        raise ListingError(
            "malformed-listing", "an entry has neither a thumbprint nor a readable certificate"
        )
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
    if claims_arm_target(target):
        raise ListingError(
            "manifest-claims-arm-target",
            "a manifest may not speak for an IoT Hub or DPS: upload what "
            "`az iot hub certificate list` or `az iot dps certificate list` prints instead",
        )
    certs = document.get("certificates")
    if not isinstance(certs, list) or len(certs) > MAX_ENTRIES:
        raise ListingError("malformed-listing", 'the manifest needs a "certificates" array')
    registered = []
    for entry in certs:
        if not isinstance(entry, Mapping):
            raise ListingError("malformed-listing", "a manifest certificate is not an object")
        fields = fields_of(entry)
        registered.append(
            _registered(fields, str(fields.get("name") or ""), fields.get("verified", False))
        )
    return Listing(
        target.strip().lower(), kind, target.strip(), FORMAT_MANIFEST, _verified_wins(registered)
    )


def claims_arm_target(target: str) -> bool:
    """Whether a manifest's target names an IoT Hub or DPS, in any spelling of its ARM id
    (case, slashes, a URL or a certificate under it): those are read from ARM only."""
    letters = re.sub(r"[^a-z0-9]", "", target.lower())
    return any(kind in letters for kind in _ARM_TARGET_TYPES)


def sphere_entry(properties: Mapping[str, Any]) -> SphereCaEntry:
    """One catalog certificate's ``properties`` (``certificate``, ``status``, ``thumbprint``;
    any key case): what the live catalog reader and an upload of ``az sphere
    ca-certificate list`` both read, so the two agree."""
    return _sphere(fields_of(properties))


def _sphere(entry: Mapping[str, Any]) -> SphereCaEntry:
    """One tenant CA of a Sphere CA list (``entry``: lower-case keys): the legacy REST and
    ``azsphere`` shape (flags and/or ``status``), or an ARM catalog entry's properties."""
    body = certificate_body(entry.get("certificate"))
    thumbprint = normalize_thumbprint(entry.get("thumbprint"))
    if body is not None and hashlib.sha1(body, usedforsecurity=False).hexdigest().upper() != (
        thumbprint
    ):
        raise ListingError("malformed-listing", "an entry's thumbprint does not match its body")
    status = _status(entry.get("status"))
    active, revoked = entry.get("isactive"), entry.get("isrevoked")
    if status is not None:
        active = status == "Active" if active is None else active
        revoked = status == "Revoked" if revoked is None else revoked
    return SphereCaEntry(
        thumbprint,
        body,
        active if isinstance(active, bool) else None,
        revoked if isinstance(revoked, bool) else None,
        status,
    )


def _status(value: object) -> str | None:
    """A catalog status in its canonical spelling; another text kept as printed (short)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for known in SPHERE_STATUSES:
        if text.lower() == known.lower():
            return known
    return text[:64]


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
