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
