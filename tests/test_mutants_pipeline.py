"""Kill tests for the blob pipeline's issue-21 paths (shared/app/pipeline.py) on a real
Azurite, a handful of small blobs each: each target's outcome of an uploaded listing (a
stale listing names itself, and what it would have changed is left as it was), and a Sphere
CA catalog's expired entries, which never count as a renewal (DESIGN §4)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from shared.analysis.listings import Listing
from shared.app import handlers
from shared.local import samples
from tests.registration_samples import HUB_ID, arm_listing
from tests.test_mutants_storage import deliver, put, uploads_by_name

SECOND_HUB = HUB_ID.replace("Fleet-Hub", "Second-Hub")
TENANT = "5707a9e0-1111-4222-8333-944445555666"
OLD = samples.tenant_ca(TENANT, datetime(2020, 7, 1, tzinfo=UTC), key_seed=4100)
NEW = samples.tenant_ca(TENANT, datetime(2020, 8, 1, tzinfo=UTC), key_seed=4101)


def sha1(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der, usedforsecurity=False).hexdigest().upper()


def sha256(issued: samples.Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def test_a_listing_older_than_the_snapshot_is_named_stale_and_changes_nothing(
    app_runtime: handlers.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """One document, two targets: the hub has a snapshot made after the blob was written
    (stale-listing, kept as it was), the second hub none (recorded). The upload row says which."""
    caplog.set_level(logging.INFO, logger="ca_watch")
    rt = app_runtime
    later = datetime.now(UTC) + timedelta(days=1)
    live = Listing(HUB_ID.lower(), "iot-hub", "Fleet-Hub", "iot-hub-certificates", ())
    rt.store.registrations.record_listing(live, "live", later)
    hub = json.loads(arm_listing(HUB_ID, [("old", OLD, True)]))["value"]
    second = json.loads(arm_listing(SECOND_HUB, [("old", OLD, True)]))["value"]
    put(rt, "both.json", json.dumps({"value": hub + second}).encode())
    deliver(rt, "both.json")

    assert uploads_by_name(rt)["both.json"]["listing_outcomes"] == [
        {"target": HUB_ID.lower(), "outcome": "stale-listing"},
        {"target": SECOND_HUB.lower(), "outcome": "recorded"},
    ]
    snapshots = {s.target: s for s in rt.store.registrations.snapshots()}
    assert (snapshots[HUB_ID.lower()].source, snapshots[HUB_ID.lower()].entries) == ("live", ())
    assert snapshots[SECOND_HUB.lower()].source == "both.json"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"blob both.json: listing of {HUB_ID.lower()} is a stale-listing"]


def _catalog_entry(issued: samples.Issued, status: str) -> dict[str, object]:
    return {
        "id": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureSphere/catalogs/c"
        f"/certificates/{sha1(issued)}",
        "name": sha1(issued),
        "type": "Microsoft.AzureSphere/catalogs/certificates",
        "properties": {
            "status": status,
            "thumbprint": sha1(issued),
            "certificate": base64.b64encode(issued.der).decode(),
        },
    }


@pytest.mark.parametrize("status", ["Expired", "Revoked"])
def test_a_catalog_entry_expired_or_revoked_is_marked_never_a_renewal(
    app_runtime: handlers.Runtime, status: str
) -> None:
    rt = app_runtime
    catalog = {"value": [_catalog_entry(OLD, "Active"), _catalog_entry(NEW, status)]}
    put(rt, "catalog.json", json.dumps(catalog).encode())
    deliver(rt, "catalog.json")
    revoked = {row["RowKey"]: row.get("revoked") for row in rt.store.iter_rows("tenantcas")}
    assert revoked == {sha256(OLD): None, sha256(NEW): True}


def test_a_catalog_entry_in_a_status_that_ends_nothing_is_not_marked(
    app_runtime: handlers.Runtime,
) -> None:
    rt = app_runtime
    catalog = {"value": [_catalog_entry(OLD, "Active"), _catalog_entry(NEW, "Inactive")]}
    put(rt, "catalog.json", json.dumps(catalog).encode())
    deliver(rt, "catalog.json")
    assert [row.get("revoked") for row in rt.store.iter_rows("tenantcas")] == [None, None]
