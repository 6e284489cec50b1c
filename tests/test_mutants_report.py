"""Kill tests for the report read model (shared/storage/report.py, issue 21) on a real
Azurite: what the store concluded of each tenant CA (state, renewal and its check,
look-alikes, lost trust, revoked or expired in its catalog, retired) and of each upload
(each listing's outcome, retired), as the rows hold it, in report/v1."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes
from shared.local import samples
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.store import TableStore

RULES = load_rules()
AT = datetime(2020, 7, 31, tzinfo=UTC)
TENANT = "7e9a0000-1111-4222-8333-944445555666"
CAS = [
    samples.tenant_ca(TENANT, datetime(2020, 7, 1 + n, tzinfo=UTC), key_seed=4200 + n)
    for n in range(4)
]
SHAS = [hashlib.sha256(ca.der).hexdigest() for ca in CAS]


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    """A store on tables of its own (a fresh name prefix on the shared Azurite)."""
    service = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, RULES, prefix=f"p{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    yield store
    store.delete_all()


def record(store: TableStore, name: str, data: bytes) -> None:
    result = analyze_bytes(name, data, RULES, AT)
    assert store.uploads.record_upload(result.source, f"etag-{name}", result, AT)


def set_row(store: TableStore, table: str, key: tuple[str, str], **fields: Any) -> None:
    """Replace a row's fields as the store would have written them (None: absent)."""
    row = dict(store.table(table).get_entity(*key))
    row.update(fields)
    row = {k: v for k, v in row.items() if v is not None}
    store.table(table).upsert_entity(row, mode=UpdateMode.REPLACE)


def test_the_report_shows_what_the_store_concluded_of_each_tenant_ca(store: TableStore) -> None:
    for n, ca in enumerate(CAS):
        record(store, f"ca{n}.cer", ca.der)
    set_row(
        store,
        "tenantcas",
        (TENANT, SHAS[0]),
        state="lost-trust",
        renewal_pending="hub-a,hub-b",
        resolution_basis="verified-in-every-target",
        renewal=SHAS[1],
        renewal_check="look-alike",
        look_alikes=f"{SHAS[2]},{SHAS[3]}",
        lost_trust="hub-a",
        revoked=None,
        catalog_status="Expired",
        retired_by="carol",
        retired_at="2020-08-01T00:00:00Z",
        retired_note="replaced by hand",
    )
    set_row(store, "tenantcas", (TENANT, SHAS[1]), revoked=True, catalog_status=None)
    set_row(store, "tenantcas", (TENANT, SHAS[2]), revoked=None, catalog_status="Revoked")
    set_row(store, "tenantcas", (TENANT, SHAS[3]), state=None, catalog_status="Active")
    fields = [
        "state",
        "renewal_pending",
        "resolution_basis",
        "renewal",
        "renewal_check",
        "look_alikes",
        "lost_trust",
        "revoked",
        "catalog_status",
        "retired",
    ]
    shown = {
        c["sha256_fingerprint"]: {f: c[f] for f in fields} for c in store.report()["certificates"]
    }
    assert shown[SHAS[0]] == {
        "state": "lost-trust",
        "renewal_pending": ["hub-a", "hub-b"],
        "resolution_basis": "verified-in-every-target",
        "renewal": SHAS[1],
        "renewal_check": "look-alike",
        "look_alikes": [SHAS[2], SHAS[3]],
        "lost_trust": ["hub-a"],
        "revoked": True,  # expired in its catalog: never a renewal
        "catalog_status": "Expired",
        "retired": {"by": "carol", "at": "2020-08-01T00:00:00Z", "note": "replaced by hand"},
    }
    assert shown[SHAS[1]]["revoked"] is True and shown[SHAS[1]]["catalog_status"] is None
    assert shown[SHAS[2]]["revoked"] is True and shown[SHAS[2]]["retired"] is None
    assert shown[SHAS[3]]["revoked"] is False
    assert shown[SHAS[3]]["state"] == "pending"  # a row from before states were written
    assert (shown[SHAS[3]]["look_alikes"], shown[SHAS[3]]["lost_trust"]) == ([], [])


def test_the_report_shows_each_listings_outcome_and_a_retired_upload(store: TableStore) -> None:
    record(store, "junk.cer", b"junk")
    record(store, "ca.cer", CAS[0].der)
    outcomes = [{"target": "hub-a", "outcome": "stale-listing"}]
    (junk,) = [r for r in store.iter_rows("uploads") if r["name"] == "junk.cer"]
    set_row(
        store,
        "uploads",
        (junk["PartitionKey"], junk["RowKey"]),
        listing_outcomes=json.dumps(outcomes),
        retired_by="dave",
        retired_at="2020-08-02T00:00:00Z",
        retired_note=None,
    )
    uploads = {u["name"]: u for u in store.report()["uploads"]}
    assert uploads["junk.cer"]["listing_outcomes"] == outcomes
    assert uploads["junk.cer"]["retired"] == {
        "by": "dave",
        "at": "2020-08-02T00:00:00Z",
        "note": None,
    }
    assert (uploads["ca.cer"]["listing_outcomes"], uploads["ca.cer"]["retired"]) == ([], None)


def test_a_legacy_tenant_ack_shows_on_the_tenants_cas_and_not_on_a_device_certificate(
    store: TableStore,
) -> None:
    """An acknowledgement row of an earlier version (RK "*", every CA of the tenant)."""
    device = samples.device_certificate(CAS[0], key_seed=4299)
    record(store, "ca.pem", samples.pem(CAS[0].der) + samples.pem(device.der))
    store.table("acks").upsert_entity(
        {"PartitionKey": TENANT, "RowKey": "*", "by": "eve", "at": "2020-08-01T00:00:00Z"}
    )
    shown = {c["sha256_fingerprint"]: c["acknowledged"] for c in store.report()["certificates"]}
    assert shown == {
        SHAS[0]: {
            "by": "eve",
            "at": "2020-08-01T00:00:00Z",
            "note": None,
            "until": None,
            "scope": "legacy-tenant",
        },
        hashlib.sha256(device.der).hexdigest(): None,
    }
