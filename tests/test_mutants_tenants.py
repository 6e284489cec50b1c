"""Kill tests for the tenant part of the store (shared/storage/tenants.py, issue 16) on a
real Azurite: the store's own rules choose a replacement, every pending target is listed,
and a refresh whose inputs move under it (new evidence, an index row written or removed
by a concurrent refresh) runs again until it holds still, or says by name that it did not.
The concurrent writer is played by a hook run right after the refresh's first write.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from shared.alerts.rules import Rules, load_rules
from shared.analysis.listings import Listing
from shared.analysis.listings import RegisteredCertificate as Registered
from shared.local.azurite import Azurite
from shared.storage import tenants as tenant_rows
from shared.storage.connections import table_service
from shared.storage.keys import iso
from shared.storage.store import TableStore
from shared.storage.tenants import TenantState

TENANT = "5707a9e0-1111-4222-8333-944445555666"
NOW = datetime(2020, 8, 20, 9, tzinfo=UTC)
OLD = f"{1:064x}"  # issued inside the July 2020 window: affected
RENEWED = f"{2:064x}"  # issued Aug 5, after the window
HUB_A = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/iothubs/hub-a"
HUB_B = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/iothubs/hub-b"


def make_store(azurite: Azurite, rules: Rules) -> TableStore:
    service: TableServiceClient = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, rules, prefix=f"t{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    return store


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    """A store on tables of its own (a fresh name prefix on the shared Azurite)."""
    store = make_store(azurite, load_rules())
    yield store
    store.delete_all()


def add_ca(store: TableStore, n: int, verdict: str, not_before: datetime, **extra: object) -> None:
    store.tenants.add(
        TENANT,
        f"{n:064x}",
        {
            "sha1_thumbprint": f"{n:040X}",
            "subject": f"CN=Microsoft Azure Sphere {TENANT}",
            "not_before": iso(not_before),
            "not_after": iso(not_before + timedelta(days=730)),
            "verdict": verdict,
            **extra,
        },
    )


# The renewal as a live Azure Sphere catalog lists it: authentic by its source (DESIGN §4
# rule 2), so it may close the old CA without registration evidence.
FROM_CATALOG = {"catalog": "/subscriptions/s/catalogs/c", "catalog_status": "Active"}


def add_old_and_renewed(store: TableStore) -> None:
    add_ca(store, 1, "affected", datetime(2020, 7, 1, tzinfo=UTC))
    add_ca(store, 2, "ok", datetime(2020, 8, 5, tzinfo=UTC), **FROM_CATALOG)


def held(n: int) -> Registered:
    return Registered(f"ca-{n}", f"{n:040X}", f"{n:064x}", True)


def listing(target: str, *certs: Registered) -> Listing:
    name = target.rsplit("/", 1)[1]
    return Listing(target, "iot-hub", name, "iot-hub-certificates", certs)


def row_of(store: TableStore, sha: str) -> dict[str, object]:
    return store.tenants.by_tenant()[TENANT][sha]


def after_first_write(store: TableStore, hook: Callable[[], None], *, every: bool = False) -> None:
    """Run ``hook`` (the concurrent writer) right after the refresh's first write (or after
    each write, ``every``)."""
    write = store.tenants._write
    calls = 0

    def hooked(tenant_id: str, state: TenantState, now: datetime | None = None) -> None:
        nonlocal calls
        write(tenant_id, state, now)
        calls += 1
        if calls == 1 or every:
            hook()

    store.tenants._write = hooked  # type: ignore[method-assign]


def test_a_ca_no_longer_on_record_is_not_open() -> None:
    """The alert pass may ask about a CA whose last upload went meanwhile."""
    assert TenantState((), {}, ()).is_open(OLD) is False


def test_the_stores_own_rules_choose_the_replacement(azurite: Azurite) -> None:
    """An incident window that (in these rules) ends after the renewal was issued: the
    renewal was issued inside it, so it replaces nothing, and the old CA stays open. Under
    the default rules the same renewal closes it."""
    defaults = load_rules()
    (incident, *_) = defaults.incidents
    later_end = dataclasses.replace(incident, window_end=datetime(2020, 8, 10, tzinfo=UTC))
    longer = dataclasses.replace(defaults, incidents=(later_end, *defaults.incidents[1:]))
    for rules, resolved_by, open_ in ((longer, None, True), (defaults, RENEWED, False)):
        store = make_store(azurite, rules)
        try:
            add_old_and_renewed(store)
            store.tenants.refresh_tenant(TENANT)
            assert row_of(store, OLD).get("resolved_by") == resolved_by
            assert (OLD in store.index.tenant_rows(TENANT)) is open_
        finally:
            store.delete_all()


def test_every_target_still_waiting_for_the_renewal_is_recorded(store: TableStore) -> None:
    add_old_and_renewed(store)
    for hub in (HUB_A, HUB_B):
        store.registrations.record_listing(listing(hub, held(1)), "live", NOW)
    store.tenants.refresh_tenant(TENANT)
    assert row_of(store, OLD)["renewal_pending"] == f"{HUB_A},{HUB_B}"
    assert "resolved_by" not in row_of(store, OLD)


def test_evidence_recorded_during_a_refresh_is_refreshed_again(store: TableStore) -> None:
    """The renewal shows up at hub A while the refresh writes: the row must not keep the
    pending list it was about to write (hub A and hub B), though the CA stays open."""
    add_old_and_renewed(store)
    for hub in (HUB_A, HUB_B):
        store.registrations.record_listing(listing(hub, held(1)), "live", NOW)
    later = NOW + timedelta(minutes=5)
    after_first_write(
        store,
        lambda: store.registrations.record_listing(listing(HUB_A, held(1), held(2)), "live", later),
    )
    store.tenants.refresh_tenant(TENANT)
    assert row_of(store, OLD)["renewal_pending"] == HUB_B
    assert OLD in store.index.tenant_rows(TENANT)


def test_an_index_row_a_stale_refresh_wrote_meanwhile_is_removed(store: TableStore) -> None:
    """No evidence at all: the renewal closes the old CA. A concurrent refresh that had read
    the tenant before the renewal puts the old CA's index row back after our write."""
    add_old_and_renewed(store)
    (old,) = [c for c in store.tenants.tenant_certificates(TENANT) if c.sha256 == OLD]
    after_first_write(store, lambda: store.index.place(old, [], open_=True))
    store.tenants.refresh_tenant(TENANT)
    assert OLD not in store.index.tenant_rows(TENANT)


def test_an_index_row_a_concurrent_refresh_removed_is_put_back(store: TableStore) -> None:
    """The old CA is open (hub A lists it, not the renewal); a concurrent refresh that saw
    it closed removes its index row after our write."""
    add_old_and_renewed(store)
    store.registrations.record_listing(listing(HUB_A, held(1)), "live", NOW)

    def removed() -> None:
        store.index.remove(TENANT, store.index.tenant_rows(TENANT)[OLD])

    after_first_write(store, removed)
    store.tenants.refresh_tenant(TENANT)
    assert OLD in store.index.tenant_rows(TENANT)


def test_a_tenant_that_never_holds_still_is_logged_by_name(
    store: TableStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tenant_rows, "MAX_REFRESH_ROUNDS", 3)
    add_old_and_renewed(store)
    moments = iter(NOW + timedelta(minutes=n) for n in range(10))
    after_first_write(
        store,
        lambda: store.registrations.record_listing(listing(HUB_A, held(1)), "live", next(moments)),
        every=True,
    )
    with caplog.at_level(logging.WARNING, logger="ca_watch.tenants"):
        store.tenants.refresh_tenant(TENANT)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ca_watch.tenants", "WARNING", f"tenant {TENANT} kept changing while being refreshed")
    ]


def test_the_alert_pass_closes_only_what_is_resolved_and_fixes_its_rows(
    store: TableStore,
) -> None:
    add_old_and_renewed(store)
    store.registrations.record_listing(listing(HUB_A, held(1)), "live", NOW)
    store.tenants.refresh_tenant(TENANT)
    state = store.tenants.state(TENANT)
    assert store.tenants.close_if_resolved(TENANT, state, OLD) is False  # hub A waits
    assert OLD in store.index.tenant_rows(TENANT)
    # The renewal is verified at hub A; the pass still holds the old CA's index row.
    store.registrations.record_listing(listing(HUB_A, held(1), held(2)), "live", NOW)
    state = store.tenants.state(TENANT)
    assert store.tenants.close_if_resolved(TENANT, state, OLD) is True
    assert OLD not in store.index.tenant_rows(TENANT)
    assert row_of(store, OLD)["resolved_by"] == RENEWED
