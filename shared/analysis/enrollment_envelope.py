"""Uploads of enrollment groups (issue 22): the ``ca-watch/enrollment-groups/v1`` envelope.

``az iot dps enrollment-group list`` / ``show`` and the IoT Central group and slot documents
never say which DPS or app they were read from (a certificate list does: each ``id`` is
under its hub or DPS). A group list alone would be evidence about no known target, or,
guessed from a file name, about the wrong one; so an upload of groups names its target in
an envelope, and a raw group document is refused (``enrollment-groups-need-target``) with
a message that says how to wrap it::

    {"schema": "ca-watch/enrollment-groups/v1",
     "target": "<DPS ARM resource id>" | "<IoT Central app subdomain>",
     "kind": "dps" | "iot-central",          (optional: the target says which)
     "certificates": <az iot dps certificate list output>,              (DPS only)
     "groups": [<az iot dps enrollment-group list objects>]              (DPS)
             | [{"group": <GET /api/enrollmentGroups/{id}>,
                 "primary": <GET .../certificates/primary> | null,
                 "secondary": <GET .../certificates/secondary> | null}]  (IoT Central)}

A DPS envelope carries the DPS certificate list too: a snapshot replaces the target's last
one whole, and groups of type *CA certificate* name CAs of that list by name, so the two are
only meaningful read together (as the live reader reads them in one pull).

The groups themselves are parsed by ``enrollment_listings`` (one parser for uploads and the
live readers). Pure: a decoded JSON value in, a ``Listing`` out; errors are ``ListingError``
with a fixed text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.analysis.enrollment_listings import (
    central_group,
    central_is_x509,
    central_listing,
    dps_groups,
)
from shared.analysis.listing_json import decode_listing_json
from shared.analysis.listings import (
    ENVELOPE_SCHEMA,
    FORMAT_DPS,
    FORMAT_DPS_GROUPS,
    Listing,
    ListingDocument,
    ListingError,
    claims_arm_target,
    fields_of,
    parse_listing_document,
)

_DPS_ID = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.devices/"
    r"provisioningservices/(?P<name>[^/]+)/?",
    re.IGNORECASE | re.ASCII,
)
_CENTRAL_HOST = ".azureiotcentral.com"


def read_uploaded_listing(data: bytes) -> ListingDocument:
    """Every listing an upload may be (``looks_like_listing`` said yes): the formats of
    ``listings``, and the enrollment group envelope."""
    return parse_uploaded_listing(decode_listing_json(data))


def parse_uploaded_listing(document: object) -> ListingDocument:
    if isinstance(document, Mapping):
        fields = fields_of(document)
        if fields.get("schema") == ENVELOPE_SCHEMA:
            listing = parse_envelope(fields)
            return ListingDocument(listing.format, (listing,))
    return parse_listing_document(document)


def parse_envelope(fields: Mapping[str, Any]) -> Listing:
    """The one target an envelope (lower-case keys) speaks for, with its groups."""
    target = fields.get("target")
    if not isinstance(target, str) or not target.strip():
        raise ListingError("malformed-listing", 'the envelope needs a "target" string')
    dps = _DPS_ID.fullmatch(target.strip())
    kind = fields.get("kind", "dps" if dps else "iot-central")
    if kind not in ("dps", "iot-central") or (kind == "dps") != (dps is not None):
        raise ListingError(
            "malformed-listing",
            'an envelope "kind" is dps (target: the DPS resource id) or iot-central '
            "(target: the app's subdomain)",
        )
    groups = fields.get("groups")
    if isinstance(groups, Mapping):
        groups = [groups]  # `az iot dps enrollment-group show` prints one group
    if not isinstance(groups, list):
        raise ListingError("malformed-listing", 'the envelope needs a "groups" array')
    if dps is not None:
        return _dps(target.strip().rstrip("/"), dps["name"], fields.get("certificates"), groups)
    return _central(target, groups)


def _dps(resource_id: str, name: str, certificates: object, groups: list[Any]) -> Listing:
    target = resource_id.lower()
    if certificates is None:
        raise ListingError(
            "malformed-listing",
            'a DPS envelope needs "certificates": what `az iot dps certificate list` prints '
            "(its groups name those certificates)",
        )
    try:
        document = parse_listing_document(certificates)
    except ListingError as exc:
        if exc.code != "empty-listing":
            raise
        registered: tuple[Any, ...] = ()  # a DPS with no certificate yet
    else:
        if (
            document.format != FORMAT_DPS
            or len(document.listings) != 1
            or document.listings[0].target != target
        ):
            raise ListingError(
                "malformed-listing",
                "the envelope's certificates are not the certificate list of its target DPS",
            )
        registered = document.listings[0].certificates
    return Listing(target, "dps", name, FORMAT_DPS_GROUPS, registered, dps_groups(groups))


def _central(target: str, groups: list[Any]) -> Listing:
    if claims_arm_target(target):
        raise ListingError(
            "manifest-claims-arm-target",
            "an IoT Central envelope names the app's subdomain, never an IoT Hub or DPS",
        )
    parsed = []
    for item in groups:
        if not isinstance(item, Mapping) or not isinstance(item.get("group"), Mapping):
            raise ListingError(
                "malformed-listing",
                'an IoT Central envelope lists {"group", "primary", "secondary"} objects',
            )
        group = item["group"]
        if central_is_x509(group):
            parsed.append(central_group(group, item.get("primary"), item.get("secondary")))
        else:
            parsed.append(central_group(group, None, None))  # a key group has no slots
    return central_listing(central_subdomain(target), tuple(parsed))


def central_subdomain(target: str) -> str:
    """An IoT Central app as ``IOT_CENTRAL_APPS`` names it: its subdomain, or a URL of it."""
    text = target.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    return text.removesuffix(_CENTRAL_HOST)
