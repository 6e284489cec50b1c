"""Kill tests for the issuer certificates on record (shared/storage/issuers.py, issue 21:
what authenticates a renewal no target lists) on a real Azurite: each issuer comes back
byte for byte, once however often it is uploaded, next to the others; rows a deployed
version wrote are still read; and an issuer with a hostile, very long name is still kept.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator

import pytest

from shared.alerts.rules import load_rules
from shared.local import samples
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.store import TableStore

PCA = samples.azure_sphere_pca()
OTHER_PCA = samples.azure_sphere_pca(seed=7)


@pytest.fixture
def issuer_store(azurite: Azurite) -> Iterator[TableStore]:
    """The app's store on tables of its own (a fresh name prefix on the shared Azurite)."""
    store = TableStore(
        table_service({"CertStorage": azurite.connection_string}),
        load_rules(),
        prefix=f"i{uuid.uuid4().hex[:12]}",
    )
    store.ensure_tables()
    yield store
    store.delete_all()


def sha256(issued: samples.Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def test_an_issuer_comes_back_byte_for_byte(issuer_store: TableStore) -> None:
    assert issuer_store.issuers.issuers() == []
    issuer_store.issuers.add_issuer(sha256(PCA), PCA.der, "CN=Microsoft Azure Sphere PCA01")
    assert issuer_store.issuers.issuers() == [PCA.der]


def test_each_issuer_is_kept_once_beside_the_others(issuer_store: TableStore) -> None:
    for issued in (PCA, OTHER_PCA, PCA):  # the same chain uploaded twice
        issuer_store.issuers.add_issuer(sha256(issued), issued.der, "CN=PCA")
    assert sorted(issuer_store.issuers.issuers()) == sorted([PCA.der, OTHER_PCA.der])
    (row,) = [
        r for r in issuer_store.table("issuercas").list_entities() if r["RowKey"] == sha256(PCA)
    ]
    assert row["subject"] == "CN=PCA"  # what an operator browsing the table sees


def test_an_issuer_with_a_name_past_the_storage_limit_is_kept(issuer_store: TableStore) -> None:
    # A string property holds at most 64 KiB; an upload may carry a name longer than that.
    issuer_store.issuers.add_issuer(sha256(PCA), PCA.der, "CN=" + "x" * 40_000)
    assert issuer_store.issuers.issuers() == [PCA.der]
    (row,) = issuer_store.table("issuercas").list_entities()
    assert row["subject"] == ("CN=" + "x" * 40_000)[:1_000]  # cut, not refused


def test_the_row_layout_a_deployed_version_wrote_is_read(issuer_store: TableStore) -> None:
    """PK "issuer", RK the SHA-256, ``der`` base64 (the documented layout): the issuers
    uploaded before an update still authenticate renewals after it."""
    issuer_store.table("issuercas").create_entity(
        {
            "PartitionKey": "issuer",
            "RowKey": sha256(OTHER_PCA),
            "der": base64.b64encode(OTHER_PCA.der).decode("ascii"),
        }
    )
    assert issuer_store.issuers.issuers() == [OTHER_PCA.der]
    issuer_store.issuers.add_issuer(sha256(OTHER_PCA), OTHER_PCA.der, "CN=PCA")
    assert issuer_store.issuers.issuers() == [OTHER_PCA.der]  # the same row, not a second
