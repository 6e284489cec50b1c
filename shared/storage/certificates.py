"""Certificate rows, stored so that no property can outgrow a table (a string property
holds at most 32K UTF-16 characters, an entity 1 MB), whatever the number of uploads.

``certificates``: PK = first 2 hex of the SHA-256 (spreads load), RK = SHA-256: the scan/v1
document (every text field cut at ``TEXT_LIMIT`` characters with a marker; the result blob
keeps it whole), the verdict, first/last seen, and the *first* blob name it came from in
``sources`` (a JSON list; rows written by earlier versions may hold several names).

``certsources``: PK = SHA-256, RK = a hash of the blob name: one row per further blob name.
Why the first source inline and the others as rows: nearly every certificate is seen under
one name, so its first upload stays one request (the row's create) and no property grows
with the uploads; a second name costs an idempotent upsert of its own row plus a MERGE of
the certificate row (no read-modify-write on a growing list, so no ETag contention between
concurrent uploads of one CA either). ``report`` joins the two.

Removing a source rewrites the certificate row under its ETag, so a removal and a
concurrent addition cannot leave a row with no source, nor drop a source's row."""

from __future__ import annotations

import base64
import contextlib
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
from shared.storage.keys import (
    MAX_CONFLICT_RETRIES,
    iso,
    precondition_failed,
    upload_partition,
)
from shared.storage.tables import Tables
from shared.storage.tenants import TenantStore

TEXT_LIMIT = 1_024  # characters kept of any one text field of a stored certificate
DOCUMENT_LIMIT = 30_000  # characters of the stored document (a property holds 32K)


def cut_text(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else its start and a marker."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated: {len(text):,} characters in all]"


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return cut_text(value, limit)
    if isinstance(value, list):
        return [_cut_strings(item, limit) for item in value]
    if isinstance(value, dict):
        return {key: _cut_strings(item, limit) for key, item in value.items()}
    return value


def stored_document(cert: AnalyzedCertificate) -> str:
    """The certificate's scan/v1 object as stored: long text cut, so it fits one property.
    Should many fields be long at once, they are cut again, shorter."""
    body = cert.to_json()
    document = json.dumps(_cut_strings(body, TEXT_LIMIT), separators=(",", ":"))
    if len(document) > DOCUMENT_LIMIT:
        document = json.dumps(_cut_strings(body, TEXT_LIMIT // 8), separators=(",", ":"))
    return document


DER_LIMIT = 30_000  # characters of base64 one table property holds (32K UTF-16 units)


def stored_der(der: bytes) -> str:
    """A tenant CA's body, kept so a renewal's signature can be checked against it (DESIGN
    §4 rule 2). A real one is under 1 KB; one too large for a property ("") is simply never
    authenticated by signature."""
    text = base64.b64encode(der).decode("ascii")
    return text if len(text) <= DER_LIMIT else ""


def source_key(name: str) -> str:
    """The RowKey of a blob name in ``certsources`` (names may be 1,024 characters and hold
    characters keys may not)."""
    return upload_partition(name)


def certificate_entity(
    cert: AnalyzedCertificate, sources: list[str], first: datetime, last: datetime
) -> dict[str, Any]:
    body = cert.to_json()
    return {
        "PartitionKey": cert.sha256[:2],
        "RowKey": cert.sha256,
        "document": stored_document(cert),
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
            self._add_further_source(cert, name, now)
        if cert.classification.role is Role.TENANT_CA and cert.classification.tenant_id:
            facts = cert.facts
            self._tenants.add(
                cert.classification.tenant_id,
                cert.sha256,
                {
                    "sha1_thumbprint": facts.sha1_thumbprint,
                    "subject": cut_text(facts.subject, TEXT_LIMIT),
                    "not_before": iso(facts.not_before),
                    "not_after": iso(facts.not_after),
                    "verdict": str(cert.classification.verdict),
                    "der": stored_der(facts.der),
                    "issuer": cut_text(facts.issuer, TEXT_LIMIT),
                },
            )
        elif cert.facts.is_ca:
            # Any other CA may be the issuer that authenticates a renewal; the check is
            # anchored on the current CA's own signature, so a forged issuer proves nothing.
            self._tenants.issuers.add_issuer(cert.sha256, cert.facts.der, cert.facts.subject)
            # A renewal recorded before its issuer may be authenticated now.
            named = cut_text(cert.facts.subject, TEXT_LIMIT)  # as tenant CA rows keep it
            for tenant in sorted(self._tenants.signed_by_name(named)):
                self._tenants.refresh_tenant(tenant)

    def _add_further_source(self, cert: AnalyzedCertificate, name: str, now: datetime) -> None:
        """The name's own row first, then a MERGE of the certificate row (fresh analysis,
        last seen). The MERGE changes the row's ETag, so a removal that read the row before
        this source existed retries and sees it; if a removal deleted the row meanwhile,
        the MERGE finds nothing and the row is made again."""
        self._tables("certsources").upsert_entity(
            {"PartitionKey": cert.sha256, "RowKey": source_key(name), "name": name},
            mode=UpdateMode.REPLACE,
        )
        refreshed = certificate_entity(cert, [name], now, now)
        del refreshed["sources"], refreshed["first_seen"]
        table = self._tables("certificates")
        try:
            table.update_entity(refreshed, mode=UpdateMode.MERGE)  # If-Match: *
        except ResourceNotFoundError:
            # Made again by another upload meanwhile: our source row is in place.
            with contextlib.suppress(ResourceExistsError):
                table.create_entity(certificate_entity(cert, [name], now, now))

    def remove_source(self, sha: str, name: str) -> str | None:
        """Drop one blob name from a certificate; delete the row when no source is left.
        Returns the tenant id of a tenant CA that was touched."""
        self._tables.delete_quietly("certsources", sha, source_key(name))
        table = self._tables("certificates")
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                row = table.get_entity(sha[:2], sha)
            except ResourceNotFoundError:
                return None
            inline = [s for s in json.loads(row.get("sources") or "[]") if s != name]
            tenant = _tenant_of_tenant_ca(row)
            try:
                # Always a write under the ETag, even when the inline list is unchanged:
                # a removal that read this row before our source row went must retry.
                # A tenant CA stays on record with no source left (DESIGN §4 "The inventory
                # never forgets"): overwriting or deleting its blob changes nothing.
                if inline or tenant or self._has_further_sources(sha):
                    row["sources"] = json.dumps(inline)
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
                return tenant
            except (ResourceModifiedError, HttpResponseError) as exc:
                if not precondition_failed(exc):
                    raise
        raise RuntimeError(f"certificate {sha}: too many concurrent updates")

    def _has_further_sources(self, sha: str) -> bool:
        rows = self._tables("certsources").query_entities(
            "PartitionKey eq @pk", parameters={"pk": sha}, select=["RowKey"], results_per_page=1
        )
        return next(iter(rows), None) is not None  # one page of one row

    def further_sources(self) -> dict[str, list[str]]:
        """Every certificate's further blob names, by SHA-256 (the report reads them all)."""
        found: dict[str, list[str]] = {}
        for row in self._tables("certsources").list_entities(select=["PartitionKey", "name"]):
            found.setdefault(row["PartitionKey"], []).append(row["name"])
        return found

    def find_tenant_ca(self, reference: str) -> tuple[str, str | None] | None:
        """(tenant_id, sha256 or None) for a tenant id, a SHA-256 or a SHA-1 thumbprint of a
        tenant CA (a device certificate carries its tenant id too, but is not acknowledged)."""
        ref = reference.strip().lower().replace(":", "")
        if len(ref) == 36 and ref.count("-") == 4:
            return ref, None
        table = self._tables("certificates")
        if len(ref) == 64:
            try:
                row = table.get_entity(ref[:2], ref)
            except ResourceNotFoundError:
                return None
            tenant = _tenant_of_tenant_ca(row)
            return (tenant, ref) if tenant else None
        if len(ref) == 40:
            for row in table.query_entities(
                "sha1_thumbprint eq @t",
                parameters={"t": ref.upper()},
                select=["RowKey", "tenant_id", "role"],
            ):
                tenant = _tenant_of_tenant_ca(row)
                return (tenant, row["RowKey"]) if tenant else None
        return None


def _tenant_of_tenant_ca(row: dict[str, Any]) -> str | None:
    """The tenant id of a tenant CA's row; None for any other certificate."""
    return row.get("tenant_id") if row.get("role") == str(Role.TENANT_CA) else None
