"""Issuer certificates on record: what authenticates a renewal that no target lists (DESIGN
§4 "Resolved", rule 2). ``issuercas``: PK = "issuer", RK = SHA-256, ``der`` (base64): every
CA certificate on record that is not a tenant CA (what `azsphere ca download-chain` writes).
"""

from __future__ import annotations

import base64

from azure.data.tables import UpdateMode

from shared.storage.tables import Tables

ISSUER_PARTITION = "issuer"


class IssuerStore:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def add_issuer(self, sha256: str, der: bytes, subject: str) -> None:
        self._tables("issuercas").upsert_entity(
            {
                "PartitionKey": ISSUER_PARTITION,
                "RowKey": sha256,
                "der": base64.b64encode(der).decode("ascii"),
                "subject": subject[:1_000],
            },
            mode=UpdateMode.REPLACE,
        )

    def issuers(self) -> list[bytes]:
        """Every issuer certificate on record (DER); they are few (Microsoft's CAs)."""
        rows = self._tables("issuercas").query_entities(
            "PartitionKey eq @pk", parameters={"pk": ISSUER_PARTITION}, select=["der"]
        )
        return [base64.b64decode(row["der"]) for row in rows]
