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
