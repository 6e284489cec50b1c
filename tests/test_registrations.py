"""Registration evidence end to end on Azurite, through the registered blob function:
listings as uploads, resolution by evidence, and the renewal race (issue 10 items 0-2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.app import handlers
from shared.app.alert_pass import run_alerts
from shared.local import samples
from shared.local.runner import process_pending
from shared.storage.keys import iso
from tests.registration_samples import DPS_ID, HUB_ID, arm_listing, manifest, sphere_ca_list

NOW = datetime(2020, 7, 30, 9, 0, tzinfo=UTC)
AUG10 = datetime(2020, 8, 10, 9, 0, tzinfo=UTC)
INSIDE = datetime(2020, 7, 1, tzinfo=UTC)  # affected by the 2020 incident
RENEWED = datetime(2020, 8, 1, tzinfo=UTC)  # issued after the window: a real replacement


def tenant(n: int) -> str:
    return f"5eed{n:04x}-1111-4222-8333-944445555666"


def pair(n: int) -> tuple[samples.Issued, samples.Issued]:
    old = samples.tenant_ca(tenant(n), INSIDE, key_seed=1000 + 2 * n)
    new = samples.tenant_ca(tenant(n), RENEWED, key_seed=1001 + 2 * n)
    return old, new


# The issuer that signed every sample tenant CA (what `azsphere ca download-chain` writes):
# with it on record, a renewal no target lists is authenticated (DESIGN §4 rule 2).
CHAIN = {"chain/pca.cer": samples.azure_sphere_pca().der}


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)


def plan(rt: handlers.Runtime, now: datetime = AUG10) -> dict[str, Any]:
    return run_alerts(store=rt.store, settings=rt.settings, rules=rt.rules, now=now, dry_run=True)


def run(rt: handlers.Runtime, now: datetime = AUG10) -> dict[str, Any]:
    return run_alerts(store=rt.store, settings=rt.settings, rules=rt.rules, now=now)


def open_index_shas(rt: handlers.Runtime) -> set[str]:
    far = datetime(2100, 1, 1, tzinfo=UTC)
    return {c.sha256 for c in rt.store.index.open_tenant_certificates(far, all_open=True)}


def sha(issued: samples.Issued) -> str:
    import hashlib

    return hashlib.sha256(issued.der).hexdigest()


def upload_row(rt: handlers.Runtime, name: str) -> dict[str, Any]:
    return next(u for u in rt.store.report()["uploads"] if u["name"] == name)


# --- item 0: the race --------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_renewal_pairs_processed_eight_at_once_plan_and_send_nothing(app_runtime, attempt) -> None:
    handlers.use_clock(lambda: NOW)
    files: dict[str, bytes] = {}
    for n in range(40):
        old, new = pair(n + 100 * attempt)
        files[f"t{n}/old.cer"] = old.der
        files[f"t{n}/renewed.cer"] = new.der
    upload(app_runtime, CHAIN)
    assert process_pending(app_runtime) == (1, 0)
    upload(app_runtime, files)
    assert process_pending(app_runtime, workers=8) == (80, 0)
    report = app_runtime.store.report()
    olds = [c for c in report["certificates"] if c["verdict"] == "affected"]
    assert len(olds) == 40 and all(c["resolved_by"] for c in olds)
    assert open_index_shas(app_runtime) == {
        c["sha256_fingerprint"]
        for c in report["certificates"]
        if c["verdict"] == "ok" and c["azure_sphere"]["role"] == "tenant-ca"
    }  # only the renewals, which are not due yet
    assert plan(app_runtime)["items"] == []
    document = run(app_runtime)
    assert document["items"] == [] and len(document["notices"]) == 40
    assert all(m.get("notices") for m in document["messages"])  # announcements only


def test_listings_processed_beside_certificates_leave_nothing_open(app_runtime) -> None:
    """Item 0 for evidence: hub listings (renewal verified) processed at the same time as
    the certificates, 8 at once; whatever the order, nothing is planned or sent."""
    handlers.use_clock(lambda: NOW)
    files: dict[str, bytes] = {}
    for n in range(24):
        old, new = pair(n + 500)
        hub = f"{HUB_ID}{n}"
        files[f"t{n}/old.cer"] = old.der
        files[f"t{n}/renewed.cer"] = new.der
        files[f"t{n}/hub.json"] = arm_listing(hub, [("old", old, True), ("new", new, True)])
    upload(app_runtime, files)
    assert process_pending(app_runtime, workers=8) == (72, 0)
    assert plan(app_runtime)["items"] == []
    document = run(app_runtime)  # nothing to alert; the 24 resolutions are announced once
    assert [m["notices"] for m in document["messages"]] == [24]
    assert run(app_runtime)["messages"] == []


def test_send_time_recheck_closes_a_stale_index_row(app_runtime) -> None:
    """The alert index keeps an old CA open (as the race used to leave it): the pass reads
    the tenant's CAs at send time, sends nothing and removes the row."""
    handlers.use_clock(lambda: NOW)
    old, new = pair(900)
    upload(app_runtime, {"old.cer": old.der, "new.cer": new.der, **CHAIN})
    process_pending(app_runtime)
    store = app_runtime.store
    (cert,) = [c for c in store.tenants.tenant_certificates(tenant(900)) if c.sha256 == sha(old)]
    store.index.place(cert, [], open_=True)  # the stale row a lost race left behind
    assert sha(old) in open_index_shas(app_runtime)
    assert plan(app_runtime)["items"] == []
    assert not any(m.get("items") and not m.get("notices") for m in run(app_runtime)["messages"])
    assert sha(old) not in open_index_shas(app_runtime)


# --- items 1 and 2: listings as uploads and resolution ---------------------------------


def test_listing_upload_is_recorded_with_its_format_and_target(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, _new = pair(1)
    upload(
        app_runtime,
        {
            "hub.json": arm_listing(HUB_ID, [("old", old, True)]),
            "dps.json": arm_listing(DPS_ID, [("old", old, True)], spelling="colons"),
        },
    )
    assert process_pending(app_runtime) == (2, 0)
    hub = upload_row(app_runtime, "hub.json")
    assert (hub["status"], hub["format"], hub["error"]) == (
        "analyzed",
        "iot-hub-certificates",
        None,
    )
    assert upload_row(app_runtime, "dps.json")["format"] == "dps-certificates"
    targets = {t["target"]: t for t in app_runtime.store.report()["targets"]}
    assert set(targets) == {HUB_ID.lower(), DPS_ID.lower()}
    assert targets[HUB_ID.lower()]["display_name"] == "Fleet-Hub"
    assert targets[DPS_ID.lower()]["kind"] == "dps"
    assert targets[HUB_ID.lower()]["certificates"] == 1


def test_renewal_stays_open_until_verified_in_every_target(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(2)
    upload(
        app_runtime,
        {
            "old.cer": old.der,
            "hub.json": arm_listing(HUB_ID, [("old", old, True)]),
            "dps.json": arm_listing(DPS_ID, [("old", old, True)]),
        },
    )
    process_pending(app_runtime)
    upload(app_runtime, {"new.cer": new.der})
    process_pending(app_runtime)
    # The renewal is on record, but neither target has it: still open.
    items = plan(app_runtime)["items"]
    assert items and {i["certificate"] for i in items} == {sha(old)}
    registration = items[0]["registration"]
    assert registration["evidence"] is True and registration["renewed"] == sha(new)
    assert sorted(registration["pending"]) == sorted([DPS_ID.lower(), HUB_ID.lower()])
    # Registered in the hub but not verified there; verified in the DPS.
    upload(
        app_runtime,
        {
            "hub.json": arm_listing(HUB_ID, [("old", old, True), ("new", new, False)]),
            "dps.json": arm_listing(DPS_ID, [("old", old, True), ("new", new, True)]),
        },
    )
    handlers.use_clock(lambda: NOW + timedelta(hours=1))
    process_pending(app_runtime)
    (item, *_) = plan(app_runtime)["items"]
    states = {t["target"]: (t["current"], t["renewed"]) for t in item["registration"]["targets"]}
    assert states == {
        HUB_ID.lower(): ("verified", "unverified"),
        DPS_ID.lower(): ("verified", "verified"),
    }
    assert item["registration"]["pending"] == [HUB_ID.lower()]
    # Verified in the hub too: resolved, nothing planned, the index row is gone.
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True), ("new", new, True)])})
    handlers.use_clock(lambda: NOW + timedelta(hours=2))
    process_pending(app_runtime)
    assert plan(app_runtime)["items"] == []
    assert sha(old) not in open_index_shas(app_runtime)
    report = {c["sha256_fingerprint"]: c for c in app_runtime.store.report()["certificates"]}
    assert report[sha(old)]["resolved_by"] == sha(new)
    assert {r["target"] for r in report[sha(new)]["registrations"]} == {
        HUB_ID.lower(),
        DPS_ID.lower(),
    }


def test_no_evidence_needs_an_authenticated_renewal_and_says_so(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(3)
    other_old, _ = pair(4)
    # A target that lists neither CA of tenant 3 does not count.
    upload(
        app_runtime, {"old.cer": old.der, "hub.json": arm_listing(HUB_ID, [("x", other_old, True)])}
    )
    process_pending(app_runtime)
    (item, *_) = plan(app_runtime)["items"]
    assert {k: item["registration"][k] for k in ("evidence", "renewed", "targets", "pending")} == {
        "evidence": False,
        "renewed": None,
        "targets": [],
        "pending": [],
    }
    upload(app_runtime, {"new.cer": new.der})
    process_pending(app_runtime)
    (item, *_) = plan(app_runtime)["items"]  # unauthenticated: still open, and said so
    assert item["state"] == "unauthenticated-renewal"
    assert item["registration"]["renewal_check"] == "unauthenticated"
    upload(app_runtime, CHAIN)
    process_pending(app_runtime)
    app_runtime.store.tenants.refresh_tenant(tenant(3))
    assert plan(app_runtime)["items"] == []


def test_snapshot_replacement_forgets_a_removed_certificate(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(5)
    upload(app_runtime, {"old.cer": old.der, "new.cer": new.der})
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True), ("new", new, True)])})
    process_pending(app_runtime)
    assert plan(app_runtime)["items"] == []
    # A newer listing of the hub under another name: the renewal was removed from it.
    handlers.use_clock(lambda: NOW + timedelta(hours=1))
    upload(app_runtime, {"later/hub.json": arm_listing(HUB_ID, [("old", old, True)])})
    process_pending(app_runtime)
    (item, *_) = plan(app_runtime)["items"]
    assert item["registration"]["pending"] == [HUB_ID.lower()]
    # An older listing processed late does not undo the newer one (ordered by the blob's
    # Last-Modified: tests/test_all_clear.py makes one older than the one on record).


@pytest.mark.parametrize("listing_first", [True, False])
def test_listing_and_certificate_in_either_order(app_runtime, listing_first) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(6)
    listing = {"dps.json": arm_listing(DPS_ID, [("old", old, True), ("new", new, False)])}
    certs = {"old.cer": old.der, "new.cer": new.der}
    for batch in (listing, certs) if listing_first else (certs, listing):
        upload(app_runtime, batch)
        process_pending(app_runtime)
    (item, *_) = plan(app_runtime)["items"]
    assert item["registration"]["pending"] == [DPS_ID.lower()]
    assert sha(old) in open_index_shas(app_runtime)


def test_listing_processed_twice_changes_nothing(app_runtime) -> None:
    from shared.local.runner import blob_trigger_argument, registered_function

    handlers.use_clock(lambda: NOW)
    old, new = pair(7)
    upload(app_runtime, {"old.cer": old.der, "new.cer": new.der})
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True)])})
    process_pending(app_runtime)
    before = app_runtime.store.report()
    analyze = registered_function("analyze_upload")
    analyze(blob_trigger_argument(app_runtime.settings.cert_container, "hub.json"))
    after = app_runtime.store.report()
    assert after["targets"] == before["targets"] and after["uploads"] == before["uploads"]
    assert sha(old) in open_index_shas(app_runtime)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"value": [{"id": "x", "properties": {"thumbprint": "AB"}}]}', "malformed-listing"),
        (b'{"value": [{"properties": {"thumbprint": "', "malformed-listing"),
        (b'{"schema": "ca-watch/registrations/v1", "target": ""}', "malformed-listing"),
    ],
)
def test_malformed_listing_is_unreadable_with_its_code(app_runtime, content, code) -> None:
    upload(app_runtime, {"bad.json": content})
    assert process_pending(app_runtime) == (1, 0)
    row = upload_row(app_runtime, "bad.json")
    assert (row["status"], row["error"]["code"]) == ("unreadable", code)
    assert app_runtime.store.report()["targets"] == []


def test_manifest_and_sphere_ca_list(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(8)
    upload(
        app_runtime,
        {
            "sphere.json": sphere_ca_list([(old, True), (new, False)]),
            "central.json": manifest("iot-central/fleet-app", [(old, True), (new, False)]),
        },
    )
    assert process_pending(app_runtime) == (2, 0)
    sphere = upload_row(app_runtime, "sphere.json")
    assert sphere["format"] == "azure-sphere-ca-list"
    assert sorted(sphere["certificates"]) == sorted([sha(old), sha(new)])  # analysed as uploads
    assert upload_row(app_runtime, "central.json")["format"] == "ca-watch-registrations"
    (item, *_) = plan(app_runtime)["items"]
    keys = ("target", "kind", "display_name", "current", "renewed")
    assert [{k: t[k] for k in keys} for t in item["registration"]["targets"]] == [
        {
            "target": "iot-central/fleet-app",
            "kind": "iot-central",
            "display_name": "iot-central/fleet-app",
            "current": "verified",
            "renewed": "unverified",
        }
    ]
    result = json.loads(
        app_runtime.blobs.get_blob_client(
            app_runtime.settings.results_container, "sphere.json.json"
        )
        .download_blob()
        .readall()
    )
    active = {e["sha256"]: e["is_active"] for e in result["results"][0]["listing"]["tenant_cas"]}
    assert active == {sha(old): True, sha(new): False}


def test_recheck_reads_only_due_tenants(app_runtime) -> None:
    """The send-time re-check reads the tenants of due items, not every tenant."""
    handlers.use_clock(lambda: NOW)
    old, _ = pair(9)
    later = samples.tenant_ca(tenant(10), datetime(2020, 9, 1, tzinfo=UTC), key_seed=77)
    upload(app_runtime, {"old.cer": old.der, "later.cer": later.der})
    process_pending(app_runtime)
    read: list[str] = []
    original = app_runtime.store.tenants.state

    def spy(tenant_id: str, *args: Any, **kwargs: Any) -> Any:
        read.append(tenant_id)
        return original(tenant_id, *args, **kwargs)

    app_runtime.store.tenants.state = spy  # type: ignore[method-assign]
    document = run(app_runtime)
    assert {i["tenant_id"] for i in document["items"]} == {tenant(9)}
    assert set(read) == {tenant(9)}
    assert iso(AUG10) == document["now"]


def test_report_and_messages_show_where_each_ca_is_registered(app_runtime, tmp_path) -> None:
    import io

    from shared.local.alerts_cmd import render_summary
    from shared.local.report_cmd import render_report

    handlers.use_clock(lambda: NOW)
    old, new = pair(11)
    lonely, _ = pair(12)
    upload(
        app_runtime,
        {
            "old.cer": old.der,
            "new.cer": new.der,
            "lonely.cer": lonely.der,
            "dps.json": arm_listing(DPS_ID, [("old", old, True), ("new", new, False)]),
        },
    )
    process_pending(app_runtime)
    out = io.StringIO()
    render_report(app_runtime.store.report(), out)
    text = out.getvalue()
    assert f"{tenant(11)}  " in text and "Fleet-DPS (dps, verified)" in text
    assert "Fleet-DPS (dps, unverified)" in text
    assert "no target lists it" in text  # the lonely tenant's CA
    assert "registration listing (dps-certificates)" in text
    summary = io.StringIO()
    render_summary(plan(app_runtime), summary)
    assert f"renewal pending for {tenant(11)} in: Fleet-DPS (dps: renewed CA unverified)" in (
        summary.getvalue()
    )
    document = run(app_runtime)
    assert document["messages"]
    outbox = list((tmp_path / "outbox").glob("*.txt"))
    body = "\n".join(path.read_text(encoding="utf-8") for path in outbox)
    assert "DPS Fleet-DPS: current CA verified, renewed CA registered, not verified" in body
    assert "az iot dps certificate verify --dps-name Fleet-DPS --resource-group" in body
    assert "No registration evidence was seen" in body  # the lonely tenant


def test_a_target_that_cannot_be_read_keeps_its_snapshot_and_is_named_daily(
    app_runtime, tmp_path
) -> None:
    from shared.analysis.listings import parse_listing

    handlers.use_clock(lambda: NOW)
    old, new = pair(13)
    upload(app_runtime, {"old.cer": old.der, "new.cer": new.der})
    process_pending(app_runtime)
    store = app_runtime.store
    (listing,) = parse_listing(json.loads(arm_listing(HUB_ID, [("old", old, True)])))
    assert store.registrations.record_listing(listing, "live", NOW) == {tenant(13)}
    store.tenants.refresh_tenant(tenant(13))
    store.registrations.record_target_error(
        HUB_ID, "iot-hub", "Fleet-Hub", "forbidden", "403 <b>AuthorizationFailed</b>", AUG10
    )
    (target,) = store.report()["targets"]
    assert target["error"] == {"code": "forbidden", "message": "403 <b>AuthorizationFailed</b>"}
    assert (target["certificates"], target["source"]) == (1, "live")  # last good snapshot
    document = run(app_runtime)
    (item, *_) = document["items"]
    assert item["registration"]["pending"] == [HUB_ID.lower()]  # the snapshot still counts
    (problem,) = document["self_health"]
    assert problem["problem"] == "registration-targets-failing"
    body = "\n".join(p.read_text(encoding="utf-8") for p in (tmp_path / "outbox").glob("*.html"))
    assert f"Fleet-Hub ({HUB_ID.lower()}): forbidden" in body
    assert "&lt;b&gt;AuthorizationFailed" in body
    # The next successful read clears the error on the target.
    store.registrations.record_listing(listing, "live", AUG10 + timedelta(hours=1))
    assert store.report()["targets"][0]["error"] is None
