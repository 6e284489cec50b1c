"""The table clients of one storage account (and optional name prefix), created once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
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


class Tables:
    def __init__(self, service: TableServiceClient, prefix: str = "") -> None:
        self.service = service
        self.prefix = prefix
        self._clients: dict[str, TableClient] = {}

    def __call__(self, name: str) -> TableClient:
        client = self._clients.get(name)
        if client is None:
            # Azure treats table names case-insensitively: a misspelt one must fail here.
            if name not in TABLES:
                raise ValueError(f"no table {name!r} in this app; its tables: {', '.join(TABLES)}")
            client = self.service.get_table_client(self.prefix + name)
            self._clients[name] = client
        return client

    def ensure(self, names: Iterable[str] = TABLES) -> None:
        for name in names:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_table(self.prefix + name)

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
