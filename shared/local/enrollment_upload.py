"""``ca-watch upload --dps RESOURCE_ID GROUPS.json CERTIFICATES.json``: wrap what
``az iot dps enrollment-group list`` and ``az iot dps certificate list`` print into one
``ca-watch/enrollment-groups/v1`` envelope naming the DPS (docs/listings.md says why groups
need one), checked with the blob function's own parser before anything is uploaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.analysis.enrollment_envelope import parse_uploaded_listing
from shared.analysis.json_text import json_bytes
from shared.analysis.listing_json import decode_listing_json
from shared.analysis.listings import (
    ENVELOPE_SCHEMA,
    FORMAT_DPS,
    ListingError,
    parse_listing_document,
)
from shared.analysis.read_result import DEFAULT_MAX_UPLOAD_BYTES
from shared.local.common import EXIT_ACTION, EXIT_OK, UsageError, printable
from shared.settings import SettingsError, parse_registration_target

HOW = (
    "give the DPS resource id and two files: what `az iot dps enrollment-group list` and "
    "`az iot dps certificate list` print (-o json)"
)


def upload_dps(args: argparse.Namespace, runtime: Callable[[], Any]) -> int:
    """``ca-watch upload --dps``: check, then upload one new envelope blob."""
    from azure.core.exceptions import ResourceExistsError

    name, data = dps_envelope(args.dps, args.paths, datetime.now(UTC))
    if args.prefix:
        name = f"{args.prefix.strip('/')}/{name}"
    rt = runtime()
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    try:
        container.upload_blob(name, data, overwrite=False)
    except ResourceExistsError:
        if container.download_blob(name).readall() != data:
            print(
                f"ca-watch: {printable(name)} exists with other content; run again in a second",
                file=sys.stderr,
            )
            return EXIT_ACTION
    print(f"uploaded {name}: the enrollment groups and certificate list of DPS {args.dps}")
    return EXIT_OK


def dps_envelope(resource_id: str, paths: Sequence[str], now: datetime) -> tuple[str, bytes]:
    """(blob name, bytes) of the envelope; UsageError naming the file when one is not
    the groups or the certificate list of that DPS."""
    try:
        target = parse_registration_target(resource_id)
    except SettingsError:
        target = None
    if target is None or target.kind != "dps":
        raise UsageError(f"--dps needs a DPS resource id (.../provisioningServices/NAME); {HOW}")
    if len(paths) != 2:
        raise UsageError(f"--dps takes exactly two files; {HOW}")
    groups: Any = None
    certificates: Any = None
    for path in paths:
        document = _read(Path(path))
        if _is_certificate_list(document):
            certificates = document
        else:
            groups = document
    if groups is None or certificates is None:
        raise UsageError(f"one file must be the groups and one the certificate list; {HOW}")
    envelope = {
        "schema": ENVELOPE_SCHEMA,
        "target": target.resource_id,
        "kind": "dps",
        "certificates": certificates,
        "groups": groups,
    }
    try:
        parse_uploaded_listing(envelope)
    except ListingError as exc:
        raise UsageError(f"the DPS listing would be refused: {exc.code}: {exc.message}") from None
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    # A new name per upload: each is evidence of its moment; the newest replaces the older.
    return f"{target.name}.enrollment-groups.{stamp}.json", json_bytes(envelope)


def _read(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{printable(str(path))}: cannot read ({exc.strerror or exc})") from None
    if len(data) > DEFAULT_MAX_UPLOAD_BYTES:
        raise UsageError(f"{printable(str(path))}: larger than {DEFAULT_MAX_UPLOAD_BYTES} bytes")
    try:
        return decode_listing_json(data)
    except ListingError as exc:
        raise UsageError(f"{printable(str(path))}: {exc.code}: {exc.message}") from None


def _is_certificate_list(document: object) -> bool:
    try:
        return parse_listing_document(document).format == FORMAT_DPS
    except ListingError as exc:
        # An empty `az iot dps certificate list` prints [] (groups never are empty here).
        return exc.code == "empty-listing"
