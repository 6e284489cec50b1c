"""The live readers (issue 22) against loopback HTTPS stand-ins, reached by the UNMODIFIED
app through settings alone (tests/live_standins.py), storage on Azurite.

Shapes (credits): DPS ``Enrollment Group - Query`` and IoT Central 2022-07-31 enrollment
groups / certificate slots from Azure/azure-rest-api-specs examples (see
tests/enrollment_samples.py); ARM certificate lists as tests/arm_server.py documents; the
Azure Sphere ``Certificates - List By Catalog`` (2024-04-01) entries as the
azure-mgmt-sphere ``Certificate`` model and ``az sphere ca-certificate list`` print them
(``properties.certificate`` base64 DER, ``status``, ``thumbprint``, ``notBeforeUtc``,
``expiryUtc``; the published example lists none).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.alerts.registration import EnrollmentGroup, GroupSlot
from shared.app import handlers
from shared.app.registration_pull import pull_registrations
from shared.local import samples
from shared.readers.arm_certificates import ArmCertificateReader
from shared.readers.base import Budget
from shared.readers.dps import DpsReader
from shared.readers.iot_central import IotCentralReader
from shared.settings import Settings
from shared.storage import registrations as registrations_store
from shared.storage.connections import app_credential
from tests import enrollment_samples as groups_of
from tests.arm_server import HANG, Reply, certificates_path
from tests.live_standins import (
    CENTRAL_API,
    DPS_API,
    StandIns,
    central_groups_path,
    central_pages,
    central_slot_path,
    dps_pages,
    dps_query_path,
)
from tests.registration_samples import DPS_ID, SUB, arm_entry

NOW = datetime(2020, 8, 10, 9, 0, tzinfo=UTC)
INSIDE = datetime(2020, 7, 1, tzinfo=UTC)
RENEWED = datetime(2020, 8, 1, tzinfo=UTC)
DPS = DPS_ID.lower()
DPS_NAME = DPS_ID.rsplit("/", 1)[1]
DPS_CERTS = certificates_path(DPS_ID)
DPS_QUERY = dps_query_path(DPS_NAME)
APP = "contoso-fleet"
CATALOG_ID = f"{SUB}/providers/Microsoft.AzureSphere/catalogs/Fleet-Catalog"
CATALOG = CATALOG_ID.lower()


def tenant(n: int) -> str:
    return f"2eed{n:04x}-2222-4333-8444-955556666777"


def pair(n: int) -> tuple[samples.Issued, samples.Issued]:
    return (
        samples.tenant_ca(tenant(n), INSIDE, key_seed=4000 + 2 * n),
        samples.tenant_ca(tenant(n), RENEWED, key_seed=4001 + 2 * n),
    )


def sha1(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der, usedforsecurity=False).hexdigest().upper()


def sha256(issued: samples.Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def settings_for(**env: str) -> Settings:
    return Settings.from_env({**os.environ, **env})


def dps_certificates(entries: list[tuple[str, samples.Issued, bool]]) -> Reply:
    return Reply(200, {"value": [arm_entry(DPS_ID, n, c, verified=v) for n, c, v in entries]})


def snapshot(rt: handlers.Runtime, target: str) -> Any:
    return next(s for s in rt.store.registrations.snapshots() if s.target == target)


def targets(rt: handlers.Runtime) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in rt.store.report()["targets"]}


def read_dps(settings: Settings) -> Any:
    """The DPS reader alone (what the pull hands to the store), with the app's identity."""
    budget = Budget(60)
    arm = ArmCertificateReader(settings, app_credential(), budget)
    try:
        return DpsReader(settings, app_credential(), budget, arm).read(
            settings.registration_targets[0]
        )
    finally:
        arm.close()


# --- DPS: certificate list and enrollment groups, one snapshot --------------------------------


def test_dps_groups_are_paged_by_continuation_and_read_with_the_dps_scope(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    old, new = pair(1)
    world.arm.script(DPS_CERTS, dps_certificates([("ca-2020", old, True), ("ca-2021", new, True)]))
    fleet = [groups_of.dps_symmetric_key_group(f"keys-{n:03d}") for n in range(249)]
    fleet.insert(120, groups_of.dps_ca_reference_group("sphere", "ca-2020"))
    world.dps.script(DPS_QUERY, *dps_pages(fleet, 100))
    settings = settings_for(REGISTRATION_TARGETS=DPS_ID)

    outcome = read_dps(settings)

    assert outcome.error is None and outcome.listing is not None
    groups = outcome.listing.groups
    assert groups is not None and len(groups) == 250
    # The renewal is verified in the DPS list, but no group names it: the snapshot says so.
    assert groups[120] == EnrollmentGroup("sphere", True, (GroupSlot("primary", None, "ca-2020"),))
    assert {c.name: c.thumbprint for c in outcome.listing.certificates} == {
        "ca-2020": sha1(old),
        "ca-2021": sha1(new),
    }
    posts = [s for s in world.dps.seen if s.method == "POST"]
    assert [s.headers.get("x-ms-continuation") for s in posts] == [None, "token-1", "token-2"]
    assert {s.query for s in posts} == {f"api-version={DPS_API}"}
    assert {json.loads(s.body)["query"] for s in posts} == {"SELECT *"}
    # The identity endpoint was asked for the DPS data-plane resource (the stand-in refuses
    # any other audience) and for ARM's.
    asked = " ".join(world.identity.requests)
    assert "resource=https://azure-devices-provisioning.net" in asked
    assert f"resource={world.arm.base_url}" in asked

    world.dps.script(DPS_QUERY, *dps_pages(fleet, 100))  # the same DPS, read by the pull
    result = pull_registrations(app_runtime.store, settings, NOW)

    (recorded,) = result.outcomes
    assert (recorded.certificates, recorded.groups, recorded.error) == (2, 250, None)
    assert snapshot(app_runtime, DPS).source == "live"


@pytest.mark.xfail(
    not hasattr(registrations_store, "_groups_of"),
    strict=True,
    reason="the RegistrationStore that records groups (the lead's registrations.py) is not "
    "merged here yet",
)
def test_the_recorded_dps_snapshot_holds_the_groups_read(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    old, new = pair(2)
    world.arm.script(DPS_CERTS, dps_certificates([("ca-2020", old, True), ("ca-2021", new, True)]))
    world.dps.script(
        DPS_QUERY,
        Reply(200, [groups_of.dps_ca_reference_group("sphere", "ca-2020")]),
    )
    pull_registrations(app_runtime.store, settings_for(REGISTRATION_TARGETS=DPS_ID), NOW)
    assert snapshot(app_runtime, DPS).groups == (
        EnrollmentGroup("sphere", True, (GroupSlot("primary", None, "ca-2020"),)),
    )


def test_a_group_whose_reference_name_was_re_pointed_is_flagged(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    old, new = pair(3)
    world.dps.script(DPS_QUERY, Reply(200, [groups_of.dps_ca_reference_group("sphere", "ca")]))
    world.arm.script(DPS_CERTS, dps_certificates([("ca", old, True)]))
    settings = settings_for(REGISTRATION_TARGETS=DPS_ID)
    assert pull_registrations(app_runtime.store, settings, NOW).outcomes[0].warnings == ()

    # Someone deleted "ca" and uploaded another CA under the same name: every group that
    # names "ca" now trusts the other CA.
    world.arm.script(DPS_CERTS, dps_certificates([("ca", new, True)]))
    later = pull_registrations(app_runtime.store, settings, NOW + timedelta(hours=6))

    (warning,) = later.outcomes[0].warnings
    assert warning == (
        f"certificate name 'ca' now holds {sha1(new)} (was {sha1(old)}); named by sphere/primary"
    )
    assert later.to_json()["targets"][0]["warnings"] == [warning]


@pytest.mark.parametrize(
    ("reply", "code", "requests"),
    [
        ("wrong-audience", "unauthorized", 1),
        (
            Reply(403, {"errorCode": 403001, "message": "no Data Reader role", "trackingId": "t"}),
            "forbidden",
            1,
        ),
        (None, "not-found", 1),
        (
            Reply(429, {"errorCode": 429001, "message": "slow"}, (("Retry-After", "3600"),)),
            "throttled",
            1,
        ),
        (Reply(200, {}), "malformed-listing", 1),
        (Reply(200, {"value": None}), "malformed-listing", 1),
        (Reply(200, {"error": {"code": "Oops", "message": "but 200"}}), "malformed-listing", 1),
        (Reply(302, None, (("Location", "https://127.0.0.1:9/elsewhere"),)), "http-302", 1),
    ],
)
def test_an_unreadable_dps_keeps_its_last_good_snapshot(
    app_runtime: handlers.Runtime,
    world: StandIns,
    reply: Reply | str | None,
    code: str,
    requests: int,
) -> None:
    old, new = pair(4)
    world.arm.script(DPS_CERTS, dps_certificates([("ca", old, True)]))
    world.dps.script(DPS_QUERY, Reply(200, [groups_of.dps_ca_reference_group("sphere", "ca")]))
    settings = settings_for(REGISTRATION_TARGETS=DPS_ID)
    assert pull_registrations(app_runtime.store, settings, NOW).ok
    good = snapshot(app_runtime, DPS)

    # Six hours later the certificate list has the renewal, but the groups cannot be read.
    world.arm.script(DPS_CERTS, dps_certificates([("ca", old, True), ("new", new, True)]))
    world.dps.clear()
    if reply == "wrong-audience":
        world.dps.audience = "https://some-other-service.example"
    elif reply is None:
        world.dps.script(DPS_QUERY)  # nothing scripted: the stand-in answers 404
    else:
        world.dps.script(DPS_QUERY, reply)
    started = time.monotonic()
    result = pull_registrations(app_runtime.store, settings, NOW + timedelta(hours=6))

    (outcome,) = result.outcomes
    assert outcome.error is not None and outcome.error[0] == code, outcome.error
    assert world.dps.count(DPS_QUERY.lower()) == requests
    assert time.monotonic() - started < 30  # no Retry-After of an hour waited for
    kept = snapshot(app_runtime, DPS)
    assert (kept.entries, kept.seen_at) == (good.entries, good.seen_at)  # not half a DPS
    assert targets(app_runtime)[DPS]["error"]["code"] == code


# --- IoT Central ---------------------------------------------------------------------------


def test_iot_central_groups_are_paged_by_next_link_and_each_slot_is_read(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    old, new = pair(5)
    fleet = [
        groups_of.central_group("renewing"),
        groups_of.central_group("retired", enabled=False),
        groups_of.central_group("keys", x509=False),
    ]
    world.central.script(
        central_groups_path(APP), *central_pages(world.central.base_url, APP, fleet, 2)
    )
    world.central.script(
        central_slot_path(APP, "renewing", "primary"), Reply(200, groups_of.central_slot(sha1(old)))
    )
    world.central.script(
        central_slot_path(APP, "renewing", "secondary"),
        Reply(200, groups_of.central_slot(sha1(new), verified=False)),
    )
    # "retired" holds the renewal verified, but the group is disabled; its primary is empty.
    world.central.script(
        central_slot_path(APP, "retired", "secondary"),
        Reply(200, groups_of.central_slot(sha1(new))),
    )
    settings = settings_for(IOT_CENTRAL_APPS=f"https://{APP.upper()}.azureiotcentral.com")

    outcome = IotCentralReader(settings, app_credential(), Budget(60)).read(APP)

    assert outcome.error is None and outcome.listing is not None
    listing = outcome.listing
    assert (listing.target, listing.kind) == (APP, "iot-central")
    assert listing.groups == (
        EnrollmentGroup(
            "renewing",
            True,
            (
                GroupSlot("primary", sha1(old), "", True),
                GroupSlot("secondary", sha1(new), "", False),
            ),
        ),
        EnrollmentGroup("retired", False, (GroupSlot("secondary", sha1(new), "", True),)),
        EnrollmentGroup("keys", True, ()),
    )
    assert [(c.name, c.verified) for c in listing.certificates] == [
        ("renewing/primary", True),
        ("renewing/secondary", False),
        ("retired/secondary", True),
    ]
    seen = [(s.path, s.query) for s in world.central.seen]
    assert seen[:2] == [
        (central_groups_path(APP).lower(), f"api-version={CENTRAL_API}"),
        (central_groups_path(APP).lower(), f"api-version={CENTRAL_API}&$skip=1"),
    ]
    assert len(seen) == 6  # two pages, two slots of each X.509 group, none for "keys"
    assert "resource=https://apps.azureiotcentral.com" in " ".join(world.identity.requests)

    pages = central_pages(world.central.base_url, APP, fleet, 2)
    world.central.script(central_groups_path(APP), *pages)  # the same app, read by the pull
    result = pull_registrations(app_runtime.store, settings, NOW)
    (recorded,) = result.outcomes
    assert (recorded.target, recorded.certificates, recorded.groups) == (APP, 3, 3)
    row = targets(app_runtime)[APP]
    assert (row["kind"], row["source"], row["error"]) == ("iot-central", "live", None)


def test_a_central_next_link_to_another_origin_is_refused_before_it_is_sent(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    page = {"value": [], "nextLink": f"{world.arm.base_url}{central_groups_path(APP)}?page=2"}
    world.central.script(central_groups_path(APP), Reply(200, page))

    result = pull_registrations(app_runtime.store, settings_for(IOT_CENTRAL_APPS=APP), NOW)

    assert result.outcomes[0].error == (
        "malformed-listing",
        "a next page would leave the configured IoT Central",
    )
    assert world.arm.count() == 0  # the token never went to the other origin
    assert world.central.count() == 1


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(403, {"error": {"code": "Forbidden", "message": "not an app user"}}), "forbidden"),
        (
            Reply(429, {"error": {"code": "TooMany", "message": "x"}}, (("Retry-After", "999"),)),
            "throttled",
        ),
        (Reply(200, {"value": None}), "malformed-listing"),
        (Reply(200, [1, 2]), "malformed-listing"),
    ],
)
def test_an_unreadable_central_app_is_recorded_with_its_code(
    app_runtime: handlers.Runtime, world: StandIns, reply: Reply, code: str
) -> None:
    world.central.script(central_groups_path(APP), reply)
    result = pull_registrations(app_runtime.store, settings_for(IOT_CENTRAL_APPS=APP), NOW)
    assert result.outcomes[0].error is not None and result.outcomes[0].error[0] == code
    assert targets(app_runtime)[APP]["error"]["code"] == code


# --- Azure Sphere catalogs -----------------------------------------------------------------


def catalog_entry(name: str, issued: samples.Issued, status: str) -> dict[str, Any]:
    cert = issued.certificate
    return {
        "id": f"{CATALOG_ID}/certificates/{name}",
        "name": name,
        "type": "Microsoft.AzureSphere/catalogs/certificates",
        "properties": {
            "certificate": base64.b64encode(issued.der).decode(),
            "status": status,
            "subject": cert.subject.rfc4514_string(),
            "thumbprint": sha1(issued),
            "notBeforeUtc": cert.not_valid_before_utc.isoformat(),
            "expiryUtc": cert.not_valid_after_utc.isoformat(),
            "provisioningState": "Succeeded",
        },
    }


def test_a_sphere_catalog_records_each_tenant_ca_as_if_uploaded_with_its_status(
    app_runtime: handlers.Runtime, world: StandIns
) -> None:
    old, new = pair(6)
    path = f"{CATALOG_ID}/certificates"
    first = {
        "value": [catalog_entry("old", old, "Active")],
        "nextLink": f"{world.arm.base_url}{path}?api-version=2024-04-01&$skiptoken=2",
    }
    world.arm.script(
        path, Reply(200, first), Reply(200, {"value": [catalog_entry("new", new, "Inactive")]})
    )
    settings = settings_for(SPHERE_CATALOGS=CATALOG_ID)

    result = pull_registrations(app_runtime.store, settings, NOW)

    (outcome,) = result.outcomes
    assert (outcome.kind, outcome.certificates, outcome.error) == ("sphere-catalog", 2, None)
    assert world.arm.count(path.lower()) == 2  # the SDK followed the nextLink
    assert result.tenants == {tenant(6)}
    rows = {
        row["RowKey"]: row
        for row in app_runtime.store.iter_rows("tenantcas")
        if row["PartitionKey"] == tenant(6)
    }
    assert {sha: (r["catalog_status"], r["catalog"]) for sha, r in rows.items()} == {
        sha256(old): ("Active", CATALOG),
        sha256(new): ("Inactive", CATALOG),
    }
    certificates = {c["sha256_fingerprint"]: c for c in app_runtime.store.report()["certificates"]}
    assert certificates[sha256(old)]["sources"] == [f"live:{CATALOG}"]
    # The blob pipeline's analysis: the old CA is in the 2020 incident's window, the renewal not.
    assert (certificates[sha256(old)]["verdict"], certificates[sha256(new)]["verdict"]) == (
        "affected",
        "ok",
    )
    assert targets(app_runtime)[CATALOG]["error"] is None

    # The renewal becomes Active: the next pull writes the new status.
    world.arm.script(
        path,
        Reply(
            200,
            {"value": [catalog_entry("old", old, "Expired"), catalog_entry("new", new, "Active")]},
        ),
    )
    pull_registrations(app_runtime.store, settings, NOW + timedelta(hours=6))
    statuses = {
        row["RowKey"]: row["catalog_status"]
        for row in app_runtime.store.iter_rows("tenantcas")
        if row["PartitionKey"] == tenant(6)
    }
    assert statuses == {sha256(old): "Expired", sha256(new): "Active"}


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(200, {}), "malformed-listing"),
        (Reply(200, {"value": None}), "malformed-listing"),
        (
            Reply(403, {"error": {"code": "AuthorizationFailed", "message": "no Sphere Reader"}}),
            "forbidden",
        ),
        (HANG, "timeout"),
    ],
)
def test_an_unreadable_catalog_records_nothing_but_its_error(
    app_runtime: handlers.Runtime, world: StandIns, reply: Reply | str, code: str
) -> None:
    world.arm.script(f"{CATALOG_ID}/certificates", reply)
    settings = settings_for(SPHERE_CATALOGS=CATALOG_ID, REGISTRATION_PULL_BUDGET="3s")
    started = time.monotonic()
    result = pull_registrations(app_runtime.store, settings, NOW)
    assert time.monotonic() - started < 20  # the budget of 3 s, not a 30 s read, not 300 s
    assert result.outcomes[0].error is not None and result.outcomes[0].error[0] == code
    assert not list(app_runtime.store.iter_rows("tenantcas"))
    assert targets(app_runtime)[CATALOG]["error"]["code"] == code
