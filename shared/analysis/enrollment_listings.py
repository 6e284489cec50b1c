"""Enrollment group documents (DESIGN §1 "Where trust is registered") as ``EnrollmentGroup``
values: ONE parser for both the live readers (shared/readers) and uploads, so a group read
live and the same group uploaded give the same answer.

- DPS: the objects ``POST /enrollmentGroups/query`` (api-version 2021-10-01) returns and
  ``az iot dps enrollment-group list`` / ``show`` prints: ``enrollmentGroupId``,
  ``provisioningStatus`` (``enabled`` | ``disabled``), ``attestation.type`` and
  ``attestation.x509.caReferences.primary|secondary`` (certificate *names* of the DPS
  certificate list) or ``attestation.x509.signingCertificates.primary|secondary`` (inline,
  ``info.sha1Thumbprint``).
- IoT Central (api-version 2022-07-31): a group of ``GET /api/enrollmentGroups`` (``id``,
  ``enabled``) and its two slots ``GET .../certificates/{primary|secondary}`` (``verified``,
  ``info.sha1Thumbprint``; a 404 slot is ``None`` here).

Pure: decoded JSON in, values out; errors are ``ListingError`` with a fixed text (never a
value from the document).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from shared.alerts.registration import EnrollmentGroup, GroupSlot
from shared.analysis.listing_bodies import certificate_body
from shared.analysis.listings import (
    MAX_ENTRIES,
    Listing,
    ListingError,
    RegisteredCertificate,
    normalize_thumbprint,
)

SLOTS = ("primary", "secondary")
FORMAT_IOT_CENTRAL = "iot-central-enrollment-groups"  # a Listing of kind iot-central
KIND_IOT_CENTRAL = "iot-central"
_MAX_ID = 128  # DPS and IoT Central cap enrollment group ids at 128 characters
_MAX_NAME = 256


def dps_groups(objects: list[Any]) -> tuple[EnrollmentGroup, ...]:
    """Every DPS enrollment group in a query answer (or ``az iot dps enrollment-group
    list`` output), in document order. A group that is neither X.509 nor a known other
    attestation, a duplicate id, or a status other than enabled/disabled is malformed."""
    if not isinstance(objects, list):
        raise ListingError("malformed-listing", "enrollment groups are an array of objects")
    if len(objects) > MAX_ENTRIES:
        raise ListingError("malformed-listing", f"more than {MAX_ENTRIES} enrollment groups")
    groups: list[EnrollmentGroup] = []
    seen: set[str] = set()
    for obj in objects:
        group = dps_group(obj)
        if group.group_id in seen:
            raise ListingError("malformed-listing", "an enrollment group id appears twice")
        seen.add(group.group_id)
        groups.append(group)
    return tuple(groups)


def dps_group(obj: object) -> EnrollmentGroup:
    """One DPS enrollment group object (``az iot dps enrollment-group show``)."""
    if not isinstance(obj, Mapping):
        raise ListingError("malformed-listing", "an enrollment group is not an object")
    group_id = _group_id(obj.get("enrollmentGroupId"))
    # The service's default is enabled (the REST model marks the field optional).
    status = obj.get("provisioningStatus", "enabled")
    if not isinstance(status, str) or status.lower() not in ("enabled", "disabled"):
        raise ListingError(
            "malformed-listing", "an enrollment group's provisioningStatus is not enabled/disabled"
        )
    attestation = obj.get("attestation")
    if not isinstance(attestation, Mapping):
        raise ListingError("malformed-listing", "an enrollment group has no attestation object")
    kind = attestation.get("type")
    if kind != "x509":
        if kind in ("symmetricKey", "tpm", "none"):
            # A key-based group trusts no CA: it covers no certificate (kept, with no slot,
            # so the count of groups read is honest).
            return EnrollmentGroup(group_id, status.lower() == "enabled", ())
        raise ListingError("malformed-listing", "an enrollment group's attestation type is unknown")
    x509 = attestation.get("x509")
    if not isinstance(x509, Mapping):
        raise ListingError("malformed-listing", "an X.509 enrollment group has no x509 object")
    slots = _ca_references(x509.get("caReferences")) + _signing(x509.get("signingCertificates"))
    return EnrollmentGroup(group_id, status.lower() == "enabled", slots)


def central_group(
    group_obj: object, primary_slot_obj: object | None, secondary_slot_obj: object | None
) -> EnrollmentGroup:
    """One IoT Central enrollment group with its two certificate slots (None: the slot
    answered 404, it is empty). A symmetric-key group has no slots to read: pass None."""
    if not isinstance(group_obj, Mapping):
        raise ListingError("malformed-listing", "an enrollment group is not an object")
    group_id = _group_id(group_obj.get("id"))
    enabled = group_obj.get("enabled")
    if not isinstance(enabled, bool):
        raise ListingError("malformed-listing", 'an enrollment group\'s "enabled" is not a bool')
    slots = []
    for slot, obj in zip(SLOTS, (primary_slot_obj, secondary_slot_obj), strict=True):
        if obj is None:
            continue
        if not isinstance(obj, Mapping):
            raise ListingError("malformed-listing", "a group certificate slot is not an object")
        verified = obj.get("verified")
        if not isinstance(verified, bool):
            raise ListingError(
                "malformed-listing", 'a certificate slot\'s "verified" is not a bool'
            )
        slots.append(GroupSlot(slot, _thumbprint_of(obj), "", verified))
    return EnrollmentGroup(group_id, enabled, tuple(slots))


def central_is_x509(group_obj: Mapping[str, Any]) -> bool:
    """Whether an IoT Central group has certificate slots to read (``attestation.type``)."""
    attestation = group_obj.get("attestation")
    return isinstance(attestation, Mapping) and attestation.get("type") == "x509"


def _group_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
        raise ListingError("malformed-listing", "an enrollment group has no valid id")
    return value


def _ca_references(value: object) -> tuple[GroupSlot, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ListingError("malformed-listing", "caReferences is not an object")
    slots = []
    for slot in SLOTS:
        name = value.get(slot)
        if name is None or name == "":
            continue
        if not isinstance(name, str) or len(name) > _MAX_NAME:
            raise ListingError("malformed-listing", "a caReferences name is not a short string")
        slots.append(GroupSlot(slot, None, name))
    return tuple(slots)


def _signing(value: object) -> tuple[GroupSlot, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ListingError("malformed-listing", "signingCertificates is not an object")
    slots = []
    for slot in SLOTS:
        cert = value.get(slot)
        if cert is None:
            continue
        if not isinstance(cert, Mapping):
            raise ListingError("malformed-listing", "a signing certificate is not an object")
        slots.append(GroupSlot(slot, _thumbprint_of(cert), ""))
    return tuple(slots)


def _thumbprint_of(cert: Mapping[str, Any]) -> str:
    """``info.sha1Thumbprint`` (what the services return), else the SHA-1 of ``certificate``
    (what a group document written by hand before upload carries); both must agree."""
    info = cert.get("info")
    if info is not None and not isinstance(info, Mapping):
        raise ListingError("malformed-listing", "a certificate's info is not an object")
    given = info.get("sha1Thumbprint") if info else None
    body = certificate_body(cert.get("certificate"))
    derived = hashlib.sha1(body, usedforsecurity=False).hexdigest().upper() if body else None
    if given is None:
        if derived is None:
            raise ListingError("malformed-listing", "a group certificate has no sha1Thumbprint")
        return derived
    thumbprint = normalize_thumbprint(given)
    if derived is not None and derived != thumbprint:
        raise ListingError(
            "malformed-listing", "a certificate's thumbprint does not match its body"
        )
    return thumbprint


def central_listing(subdomain: str, groups: tuple[EnrollmentGroup, ...]) -> Listing:
    """An IoT Central app as a Listing (live read or upload alike): target = the app's
    subdomain (lower case); ``certificates`` = every slot's thumbprint with its verified
    flag, named ``<groupId>/<slot>`` (IoT Central has no certificate list: the slots are it).
    """
    target = subdomain.strip().lower()
    if not target:
        raise ListingError("malformed-listing", "an IoT Central listing needs the app subdomain")
    certificates = tuple(
        RegisteredCertificate(
            name=f"{group.group_id}/{slot.slot}",
            thumbprint=slot.thumbprint,
            sha256=None,
            verified=bool(slot.verified),
        )
        for group in groups
        for slot in group.slots
        if slot.thumbprint is not None
    )
    return Listing(target, KIND_IOT_CENTRAL, target, FORMAT_IOT_CENTRAL, certificates, groups)


def repointed_names(before: Mapping[str, str], listing: Listing) -> tuple[str, ...]:
    """Warnings for certificate names of ``listing`` whose thumbprint differs from
    ``before`` (name -> thumbprint of the previous snapshot): re-uploading a CA under the
    same name silently swaps the CA every ``caReferences`` of that name trusts."""
    referenced: dict[str, list[str]] = {}
    for group in listing.groups or ():
        for slot in group.slots:
            if slot.name:
                referenced.setdefault(slot.name, []).append(f"{group.group_id}/{slot.slot}")
    warnings = []
    for cert in listing.certificates:
        old = before.get(cert.name)
        if cert.name and old is not None and old != cert.thumbprint:
            groups = referenced.get(cert.name)
            named = f"; named by {', '.join(groups)}" if groups else ""
            warnings.append(
                f"certificate name {cert.name!r} now holds {cert.thumbprint} (was {old}){named}"
            )
    return tuple(warnings)
