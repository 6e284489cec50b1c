"""Kill tests for shared/storage/alert_index.py against Azurite (issue 16): what is due,
what a pass reads, and the index rows left after a move."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from shared.alerts.rules import load_rules
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.store import TableStore


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    """A store on tables of its own (a fresh name prefix on the shared Azurite)."""
    service: TableServiceClient = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, load_rules(), prefix=f"i{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    yield store
    store.delete_all()


def test_an_empty_index_has_no_next_look(store: TableStore) -> None:
    # Nothing open: the timer has no moment to wake for (not an error).
    assert store.index.first_look_after(datetime(2020, 8, 4, tzinfo=UTC)) is None


def test_a_move_after_a_row_already_in_place_is_still_made(store: TableStore) -> None:
    """One pass's moves: a CA already at its moment (nothing to do) comes first; the CA
    after it must still move."""
    from datetime import timedelta

    from shared.storage.keys import iso, parse_iso

    tenant = "5707a9e0-1111-4222-8333-944445555666"
    for n in (1, 2):
        store.tenants.add(
            tenant,
            f"{n:064x}",
            {
                "sha1_thumbprint": f"{n:040X}",
                "subject": f"CN=ca-{n}",
                "not_before": iso(datetime(2020, 7, n, tzinfo=UTC)),
                "not_after": iso(datetime(2022, 7, n, tzinfo=UTC)),
                "verdict": "affected",
            },
        )
    store.tenants.refresh_tenant(tenant)
    first, second = sorted(
        store.index.open_tenant_certificates(datetime.max.replace(tzinfo=UTC), all_open=True),
        key=lambda cert: cert.sha256,
    )
    (first_key,) = first.index_keys
    stays = parse_iso(first_key.split("|")[0])
    later = stays + timedelta(days=3)
    store.index.reschedule([(first, stays), (second, later)])
    assert store.index.tenant_rows(tenant) == {
        first.sha256: [first_key],
        second.sha256: [f"{iso(later)}|{second.sha256}"],
    }


TENANT = "5707a9e0-1111-4222-8333-944445555666"


def add_ca(store: TableStore, n: int, not_after: datetime, tenant: str = TENANT) -> None:
    from datetime import timedelta

    from shared.storage.keys import iso

    store.tenants.add(
        tenant,
        f"{n:064x}",
        {
            "sha1_thumbprint": f"{n:040X}",
            "subject": f"CN=ca-{n}",
            "not_before": iso(not_after - timedelta(days=730)),
            "not_after": iso(not_after),
            "verdict": "ok",
        },
    )


@pytest.mark.parametrize(
    ("tenant", "shard"),
    [
        ("5707a9e0-1111-4222-8333-944445555666", "open-4"),
        ("00000000-0000-0000-0000-000000000000", "open-2"),
        ("tenant-3", "open-0"),
    ],
)
def test_a_tenants_shard_is_part_of_the_stored_layout(tenant: str, shard: str) -> None:
    """An index written by one version is read by the next: a tenant's shard (first byte of
    the SHA-256 of its id, mod 16) may not change without a new ``INDEX_LAYOUT``."""
    from shared.storage.alert_index import index_partition

    assert index_partition(tenant) == shard


def test_an_incident_deadline_relative_to_not_after_is_watched_from_it() -> None:
    """A rules file may date an incident's deadline from each CA's notAfter (no fixed
    ``at``): the CA is watched from that date less the longest lead."""
    import dataclasses
    from datetime import timedelta

    from shared.alerts.model import TenantCertificate
    from shared.alerts.rules import Deadline
    from shared.storage.alert_index import watch_from

    rules = load_rules()
    relative = Deadline("x/renew", "renew", "Renew", "m", offset_from_not_after=timedelta(-30))
    (incident, *rest) = rules.incidents
    rules = dataclasses.replace(
        rules,
        incidents=(dataclasses.replace(incident, deadlines=(relative,)), *rest),
        rotation=None,
    )
    not_after = datetime(2022, 7, 1, tzinfo=UTC)
    cert = TenantCertificate(
        TENANT, "0" * 64, "0" * 40, "CN=x", datetime(2020, 7, 1, tzinfo=UTC), not_after, "affected"
    )
    lead = timedelta(days=max(rules.stages))
    assert watch_from(cert, rules) == not_after - timedelta(days=30) - lead


def test_a_ca_read_under_two_keys_does_not_hide_the_cas_after_it(store: TableStore) -> None:
    """Two runs rescheduling at once can leave a CA under two keys; the read takes it once
    and goes on to the CAs whose keys come after its second one."""
    from datetime import timedelta

    from shared.storage.alert_index import index_entity, index_partition
    from shared.storage.keys import iso, parse_iso

    other = "5707a9e0-1111-4222-8333-000000000004"  # another tenant in the same shard
    assert index_partition(other) == index_partition(TENANT)
    add_ca(store, 1, datetime(2022, 7, 1, tzinfo=UTC))
    add_ca(store, 2, datetime(2022, 9, 1, tzinfo=UTC), other)  # watched two months later
    store.tenants.refresh_tenant(TENANT)
    store.tenants.refresh_tenant(other)
    rows = store.index.tenant_rows(TENANT) | store.index.tenant_rows(other)
    (first_key,) = rows[f"{1:064x}"]
    # A second row for the first CA, a day after its own key, before the second CA's.
    extra = f"{iso(parse_iso(first_key.split('|')[0]) + timedelta(days=1))}|{1:064x}"
    (first,) = [
        c
        for c in store.index.open_tenant_certificates(
            datetime.max.replace(tzinfo=UTC), all_open=True
        )
        if c.sha256 == f"{1:064x}"
    ]
    store.table("alertindex").upsert_entity(index_entity(first, extra))
    read = store.index.open_tenant_certificates(datetime.max.replace(tzinfo=UTC), all_open=True)
    assert sorted((c.sha256, c.index_keys) for c in read) == [
        (f"{1:064x}", (first_key, extra)),
        (f"{2:064x}", tuple(rows[f"{2:064x}"])),
    ]


def test_a_ca_given_without_index_rows_is_not_put_back(store: TableStore) -> None:
    """A pass moves only rows it read: a CA it holds with no index keys (closed meanwhile)
    gets no row."""
    from dataclasses import replace

    add_ca(store, 1, datetime(2022, 7, 1, tzinfo=UTC))
    store.tenants.refresh_tenant(TENANT)
    (cert,) = store.index.open_tenant_certificates(datetime.max.replace(tzinfo=UTC), all_open=True)
    store.index.remove(TENANT, cert.index_keys)
    store.index.reschedule([(replace(cert, index_keys=()), datetime(2022, 6, 1, tzinfo=UTC))])
    assert store.index.tenant_rows(TENANT) == {}
