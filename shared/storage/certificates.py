"""Certificate rows. ``certificates``: PK = first 2 hex of the SHA-256 (spreads load), RK =
SHA-256: every fact, the verdict, first/last seen and the blob names it came from. Sources
merge under ETag concurrency (another upload of the same certificate may be merging at the
same moment)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.analysis.classify import Role
from shared.analysis.scan import AnalyzedCertificate
from shared.storage.keys import MAX_CONFLICT_RETRIES, iso, parse_iso, precondition_failed
from shared.storage.tables import Tables
from shared.storage.tenants import TenantStore


def certificate_entity(
    cert: AnalyzedCertificate, sources: list[str], first: datetime, last: datetime
) -> dict[str, Any]:
    body = cert.to_json()
    return {
        "PartitionKey": cert.sha256[:2],
        "RowKey": cert.sha256,
        "document": json.dumps(body, separators=(",", ":")),
        "verdict": body["verdict"],
        "role": body["azure_sphere"]["role"],
        "tenant_id": body["azure_sphere"]["tenant_id"],
        "not_before": body["not_before"],
        "not_after": body["not_after"],
        "mismatch": body["signature_algorithm"]["mismatch"],
        "sha1_thumbprint": body["sha1_thumbprint"],
        "sources": json.dumps(sources),
        "first_seen": iso(first),
        "last_seen": iso(last),
    }


class CertificateStore:
    def __init__(self, tables: Tables, tenants: TenantStore) -> None:
        self._tables = tables
        self._tenants = tenants

    def add_source(self, cert: AnalyzedCertificate, name: str, now: datetime) -> None:
        table = self._tables("certificates")
        try:  # most certificates are new: one request on the common path
            table.create_entity(certificate_entity(cert, [name], now, now))
        except ResourceExistsError:
            self._merge_source(cert, name, now)
        if cert.classification.role is Role.TENANT_CA and cert.classification.tenant_id:
            facts = cert.facts
            self._tenants.add(
                cert.classification.tenant_id,
                cert.sha256,
                {
                    "sha1_thumbprint": facts.sha1_thumbprint,
                    "subject": facts.subject,
                    "not_before": iso(facts.not_before),
                    "not_after": iso(facts.not_after),
                    "verdict": str(cert.classification.verdict),
                },
            )

    def _merge_source(self, cert: AnalyzedCertificate, name: str, now: datetime) -> None:
        table = self._tables("certificates")
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                row = table.get_entity(cert.sha256[:2], cert.sha256)
            except ResourceNotFoundError:
                try:
                    table.create_entity(certificate_entity(cert, [name], now, now))
                    return
                except ResourceExistsError:
                    continue  # created concurrently: merge into it
            sources = json.loads(row.get("sources") or "[]")
            if name not in sources:
                sources.append(name)
            entity = certificate_entity(cert, sorted(sources), parse_iso(row["first_seen"]), now)
            try:
                table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except (ResourceModifiedError, HttpResponseError) as exc:
                if not precondition_failed(exc):
                    raise
        raise RuntimeError(f"certificate {cert.sha256}: too many concurrent updates")

    def remove_source(self, sha: str, name: str) -> str | None:
        """Drop one blob name from a certificate; delete the row when no source is left.
        Returns the tenant id of a tenant CA that was touched."""
        table = self._tables("certificates")
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                row = table.get_entity(sha[:2], sha)
            except ResourceNotFoundError:
                return None
            sources = [s for s in json.loads(row.get("sources") or "[]") if s != name]
            tenant = row.get("tenant_id") if row.get("role") == str(Role.TENANT_CA) else None
            try:
                if sources:
                    row["sources"] = json.dumps(sources)
                    table.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                else:
                    table.delete_entity(
                        sha[:2],
                        sha,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                    if tenant:
                        self._tenants.remove(tenant, sha)
                return tenant
            except (ResourceModifiedError, HttpResponseError) as exc:
                if not precondition_failed(exc):
                    raise
        raise RuntimeError(f"certificate {sha}: too many concurrent updates")

    def find_tenant_ca(self, reference: str) -> tuple[str, str | None] | None:
        """(tenant_id, sha256 or None) for a tenant id, a SHA-256 or a SHA-1 thumbprint."""
        ref = reference.strip().lower().replace(":", "")
        if len(ref) == 36 and ref.count("-") == 4:
            return ref, None
        table = self._tables("certificates")
        if len(ref) == 64:
            try:
                row = table.get_entity(ref[:2], ref)
                return (row["tenant_id"], ref) if row.get("tenant_id") else None
            except ResourceNotFoundError:
                return None
        if len(ref) == 40:
            for row in table.query_entities(
                "sha1_thumbprint eq @t",
                parameters={"t": ref.upper()},
                select=["RowKey", "tenant_id"],
            ):
                return (row["tenant_id"], row["RowKey"]) if row.get("tenant_id") else None
        return None
