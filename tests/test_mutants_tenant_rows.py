"""Kill tests for what issue 21 added to the tenant store (shared/storage/tenants.py) on a
real Azurite, through the store's own calls (small and fast, no blobs): which tenants an
issuer arriving may authenticate; a revoked or expired renewal that never counts, even with
registration evidence; a live catalog vouching for its Active or Inactive entries; a retired
CA; what a refresh writes on the CA's row (renewal, check, look-alikes, targets that lost
trust) and the notices it owes: resolved (with every target's evidence), activated (only
while open and pending) and one per look-alike.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from test_mutants_tenants import (
    FROM_CATALOG,
    HUB_A,
    HUB_B,
    NOW,
    OLD,
    RENEWED,
    TENANT,
    add_ca,
    add_old_and_renewed,
    held,
    listing,
    make_store,
    row_of,
)

from shared.alerts.rules import load_rules
from shared.local import samples
from shared.local.azurite import Azurite
from shared.storage.store import TableStore

JULY = datetime(2020, 7, 1, tzinfo=UTC)
AUGUST = datetime(2020, 8, 5, tzinfo=UTC)


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    store = make_store(azurite, load_rules())  # tables of its own on the shared Azurite
    yield store
    store.delete_all()


def refreshed(store: TableStore) -> None:
    store.tenants.refresh_tenant(TENANT, NOW)


def test_an_issuer_names_the_tenants_it_may_authenticate(store: TableStore) -> None:
    tables = store.table("tenantcas")
    rows = [
        ("t-signed", "a" * 64, {"issuer": "CN=PCA"}),
        ("t-waiting", "b" * 64, {"issuer": "CN=Other", "renewal_check": "unauthenticated"}),
        ("t-other", "c" * 64, {"issuer": "CN=Other", "renewal_check": "look-alike"}),
        ("t-old-row", "d" * 64, {}),
    ]
    for tenant, sha, fields in rows:
        tables.upsert_entity({"PartitionKey": tenant, "RowKey": sha, **fields})
    assert store.tenants.signed_by_name("CN=PCA") == {"t-signed", "t-waiting"}
    assert store.tenants.signed_by_name("CN=Nobody") == {"t-waiting"}


@pytest.mark.parametrize(
    "flag",
    [{"revoked": True}, {"catalog_status": "Revoked"}, {"catalog_status": "EXPIRED"}],
    ids=["revoked", "revoked-in-catalog", "expired-in-catalog"],
)
def test_a_revoked_or_expired_renewal_never_counts(store: TableStore, flag: dict) -> None:
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST, **flag)
    store.registrations.record_listing(listing(HUB_A, held(1), held(2)), "live", NOW)
    refreshed(store)
    assert store.tenants.state(TENANT).is_open(OLD)
    assert "resolved_by" not in row_of(store, OLD)


def test_registration_evidence_closes_the_same_renewal_unflagged(store: TableStore) -> None:
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST, catalog_status="Active")  # no catalog: not vouched for
    store.registrations.record_listing(listing(HUB_A, held(1), held(2)), "live", NOW)
    refreshed(store)
    assert not store.tenants.state(TENANT).is_open(OLD)
    assert row_of(store, OLD)["resolved_by"] == RENEWED
    assert row_of(store, OLD)["resolution_basis"] == "registration"


@pytest.mark.parametrize("status", ["Active", "inactive"])
def test_a_live_catalog_vouches_for_its_active_and_inactive_entries(
    store: TableStore, status: str
) -> None:
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST, **{**FROM_CATALOG, "catalog_status": status})
    refreshed(store)
    assert row_of(store, OLD)["resolved_by"] == RENEWED
    assert row_of(store, OLD)["renewal_check"] == "catalog"
    state = store.tenants.state(TENANT)
    assert state.catalog_status[RENEWED] == status.lower()


def test_a_catalog_status_without_a_catalog_does_not_authenticate(store: TableStore) -> None:
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST, catalog_status="Active")
    refreshed(store)
    assert store.tenants.state(TENANT).is_open(OLD)
    assert row_of(store, OLD)["renewal_check"] == "unauthenticated"
    assert row_of(store, OLD)["state"] == "unauthenticated-renewal"


def test_a_retired_ca_is_audited_and_no_longer_open(store: TableStore) -> None:
    add_ca(store, 1, "affected", JULY)
    refreshed(store)
    assert store.tenants.state(TENANT).is_open(OLD)
    store.tenants.retire(TENANT, OLD, "ops", "decommissioned", NOW)
    row = row_of(store, OLD)
    assert (row["retired_by"], row["retired_at"], row["retired_note"]) == (
        "ops",
        "2020-08-20T09:00:00Z",
        "decommissioned",
    )
    assert row["verdict"] == "affected"  # merged into the row, not replacing it
    state = store.tenants.state(TENANT)
    assert state.retired == {OLD} and not state.is_open(OLD)
    assert state.state_of(OLD) == "retired"
    refreshed(store)
    assert OLD not in store.index.tenant_rows(TENANT)


def test_a_lone_affected_ca_is_affected_and_a_lone_unaffected_one_pending(
    store: TableStore,
) -> None:
    add_ca(store, 1, "affected", JULY)
    refreshed(store)
    assert row_of(store, OLD)["state"] == "affected"
    assert store.tenants.state(TENANT).state_of(OLD) == "affected"
    add_ca(store, 1, "ok", JULY)  # (re-analysed under other rules)
    refreshed(store)
    assert row_of(store, OLD)["state"] == "pending"


def test_a_tenant_silenced_until_a_date_holds_still_with_its_index_row(
    store: TableStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The row kept at the acknowledgement's end is what the refresh wrote: it is not
    taken for a moving input (twenty rounds, then a warning)."""
    add_ca(store, 1, "affected", JULY)
    with caplog.at_level(logging.WARNING, logger="ca_watch.tenants"):
        store.acknowledge(TENANT, OLD, "ops", None, NOW, until=NOW + timedelta(days=30))
        refreshed(store)
    assert caplog.records == []
    assert OLD in store.index.tenant_rows(TENANT)


def test_a_whole_tenant_ack_of_an_earlier_version_covers_only_the_cas_before_it(
    store: TableStore,
) -> None:
    """Versions before scoped acks wrote one row, RowKey "*", for the whole tenant: it
    still silences the CAs on record then, never a CA issued after it."""
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST)
    store.table("acks").upsert_entity(
        {"PartitionKey": TENANT, "RowKey": "*", "by": "ops", "at": "2020-07-20T00:00:00Z"}
    )
    certs = {c.sha256: c.acknowledged for c in store.tenants.tenant_certificates(TENANT)}
    assert certs == {OLD: True, RENEWED: False}


def test_an_ack_until_a_later_date_counts_by_the_wall_clock_by_default(
    store: TableStore,
) -> None:
    add_ca(store, 1, "affected", JULY)
    until = datetime.now(UTC) + timedelta(days=1)
    store.acknowledge(TENANT, OLD, "ops", None, NOW, until=until)
    (cert,) = store.tenants.tenant_certificates(TENANT)  # no time given: now
    assert cert.acknowledged and cert.ack_until == until.replace(microsecond=0)


def test_a_resolution_is_announced_with_every_targets_evidence(store: TableStore) -> None:
    add_old_and_renewed(store)
    seen = NOW - timedelta(hours=1)
    for hub in (HUB_A, HUB_B):
        store.registrations.record_listing(listing(hub, held(1), held(2)), "live", seen)
    refreshed(store)
    (notice,) = store.notices.pending()
    assert (notice.tenant_id, notice.certificate, notice.kind, notice.ref, notice.at) == (
        TENANT,
        OLD,
        "resolved",
        RENEWED,
        NOW,
    )
    assert notice.subject == f"CN=Microsoft Azure Sphere {TENANT}"
    assert (notice.renewed, notice.renewed_thumbprint, notice.basis) == (
        RENEWED,
        f"{2:040X}",
        "registration",
    )
    assert sorted(notice.evidence, key=lambda e: e["target"]) == [
        {
            "target": hub,
            "kind": "iot-hub",
            "display_name": hub.rsplit("/", 1)[1],
            "source": "live",
            "seen_at": "2020-08-20T08:00:00Z",
            "renewed": "verified",
            "status": "done",
        }
        for hub in (HUB_A, HUB_B)
    ]


def test_a_resolution_already_on_the_row_is_not_announced_again(store: TableStore) -> None:
    """Every later refresh (each upload, listing or pass) sees the resolution again; only
    a new one is owed to the channels."""
    add_old_and_renewed(store)
    refreshed(store)
    (notice,) = store.notices.pending()
    store.notices.done(notice)  # sent on every channel
    refreshed(store)
    assert store.notices.pending() == []
    (old,) = [c for c in store.tenants.tenant_certificates(TENANT) if c.sha256 == OLD]
    assert old.resolved_by == RENEWED


def test_a_refresh_without_a_time_stamps_its_notice_now(store: TableStore) -> None:
    add_old_and_renewed(store)
    before = datetime.now(UTC).replace(microsecond=0)
    store.tenants.refresh_tenant(TENANT)
    (notice,) = store.notices.pending()
    assert before <= notice.at <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_renewal_active_with_targets_pending_is_announced_while_open(
    store: TableStore,
) -> None:
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST, **{**FROM_CATALOG, "catalog_status": "Active"})
    store.registrations.record_listing(listing(HUB_A, held(1), held(2)), "live", NOW)
    store.registrations.record_listing(listing(HUB_B, held(1)), "live", NOW)
    refreshed(store)
    (notice,) = store.notices.pending()
    assert (notice.kind, notice.ref, notice.renewed, notice.basis, notice.at) == (
        "activated",
        RENEWED,
        RENEWED,
        None,
        NOW,  # the refresh's moment (a replay's `--now`), as for every notice
    )
    assert [e["target"] for e in notice.evidence] == [HUB_B]  # the targets still pending
    assert row_of(store, OLD)["renewal_pending"] == HUB_B


def test_an_inactive_renewal_or_an_acknowledged_ca_owes_no_activated_notice(
    store: TableStore,
) -> None:
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 2, "ok", AUGUST, **{**FROM_CATALOG, "catalog_status": "Inactive"})
    store.registrations.record_listing(listing(HUB_A, held(1)), "live", NOW)
    refreshed(store)
    assert store.notices.pending() == []
    store.acknowledge(TENANT, OLD, "ops", None, NOW)
    store.notices.done(store.notices.pending()[0])  # the acknowledgement's own notice
    add_ca(store, 2, "ok", AUGUST, catalog_status="Active")
    refreshed(store)
    assert store.notices.pending() == []


def _der(issued: samples.Issued) -> dict[str, str]:
    return {"der": base64.b64encode(issued.der).decode("ascii")}


def test_look_alikes_are_written_on_the_row_and_each_announced(store: TableStore) -> None:
    pca = samples.azure_sphere_pca()
    old = samples.tenant_ca(TENANT, JULY, issuer=pca, key_seed=5000)
    fakes = [samples.look_alike_tenant_ca(TENANT, AUGUST, 5001 + n) for n in range(2)]
    store.issuers.add_issuer(hashlib.sha256(pca.der).hexdigest(), pca.der, "CN=PCA")
    add_ca(store, 1, "affected", JULY, **_der(old))
    add_ca(store, 2, "ok", AUGUST, **_der(fakes[0]))
    add_ca(store, 3, "ok", AUGUST + timedelta(days=1), **_der(fakes[1]))
    refreshed(store)
    row = row_of(store, OLD)
    assert sorted(row["look_alikes"].split(",")) == [f"{2:064x}", f"{3:064x}"]
    assert row["renewal_check"] == "look-alike" and row["state"] == "look-alike"
    # (the first fake is also flagged against the second: both name the tenant)
    notices = sorted(
        (n for n in store.notices.pending() if n.certificate == OLD), key=lambda n: n.ref
    )
    assert [(n.kind, n.certificate, n.ref, n.renewed, n.at) for n in notices] == [
        ("look-alike", OLD, f"{n:064x}", f"{n:064x}", NOW) for n in (2, 3)
    ]
    assert all(n.subject == f"CN=Microsoft Azure Sphere {TENANT}" for n in notices)


def test_every_target_that_lost_trust_is_written_on_the_row(store: TableStore) -> None:
    add_old_and_renewed(store)
    for hub in (HUB_A, HUB_B):
        store.registrations.record_listing(listing(hub, held(1)), "live", NOW)
    later = NOW + timedelta(hours=1)
    for hub in (HUB_A, HUB_B):
        store.registrations.record_listing(listing(hub), "live", later)  # neither CA now
    refreshed(store)
    row = row_of(store, OLD)
    assert row["lost_trust"] == f"{HUB_A},{HUB_B}" and row["state"] == "lost-trust"
    assert row["renewal"] == RENEWED


def test_a_lone_ca_reads_back_with_no_renewal_check_or_basis(store: TableStore) -> None:
    """ "None" is written as "" (a MERGE leaves out None and would keep an earlier value);
    what the report reads back for a CA with no renewal names none."""
    add_ca(store, 1, "affected", JULY)
    refreshed(store)
    row = store.tenants.by_tenant()[TENANT][OLD]
    assert row["state"] == "affected"
    assert {"renewal", "renewal_check", "resolution_basis", "resolved_by"}.isdisjoint(row)


def test_a_renewal_row_without_its_body_is_unauthenticated_not_an_error(
    store: TableStore,
) -> None:
    """Rows written before issue 21 keep no body (``der``): with the current CA's body on
    record but not the renewal's, the renewal cannot be checked, so it is unauthenticated
    and the tenant stays open (and the refresh does not fail on it)."""
    old = samples.tenant_ca(TENANT, JULY, issuer=samples.azure_sphere_pca(), key_seed=5100)
    add_ca(store, 1, "affected", JULY, **_der(old))
    add_ca(store, 2, "ok", AUGUST)
    refreshed(store)
    row = row_of(store, OLD)
    assert (row["renewal"], row["renewal_check"], row["state"]) == (
        RENEWED,
        "unauthenticated",
        "unauthenticated-renewal",
    )
    assert store.tenants.state(TENANT).is_open(OLD)


def test_an_index_row_of_a_ca_deleted_by_hand_goes_at_the_next_refresh(
    store: TableStore,
) -> None:
    """A ``tenantcas`` row deleted outside the app (Storage Explorer, say) leaves its CA's
    index row behind: the next refresh of the tenant removes it, so no pass alerts on a CA
    the inventory no longer holds."""
    add_ca(store, 1, "affected", JULY)
    add_ca(store, 3, "affected", JULY + timedelta(days=1))
    refreshed(store)
    assert sorted(store.index.tenant_rows(TENANT)) == [OLD, f"{3:064x}"]
    store.table("tenantcas").delete_entity(TENANT, OLD)
    refreshed(store)
    assert list(store.index.tenant_rows(TENANT)) == [f"{3:064x}"]
