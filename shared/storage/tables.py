"""The table clients of one storage account (and optional name prefix), created once.

The tables themselves are created by the deployment (infra/app/storage.bicep), not at worker
start: a cold start used to spend one request per table on tables that exist. Where a
table is missing all the same (Azurite, a local run, a test's own prefix), the first operation
on it fails with TableNotFound; the table is then created and the operation retried once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

TABLES = (
    "certificates",
    "certsources",
    "uploads",
    "uploadcerts",
    "uploadfailures",
    "tenantcas",
    "alertindex",
    "acks",
    "ledger",
    "regtargets",
    "thumbtenants",
    "notices",
    "issuercas",
)

T = TypeVar("T")
# The single-request operations the stores call; each is retried once after creating a
# missing table (delete_entity never fails on one: the SDK reads its 404 as done).
_RETRIED = frozenset(
    {"get_entity", "create_entity", "upsert_entity", "update_entity", "submit_transaction"}
)


def table_missing(exc: Exception) -> bool:
    """True when storage answered that the table (not an entity) does not exist."""
    if not isinstance(exc, HttpResponseError):
        return False
    # TableTransactionError and most operations carry error_code; create_entity's 404
    # carries the code only in the x-ms-error-code header (azure-data-tables 12.7).
    code = getattr(exc, "error_code", None)
    if code is None and exc.response is not None:
        code = exc.response.headers.get("x-ms-error-code")
    return getattr(code, "value", code) == "TableNotFound"  # TableErrorCode is a str Enum


class SelfCreatingTable:
    """A table's client that creates its table on TableNotFound and retries once.

    Hand-written because azure-data-tables has no create-if-missing option; it wraps the
    operations in _RETRIED and the two listings, and passes anything else to the TableClient.
    """

    def __init__(self, client: TableClient, create: Callable[[], None]) -> None:
        self.client = client
        self._create = create

    def _once(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except HttpResponseError as exc:
            if not table_missing(exc):
                raise
        self._create()
        return operation()

    def _listing(self, start: Callable[[], Iterator[T]]) -> Iterator[T]:
        """Items of a lazy listing: the missing table shows on the first page request."""
        items = start()
        try:
            first = next(items)
        except StopIteration:
            return
        except HttpResponseError as exc:
            if not table_missing(exc):
                raise
            self._create()
            yield from start()
            return
        yield first
        yield from items

    def list_entities(self, **kwargs: Any) -> Listing:
        return Listing(self, lambda: self.client.list_entities(**kwargs))

    def query_entities(self, *args: Any, **kwargs: Any) -> Listing:
        return Listing(self, lambda: self.client.query_entities(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name in _RETRIED:
            return lambda *args, **kwargs: self._once(lambda: attribute(*args, **kwargs))
        return attribute


class Listing:
    """What list_entities / query_entities return: iterate it, or page it with by_page()."""

    def __init__(self, table: SelfCreatingTable, start: Callable[[], Any]) -> None:
        self._table = table
        self._start = start

    def __iter__(self) -> Iterator[Any]:
        return self._table._listing(lambda: iter(self._start()))

    def by_page(self, continuation_token: str | None = None) -> Iterator[Any]:
        return self._table._listing(lambda: self._start().by_page(continuation_token))


class Tables:
    def __init__(self, service: TableServiceClient, prefix: str = "") -> None:
        self.service = service
        self.prefix = prefix
        self._clients: dict[str, SelfCreatingTable] = {}

    def __call__(self, name: str) -> SelfCreatingTable:
        client = self._clients.get(name)
        if client is None:
            # Azure treats table names case-insensitively: a misspelt one must fail here.
            if name not in TABLES:
                raise ValueError(f"no table {name!r} in this app; its tables: {', '.join(TABLES)}")
            full_name = self.prefix + name
            client = SelfCreatingTable(
                self.service.get_table_client(full_name), lambda: self._create(full_name)
            )
            self._clients[name] = client
        return client

    def _create(self, full_name: str) -> None:
        with contextlib.suppress(ResourceExistsError):  # another worker was first
            self.service.create_table(full_name)

    def ensure(self, names: Iterable[str] = TABLES) -> None:
        """Create the tables now (tests and `make run` start from a clean account)."""
        for name in names:
            self._create(self.prefix + name)

    def drop(self, names: Iterable[str] = TABLES) -> None:
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                self.service.delete_table(self.prefix + name)
        self._clients.clear()

    def delete_quietly(self, table: str, pk: str, rk: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self(table).delete_entity(pk, rk)

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        yield from (dict(row) for row in self(table).list_entities())
