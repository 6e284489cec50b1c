"""An all-clear that cannot be forged, fooled or frozen (issue 21), end to end on Azurite
through the registered blob and timer functions and the CLI: one test per hole the issue
names (each failed on the main before the change), and the closes that must still happen
(DESIGN §4 "Resolved", "The inventory never forgets", "Every resolution is announced")."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.registration import DONE, LOST_TRUST
from shared.analysis.listings import Listing, RegisteredCertificate
from shared.app import handlers
from shared.app.alert_pass import run_alerts
from shared.local import samples
from shared.local.cli import main
from shared.local.runner import process_pending
from tests.registration_samples import DPS_ID, HUB_ID, arm_listing, sphere_ca_list

NOW = datetime(2020, 7, 30, 9, 0, tzinfo=UTC)
AUG10 = datetime(2020, 8, 10, 9, 0, tzinfo=UTC)
INSIDE = datetime(2020, 7, 1, tzinfo=UTC)
RENEWED = datetime(2020, 8, 1, tzinfo=UTC)
TENANT = "a11c1ea2-1111-4222-8333-944445555666"
PCA = samples.azure_sphere_pca()


def sha(issued: samples.Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def sha1(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der, usedforsecurity=False).hexdigest().upper()


def pair(seed: int = 0) -> tuple[samples.Issued, samples.Issued]:
    old = samples.tenant_ca(TENANT, INSIDE, key_seed=3000 + 2 * seed)
    new = samples.tenant_ca(TENANT, RENEWED, key_seed=3001 + 2 * seed)
    return old, new


def look_alike(seed: int = 9) -> samples.Issued:
    """A certificate with the tenant's exact name, self-signed: anyone can make one."""
    return samples.look_alike_tenant_ca(TENANT, RENEWED + timedelta(days=1), 3200 + seed)


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)
    process_pending(rt)


def plan(rt: handlers.Runtime, now: datetime = AUG10) -> dict[str, Any]:
    return run_alerts(store=rt.store, settings=rt.settings, rules=rt.rules, now=now, dry_run=True)


def run(rt: handlers.Runtime, now: datetime = AUG10) -> dict[str, Any]:
    return run_alerts(store=rt.store, settings=rt.settings, rules=rt.rules, now=now)


def certificate(rt: handlers.Runtime, issued: samples.Issued) -> dict[str, Any]:
    return next(
        c for c in rt.store.report()["certificates"] if c["sha256_fingerprint"] == sha(issued)
    )


def is_open(rt: handlers.Runtime, issued: samples.Issued) -> bool:
    state = rt.store.tenants.state(TENANT)
    return state.is_open(sha(issued))


def live_runtime(monkeypatch: pytest.MonkeyPatch, *targets: str) -> handlers.Runtime:
    """The app's runtime with ``REGISTRATION_TARGETS`` set (read live), on the same tables."""
    monkeypatch.setenv("REGISTRATION_TARGETS", ",".join(targets))
    handlers.reset_runtime()
    return handlers.runtime()


def live_listing(entries: list[tuple[samples.Issued, bool]]) -> Listing:
    return Listing(
        HUB_ID.lower(),
        "iot-hub",
        "Fleet-Hub",
        "iot-hub-certificates",
        tuple(RegisteredCertificate(f"c{n}", sha1(c), None, v) for n, (c, v) in enumerate(entries)),
    )


# --- hole 1: any uploader could silence a tenant read live ---------------------------------


def test_an_upload_naming_a_live_target_changes_nothing(app_runtime, monkeypatch) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(1)
    rt = live_runtime(monkeypatch, HUB_ID)
    upload(rt, {"chain/pca.cer": PCA.der, "t/old.cer": old.der, "t/new.cer": new.der})
    rt.store.registrations.record_listing(live_listing([(old, True)]), "live", datetime.now(UTC))
    rt.store.tenants.refresh_tenant(TENANT)
    assert is_open(rt, old)
    # The forged "everything is registered" listing, and the empty one that erased evidence.
    forged = arm_listing(HUB_ID, [("old", old, True), ("new", new, True)])
    upload(rt, {"forged.json": forged})
    assert is_open(rt, old)
    row = next(u for u in rt.store.report()["uploads"] if u["name"] == "forged.json")
    assert row["listing_outcomes"] == [{"target": HUB_ID.lower(), "outcome": "live-target"}]
    (target,) = rt.store.report()["targets"]
    assert target["source"] == "live"  # the provenance the report shows
    item = plan(rt)["items"][0]
    (state,) = item["registration"]["targets"]
    assert state["source"] == "live" and state["seen_at"] and state["renewed"] == "absent"
    # The operators hear of it: someone tried to override a live target.
    health = {p["problem"]: p for p in run(rt, NOW + timedelta(hours=1))["self_health"]}
    assert "listings-ignored" in health


# --- hole 2: a look-alike or a revoked renewal closed the tenant ---------------------------


def test_a_self_signed_look_alike_never_closes_the_tenant(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, _ = pair(2)
    fake = look_alike()
    upload(app_runtime, {"chain/pca.cer": PCA.der, "t/old.cer": old.der, "t/new.cer": fake.der})
    assert is_open(app_runtime, old)
    cert = certificate(app_runtime, old)
    assert cert["state"] == "look-alike" and cert["look_alikes"] == [sha(fake)]
    assert cert["renewal_check"] == "look-alike"
    (notice,) = run(app_runtime)["notices"]  # flagged to the operators, once per channel
    assert (notice["kind"], notice["renewed"]) == ("look-alike", sha(fake))
    app_runtime.store.tenants.refresh_tenant(TENANT)  # written again by every refresh ...
    assert run(app_runtime)["notices"] == [
        {**notice, "channels": {"outbox": "sent"}}
    ]  # ... but the ledger has it: nothing sent twice, and the row is let go
    assert run(app_runtime)["notices"] == []


def test_a_renewal_signed_by_another_key_under_the_same_issuer_name_is_a_look_alike(
    app_runtime,
) -> None:
    handlers.use_clock(lambda: NOW)
    old, _ = pair(3)
    forger = samples.azure_sphere_pca(seed=77)  # same name as PCA01, another key
    fake = samples.tenant_ca(TENANT, RENEWED, key_seed=3333, issuer=forger)
    upload(app_runtime, {"chain/pca.cer": PCA.der, "t/old.cer": old.der, "t/new.cer": fake.der})
    assert is_open(app_runtime, old)
    assert certificate(app_runtime, old)["state"] == "look-alike"


def test_a_revoked_renewal_in_a_sphere_ca_list_never_counts(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(4)
    listing = json.loads(sphere_ca_list([(old, True), (new, False)]))
    listing[1]["IsRevoked"] = True
    upload(app_runtime, {"chain/pca.cer": PCA.der, "sphere.json": json.dumps(listing).encode()})
    assert is_open(app_runtime, old)
    assert certificate(app_runtime, new)["revoked"] is True


def test_an_unauthenticated_renewal_keeps_the_tenant_open_and_says_to_upload_the_chain(
    app_runtime,
) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(5)
    upload(app_runtime, {"t/old.cer": old.der, "t/new.cer": new.der})  # no issuer on record
    assert is_open(app_runtime, old)
    assert certificate(app_runtime, old)["state"] == "unauthenticated-renewal"
    upload(app_runtime, {"chain/pca.cer": PCA.der})
    app_runtime.store.tenants.refresh_tenant(TENANT)
    assert not is_open(app_runtime, old)  # the chain authenticates it


# --- the closes that must still happen ----------------------------------------------------


def test_an_authenticated_renewal_with_no_target_closes_and_is_announced(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(6)
    upload(app_runtime, {"chain/pca.cer": PCA.der, "t/old.cer": old.der, "t/new.cer": new.der})
    assert not is_open(app_runtime, old)
    cert = certificate(app_runtime, old)
    assert cert["state"] == "resolved" and cert["resolution_basis"] == "authenticated-renewal"
    first = run(app_runtime)
    (notice,) = first["notices"]
    assert notice["kind"] == "resolved" and notice["renewed"] == sha(new)
    assert notice["channels"] == {"outbox": "sent"}
    outbox = Path(os.environ["ALERT_OUTBOX_DIR"])
    texts = [p.read_text() for p in outbox.rglob("*.txt")]
    assert any("no target ever listed the current CA" in t and sha1(new) in t for t in texts)
    assert run(app_runtime)["notices"] == []  # exactly once


def test_a_renewal_verified_in_every_target_closes_with_its_evidence_announced(
    app_runtime,
) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(7)
    upload(app_runtime, {"t/old.cer": old.der, "t/new.cer": new.der})  # unauthenticated
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True)])})
    upload(app_runtime, {"dps.json": arm_listing(DPS_ID, [("old", old, True)])})
    assert is_open(app_runtime, old)
    both = [("old", old, True), ("new", new, True)]
    upload(app_runtime, {"hub2.json": arm_listing(HUB_ID, both)})
    assert is_open(app_runtime, old)  # the DPS is still pending
    upload(app_runtime, {"dps2.json": arm_listing(DPS_ID, both)})
    assert not is_open(app_runtime, old)  # rule 1 needs no authentication
    (notice,) = run(app_runtime)["notices"]
    sources = sorted((e["display_name"], e["source"]) for e in notice["evidence"])
    assert sources == [("Fleet-DPS", "dps2.json"), ("Fleet-Hub", "hub2.json")]
    assert all(e["seen_at"] and e["renewed"] == "verified" for e in notice["evidence"])


# --- hole 5: evidence could freeze ------------------------------------------------------------


def test_a_future_clock_does_not_freeze_later_listings(app_runtime) -> None:
    old, new = pair(8)
    handlers.use_clock(lambda: datetime(2099, 1, 1, tzinfo=UTC))  # `process --now 2099`
    upload(app_runtime, {"t/old.cer": old.der, "t/new.cer": new.der})
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True)])})
    handlers.use_clock(lambda: NOW)
    upload(
        app_runtime, {"hub2.json": arm_listing(HUB_ID, [("old", old, True), ("new", new, True)])}
    )
    (target,) = app_runtime.store.report()["targets"]
    assert target["source"] == "hub2.json"  # ordered by Last-Modified, not by --now
    assert not is_open(app_runtime, old)


def test_an_older_listing_arriving_later_is_a_stale_listing(app_runtime, capsys) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(9)
    upload(app_runtime, {"t/old.cer": old.der, "t/new.cer": new.der})
    listing = live_listing([(old, True), (new, True)])
    later = datetime.now(UTC) + timedelta(hours=1)
    app_runtime.store.registrations.record_listing(listing, "newer.json", later)
    upload(app_runtime, {"older.json": arm_listing(HUB_ID, [("old", old, True)])})
    row = next(u for u in app_runtime.store.report()["uploads"] if u["name"] == "older.json")
    assert row["listing_outcomes"][0]["outcome"] == "stale-listing"
    assert main(["process"]) == 0  # nothing pending; the CLI names ignored listings below
    capsys.readouterr()
    main(["report"])  # the text report says the listing changed nothing, and why
    assert f"listing ignored (stale-listing: {HUB_ID.lower()})" in capsys.readouterr().out
    page = app_runtime.store.report()
    from shared.report.fleet import ignored_listings

    (row,) = ignored_listings(page["uploads"])
    assert (row["name"], row["error"]["code"]) == ("older.json", "stale-listing")
    ignored = app_runtime.store.uploads.failed_uploads(NOW, datetime.now(UTC))
    assert [(r["name"], r["error_code"]) for r in ignored] == [("older.json", "stale-listing")]
    (target,) = app_runtime.store.report()["targets"]
    assert target["source"] == "newer.json"


# --- hole 6: a target that dropped both CAs closed the tenant -------------------------------


def test_a_target_that_drops_the_current_ca_without_the_renewal_has_lost_trust(
    app_runtime,
) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(10)
    upload(app_runtime, {"chain/pca.cer": PCA.der, "t/old.cer": old.der, "t/new.cer": new.der})
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True)])})
    other = samples.tenant_ca(None, INSIDE, key_seed=3999)
    upload(app_runtime, {"hub2.json": arm_listing(HUB_ID, [("other", other, True)])})
    assert is_open(app_runtime, old)
    cert = certificate(app_runtime, old)
    assert cert["state"] == "lost-trust" and cert["lost_trust"] == [HUB_ID.lower()]
    (item, *_) = plan(app_runtime)["items"]
    (target,) = item["registration"]["targets"]
    assert target["status"] == LOST_TRUST and item["registration"]["lost_trust"]
    upload(app_runtime, {"hub3.json": arm_listing(HUB_ID, [("new", new, True)])})
    assert not is_open(app_runtime, old)
    (item_after,) = [
        t
        for t in app_runtime.store.tenants.state(TENANT).resolutions[sha(old)].registration.targets
    ]
    assert item_after.status == DONE


# --- hole 7: the inventory forgot ------------------------------------------------------------


def test_two_ca_certificate_files_of_two_tenants_both_stay(
    app_runtime, capsys, tmp_path, monkeypatch
) -> None:
    handlers.use_clock(lambda: NOW)
    a = samples.tenant_ca("aaaaaaaa-1111-4222-8333-944445555666", INSIDE, key_seed=4001)
    b = samples.tenant_ca("bbbbbbbb-1111-4222-8333-944445555666", INSIDE, key_seed=4002)
    for folder, issued in (("tenant-a", a), ("tenant-b", b)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "CAcertificate.cer").write_bytes(issued.der)
    monkeypatch.chdir(tmp_path)
    assert main(["upload", "tenant-a/CAcertificate.cer", "tenant-b/CAcertificate.cer"]) == 0
    assert "uploaded tenant-a/CAcertificate.cer" in capsys.readouterr().out
    process_pending(app_runtime)
    report = app_runtime.store.report()
    assert {sha(a), sha(b)} <= {c["sha256_fingerprint"] for c in report["certificates"]}
    # Another file under a taken name is refused without --replace ...
    (tmp_path / "tenant-a" / "CAcertificate.cer").write_bytes(b.der)
    assert main(["upload", "tenant-a/CAcertificate.cer"]) == 1
    assert "--replace" in capsys.readouterr().err
    # ... and with it, the CA it overwrote stays watched.
    assert main(["upload", "--replace", "tenant-a/CAcertificate.cer"]) == 0
    process_pending(app_runtime)
    tenant_a = app_runtime.store.tenants.state("aaaaaaaa-1111-4222-8333-944445555666")
    assert tenant_a.is_open(sha(a))


def test_deleting_the_blob_of_a_tenant_ca_changes_nothing_and_retire_does(
    app_runtime, capsys
) -> None:
    handlers.use_clock(lambda: NOW)
    old, _ = pair(11)
    upload(app_runtime, {"old.cer": old.der})
    upload(app_runtime, {"old.cer": b"-----BEGIN CERTIFICATE REQUEST-----\n"})  # overwritten
    assert is_open(app_runtime, old)
    assert main(["retire", sha1(old), "--by", "ops"]) == 0
    assert not is_open(app_runtime, old)
    cert = certificate(app_runtime, old)
    assert cert["state"] == "retired" and cert["retired"]["by"] == "ops"
    (notice,) = run(app_runtime)["notices"]
    assert notice["kind"] == "retired" and notice["by"] == "ops"


def test_retiring_a_junk_upload_hides_it(app_runtime, capsys) -> None:
    """Issue 24 "Mistakes cannot be undone": one stray CSR made `report` exit 1 for ever."""
    handlers.use_clock(lambda: NOW)
    upload(app_runtime, {"oops.csr": b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n"})
    assert main(["report"]) == 1
    assert main(["retire", "oops.csr", "--by", "ops", "--note", "uploaded by mistake"]) == 0
    assert main(["report"]) == 0
    assert main(["retire", "never-uploaded.cer", "--by", "ops"]) == 2
    (row,) = app_runtime.store.report()["uploads"]
    assert row["retired"]["by"] == "ops" and row["retired"]["note"] == "uploaded by mistake"


# --- hole 8: an ack was forever --------------------------------------------------------------


def test_a_tenant_ack_never_covers_a_ca_first_seen_later_and_can_be_withdrawn(
    app_runtime, capsys
) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(12)
    upload(app_runtime, {"t/old.cer": old.der})
    assert main(["ack", TENANT, "--by", "ops"]) == 0
    assert not is_open(app_runtime, old)
    upload(app_runtime, {"t/new.cer": new.der})
    assert is_open(app_runtime, new)  # the renewal uploaded afterwards is not silenced
    cert = certificate(app_runtime, old)
    assert cert["acknowledged"]["by"] == "ops" and cert["acknowledged"]["scope"] == "tenant"
    assert main(["ack", TENANT, "--withdraw", "--by", "ops"]) == 0
    assert is_open(app_runtime, old)
    kinds = sorted(n["kind"] for n in run(app_runtime)["notices"])
    assert kinds == ["ack-withdrawn", "acknowledged"]


def test_an_ack_until_a_date_ends_by_itself(app_runtime, capsys) -> None:
    handlers.use_clock(lambda: NOW)
    old, _ = pair(13)
    upload(app_runtime, {"t/old.cer": old.der})
    until = datetime.now(UTC) + timedelta(days=2)
    assert main(["ack", sha1(old), "--by", "ops", "--until", until.isoformat()]) == 0
    cert = certificate(app_runtime, old)
    assert cert["acknowledged"]["until"] and cert["state"] == "acknowledged"
    state = app_runtime.store.tenants.state(TENANT, now=until + timedelta(seconds=1))
    assert state.is_open(sha(old))
    assert main(["ack", sha1(old), "--by", "ops", "--until", "2001-01-01"]) == 2


# --- issue 22: the renewal observed Active while a target is still pending ------------------


def test_a_renewal_active_in_its_catalog_with_a_target_pending_sends_the_activated_alert(
    app_runtime,
) -> None:
    handlers.use_clock(lambda: NOW)
    old, new = pair(14)
    upload(app_runtime, {"t/old.cer": old.der, "t/new.cer": new.der})
    upload(app_runtime, {"hub.json": arm_listing(HUB_ID, [("old", old, True)])})
    catalog = "/subscriptions/s/resourcegroups/rg/providers/microsoft.azuresphere/catalogs/c"
    # What the live Sphere catalog reader records on the renewal's row (issue 22 §3).
    app_runtime.store.tenants.add(
        TENANT, sha(new), {"catalog": catalog, "catalog_status": "Inactive"}
    )
    app_runtime.store.tenants.refresh_tenant(TENANT)
    assert run(app_runtime)["notices"] == []  # inactive: nothing has happened yet
    app_runtime.store.tenants.add(TENANT, sha(new), {"catalog_status": "Active"})
    app_runtime.store.tenants.refresh_tenant(TENANT)
    (notice,) = run(app_runtime)["notices"]
    assert notice["kind"] == "activated" and notice["renewed"] == sha(new)
    assert [e["display_name"] for e in notice["evidence"]] == ["Fleet-Hub"]
    app_runtime.store.tenants.refresh_tenant(TENANT)
    assert run(app_runtime)["notices"] in ([], [{**notice}])  # never sent twice
    texts = [p.read_text() for p in Path(os.environ["ALERT_OUTBOX_DIR"]).rglob("*.txt")]
    assert sum("is now Active in its Azure Sphere catalog" in t for t in texts) == 1


# --- hole 3: a listing Azure really prints was refused and read as "no evidence" ------------


def test_a_listing_with_base64_of_pem_bodies_is_evidence_not_a_refusal(app_runtime) -> None:
    """`az iot hub certificate create -p ca.pem` (azure-cli 2.32 and later) stores the body as
    base64 of the PEM file, and ARM lists it back so. Refused, the hub held nothing and the
    authenticated renewal closed the tenant while the hub still trusted only the old CA."""
    import base64

    handlers.use_clock(lambda: NOW)
    old, new = pair(15)
    upload(app_runtime, {"chain/pca.cer": PCA.der, "t/old.cer": old.der, "t/new.cer": new.der})
    assert not is_open(app_runtime, old)  # authenticated, and no target known yet
    listing = json.loads(arm_listing(HUB_ID, [("old", old, True)]))
    listing["value"][0]["properties"]["certificate"] = base64.b64encode(old.pem).decode()
    upload(app_runtime, {"hub.json": json.dumps(listing).encode()})
    row = next(u for u in app_runtime.store.report()["uploads"] if u["name"] == "hub.json")
    assert (row["status"], row["error"]) == ("analyzed", None)
    assert is_open(app_runtime, old)  # the hub trusts only the old CA: re-opened
    assert certificate(app_runtime, old)["renewal_pending"] == [HUB_ID.lower()]
