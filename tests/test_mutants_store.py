"""Kill tests for the store's silencing acts (shared/storage/store.py, issue 21) on a real
Azurite: an acknowledgement (of a tenant's CAs on record, or of one CA, until a date), its
withdrawal and a retirement each announce themselves once, with who and until when, and
re-time the tenant's alert index at the moment they were made (DESIGN §4 rule 3)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes
from shared.app import handlers
from shared.local import samples
from shared.storage.store import TableStore

RULES = load_rules()
NOW = datetime(2020, 7, 30, 9, tzinfo=UTC)
TENANT = "5e0a0000-1111-4222-8333-944445555666"
A, B = (
    samples.tenant_ca(TENANT, datetime(2020, 7, 1, tzinfo=UTC), key_seed=4300 + n) for n in range(2)
)
SHA_A, SHA_B = (hashlib.sha256(ca.der).hexdigest() for ca in (A, B))


@pytest.fixture
def store(app_runtime: handlers.Runtime) -> TableStore:
    """The app's store, on clean tables."""
    return app_runtime.store


def record(store: TableStore, name: str, issued: samples.Issued) -> None:
    result = analyze_bytes(name, issued.der, RULES, NOW)
    assert store.uploads.record_upload(result.source, f"etag-{name}", result, NOW)


def index_rows(store: TableStore) -> dict[str, list[str]]:
    """sha256 -> the moments the alert index will next look at the CA (open CAs only)."""
    rows = store.index.tenant_rows(TENANT)
    return {sha: sorted(key.split("|")[0] for key in keys) for sha, keys in rows.items()}


def announced(store: TableStore) -> list[tuple[object, ...]]:
    """The pending notices, each (certificate, kind, ref, at, by, until), then let go."""
    notices = store.notices.pending()
    for notice in notices:
        store.notices.done(notice)
    return [(n.tenant_id, n.certificate, n.kind, n.ref, n.at, n.by, n.until) for n in notices]


def test_a_tenant_ack_covers_the_cas_on_record_until_its_date_and_its_withdrawal_reopens(
    store: TableStore,
) -> None:
    record(store, "a.cer", A)
    first_look = index_rows(store)[SHA_A]
    until = NOW + timedelta(days=2)  # long past on the real clock: `now` must be used
    assert store.acknowledge(TENANT, None, "ops", "on it", NOW, until=until) == [SHA_A]
    assert announced(store) == [
        (TENANT, SHA_A, "acknowledged", "2020-07-30T09:00:00Z", NOW, "ops", until)
    ]
    assert index_rows(store) == {SHA_A: ["2020-08-01T09:00:00Z"]}  # looked at when it ends
    (cert,) = store.report()["certificates"]
    assert (cert["acknowledged"]["scope"], cert["acknowledged"]["until"]) == (
        "tenant",
        "2020-08-01T09:00:00Z",
    )
    record(store, "b.cer", B)  # first seen after the ack: not covered
    assert index_rows(store)[SHA_B]
    later = NOW + timedelta(hours=1)
    assert store.withdraw_acknowledgement(TENANT, None, "ops2", later) == [SHA_A]
    assert announced(store) == [
        (TENANT, SHA_A, "ack-withdrawn", "2020-07-30T10:00:00Z", later, "ops2", None)
    ]
    assert index_rows(store)[SHA_A] == first_look


def test_withdrawing_one_cas_ack_leaves_the_others(store: TableStore) -> None:
    record(store, "a.cer", A)
    record(store, "b.cer", B)
    assert store.acknowledge(TENANT, SHA_A, "ops", None, NOW) == [SHA_A]
    assert store.acknowledge(TENANT, SHA_B, "ops", None, NOW) == [SHA_B]
    announced(store)
    assert index_rows(store) == {}
    assert store.withdraw_acknowledgement(TENANT, SHA_B, "ops", NOW) == [SHA_B]
    assert list(index_rows(store)) == [SHA_B]
    certificates = {c["sha256_fingerprint"]: c for c in store.report()["certificates"]}
    assert certificates[SHA_A]["acknowledged"]["scope"] == "certificate"


def test_a_retired_ca_leaves_the_index_and_is_announced(store: TableStore) -> None:
    record(store, "a.cer", A)
    later = NOW + timedelta(hours=2)
    store.retire_certificate(TENANT, SHA_A, "carol", "decommissioned", later)
    assert announced(store) == [
        (TENANT, SHA_A, "retired", "2020-07-30T11:00:00Z", later, "carol", None)
    ]
    assert index_rows(store) == {}
    (cert,) = store.report()["certificates"]
    assert cert["retired"] == {
        "by": "carol",
        "at": "2020-07-30T11:00:00Z",
        "note": "decommissioned",
    }


def test_withdrawing_or_retiring_one_ca_re_times_the_others_at_that_moment(
    store: TableStore,
) -> None:
    """Another CA's acknowledgement until a date keeps it looked at when the ack ends: the
    refresh after a withdrawal or a retirement judges that ack at the act's moment."""
    record(store, "a.cer", A)
    record(store, "b.cer", B)
    until = NOW + timedelta(days=2)
    store.acknowledge(TENANT, SHA_A, "ops", None, NOW)
    store.acknowledge(TENANT, SHA_B, "ops", None, NOW, until=until)
    assert index_rows(store) == {SHA_B: ["2020-08-01T09:00:00Z"]}
    store.withdraw_acknowledgement(TENANT, SHA_A, "ops", NOW)
    assert index_rows(store)[SHA_B] == ["2020-08-01T09:00:00Z"]
    store.retire_certificate(TENANT, SHA_A, "ops", None, NOW)
    assert index_rows(store) == {SHA_B: ["2020-08-01T09:00:00Z"]}


def test_a_renewal_signed_by_the_issuer_on_record_closes_the_old_ca(store: TableStore) -> None:
    """The store wires the issuers on record into the tenants' resolution (DESIGN §4):
    with the Azure Sphere PCA on record, a renewal it signed is authenticated."""
    pca = samples.azure_sphere_pca()
    result = analyze_bytes("pca.cer", pca.der, RULES, NOW)
    assert store.uploads.record_upload("pca.cer", "etag-pca.cer", result, NOW)
    record(store, "a.cer", A)
    renewal = samples.tenant_ca(TENANT, datetime(2020, 8, 1, tzinfo=UTC), key_seed=4310)
    record(store, "renewal.cer", renewal)
    assert SHA_A not in index_rows(store)
    certificates = {c["sha256_fingerprint"]: c for c in store.report()["certificates"]}
    assert certificates[SHA_A]["resolved_by"] == hashlib.sha256(renewal.der).hexdigest()
