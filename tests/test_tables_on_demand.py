"""Tables come from the deployment (infra/app/storage.bicep), not from every worker's cold
start; a table that is missing all the same (Azurite, a local run) is created on its first
TableNotFound and the operation retried once. Requests are counted by a proxy in front of
Azurite (the server side sees them, not the code under test)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from counting_proxy import CountingProxy, counting_proxy

from shared.app import handlers
from shared.local import samples
from shared.local.azurite import Azurite
from shared.local.runner import blob_trigger_argument, registered_function
from shared.storage.connections import azurite_connection_string
from shared.storage.tables import TABLES, Tables


@dataclass
class Counted:
    connection: str
    table: CountingProxy

    def table_requests(self) -> list[str]:
        return [f"{r.method} {r.path.split('?')[0]}" for r in self.table.seen()]


@pytest.fixture
def counted(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Counted]:
    with counting_proxy(azurite.table_port) as table:
        connection = azurite_connection_string(
            "127.0.0.1", azurite.blob_port, azurite.queue_port, table.port
        )
        monkeypatch.setenv("CertStorage", connection)
        monkeypatch.setenv("CERT_CONTAINER", f"certs{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("RESULTS_CONTAINER", f"results{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("ALERT_OUTBOX_DIR", str(tmp_path / "outbox"))
        monkeypatch.delenv("RULES_FILE", raising=False)
        handlers.reset_runtime()
        yield Counted(connection, table)
        handlers.reset_runtime()


def _fresh_tables(counted: Counted) -> tuple[Tables, TableServiceClient]:
    service = TableServiceClient.from_connection_string(counted.connection)
    return Tables(service, prefix=f"t{uuid.uuid4().hex[:10]}"), service


def _exists(service: TableServiceClient, full_name: str) -> bool:
    return any(t.name == full_name for t in service.list_tables())


def test_worker_start_sends_no_table_request(counted: Counted) -> None:
    """On main every worker created all its tables at cold start (one POST /Tables each)."""
    counted.table.reset()
    handlers.runtime()
    assert counted.table_requests() == []


def _row(pk: str = "p", rk: str = "r", **fields: Any) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": rk, **fields}


OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "upsert_entity": lambda t: t.upsert_entity(_row(n=1)),
    "create_entity": lambda t: t.create_entity(_row(rk=uuid.uuid4().hex, n=1)),
    "submit_transaction": lambda t: t.submit_transaction([("upsert", _row(n=1))]),
    "list_entities": lambda t: list(t.list_entities()),
    "query_entities": lambda t: list(t.query_entities("PartitionKey eq 'p'")),
    "by_page": lambda t: [list(p) for p in t.query_entities("RowKey gt ''").by_page()],
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_missing_table_is_created_by_its_first_operation(
    counted: Counted, operation: str
) -> None:
    tables, service = _fresh_tables(counted)
    table = tables("acks")
    counted.table.reset()
    OPERATIONS[operation](table)
    requests = counted.table_requests()
    # The failed attempt, the creation, the one retry: nothing more.
    assert len(requests) == 3, requests
    assert requests[1] == "POST /devstoreaccount1/Tables", requests
    assert _exists(service, tables.prefix + "acks")
    counted.table.reset()
    OPERATIONS[operation](table)  # the table now exists: one request
    assert len(counted.table_requests()) == 1


def test_reading_an_entity_of_a_missing_table_creates_it_and_still_says_not_found(
    counted: Counted,
) -> None:
    tables, service = _fresh_tables(counted)
    with pytest.raises(ResourceNotFoundError):
        tables("ledger").get_entity("p", "r")
    assert _exists(service, tables.prefix + "ledger")
    tables("ledger").upsert_entity(_row(n=2))
    assert tables("ledger").get_entity("p", "r")["n"] == 2


def test_a_table_created_meanwhile_by_another_worker_is_no_error(counted: Counted) -> None:
    tables, service = _fresh_tables(counted)
    first = tables("uploads")
    other = Tables(service, tables.prefix)("uploads")
    other.upsert_entity(_row(n=1))  # creates it
    first.upsert_entity(_row(rk="s", n=2))
    assert sorted(r["RowKey"] for r in first.list_entities()) == ["r", "s"]


def test_the_first_blob_on_an_account_without_tables_is_still_recorded(
    counted: Counted, azurite: Azurite
) -> None:
    """Azurite and local runs have no deployment to create the tables."""
    rt = handlers.runtime()
    rt.store.delete_all()
    handlers.ensure_containers(rt)
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    container.get_blob_client("tenant.cer").upload_blob(samples.tenant_ca().der)
    registered_function("analyze_upload")(
        blob_trigger_argument(rt.settings.cert_container, "tenant.cer")
    )
    (upload,) = rt.store.report()["uploads"]
    assert (upload["name"], upload["status"]) == ("tenant.cer", "analyzed")
    service = TableServiceClient.from_connection_string(counted.connection)
    created = {t.name for t in service.list_tables()}
    assert {"uploads", "certificates", "tenantcas"} <= created <= set(TABLES) | created
