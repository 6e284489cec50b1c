"""The report read model (``ca-watch/report/v1``): what the tables hold, joined.

A certificate's sources are its inline first source plus its ``certsources`` rows; an
upload's certificates are its inline SHA-256s plus its ``uploadcerts`` rows. Each table
is listed once, whatever the counts."""

from __future__ import annotations

import json
from typing import Any

from shared.alerts.registration import TargetSnapshot
from shared.storage.acks import AckStore
from shared.storage.certificates import CertificateStore
from shared.storage.keys import iso
from shared.storage.registrations import RegistrationStore
from shared.storage.tables import Tables
from shared.storage.tenants import TenantStore
from shared.storage.uploads import UploadStore


def registrations_of(
    sha1: str, sha256: str, snapshots: list[TargetSnapshot]
) -> list[dict[str, Any]]:
    """Where one certificate is registered (report/v1 ``registrations``)."""
    found = []
    for snap in snapshots:
        entry = snap.entry_for(sha1, sha256)
        if entry is not None:
            found.append(
                {
                    "target": snap.target,
                    "kind": snap.kind,
                    "display_name": snap.display_name,
                    "name": entry.name,
                    "verified": entry.verified,
                    "seen_at": iso(snap.seen_at) if snap.seen_at else None,
                    "source": snap.source,
                }
            )
    return found


def _split(value: Any) -> list[str]:
    return [part for part in str(value or "").split(",") if part]


def _retired(row: dict[str, Any]) -> dict[str, Any] | None:
    if not row.get("retired_by"):
        return None
    return {"by": row["retired_by"], "at": row.get("retired_at"), "note": row.get("retired_note")}


def _tenant_ca_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What the store concluded of a tenant CA (DESIGN §4): its state in the one vocabulary,
    the renewal it waits for and what is known of that renewal, where trust was lost."""
    return {
        "state": row.get("state") or "pending",
        "renewal_pending": _split(row.get("renewal_pending")),
        "resolution_basis": row.get("resolution_basis"),
        "renewal": row.get("renewal"),
        "renewal_check": row.get("renewal_check"),
        "look_alikes": _split(row.get("look_alikes")),
        "lost_trust": _split(row.get("lost_trust")),
        "revoked": bool(row.get("revoked"))
        or str(row.get("catalog_status") or "").lower() in ("revoked", "expired"),
        "catalog_status": row.get("catalog_status"),
        "retired": _retired(row),
    }


def build_report(
    tables: Tables,
    tenants: TenantStore,
    acks: AckStore,
    certificate_store: CertificateStore,
    upload_store: UploadStore,
    registrations: RegistrationStore,
) -> dict[str, Any]:
    snapshots = registrations.snapshots()
    tenant_rows = tenants.by_tenant()
    acks_by_tenant = acks.by_tenant()
    further_sources = certificate_store.further_sources()
    certificates = []
    for row in tables("certificates").list_entities():
        body = json.loads(row["document"])
        inline = json.loads(row.get("sources") or "[]")
        body["sources"] = sorted(set(inline) | set(further_sources.get(row["RowKey"], ())))
        body["first_seen"], body["last_seen"] = row["first_seen"], row["last_seen"]
        tenant = row.get("tenant_id")
        tenant_row = tenant_rows.get(tenant or "", {}).get(row["RowKey"], {})
        body["resolved_by"] = tenant_row.get("resolved_by")
        tenant_acks = acks_by_tenant.get(tenant or "", {})
        ack = tenant_acks.get(row["RowKey"]) or (tenant_acks.get("*") if tenant_row else None)
        body["acknowledged"] = ack.to_json() if ack else None
        body["registrations"] = registrations_of(body["sha1_thumbprint"], row["RowKey"], snapshots)
        if tenant_row:
            body.update(_tenant_ca_fields(tenant_row))
        certificates.append(body)
    certificates.sort(key=lambda c: (c["azure_sphere"]["tenant_id"] or "~", c["not_before"]))
    chunked = upload_store.certificate_rows()
    uploads = [
        {
            "name": row["name"],
            "etag": row["etag"],
            "status": row["status"],
            "error": (
                {"code": row["error_code"], "message": row["error_message"]}
                if row.get("error_code")
                else None
            ),
            "format": row.get("format"),
            "certificates": json.loads(row.get("certificates") or "[]")
            + chunked.get((row["PartitionKey"], row["RowKey"]), []),
            "processed_at": row.get("processed_at"),
            "listing_outcomes": json.loads(row.get("listing_outcomes") or "[]"),
            "retired": _retired(row),
        }
        for row in tables("uploads").list_entities()
    ]
    uploads.sort(key=lambda u: u["name"])
    return {
        "schema": "ca-watch/report/v1",
        "certificates": certificates,
        "targets": registrations.target_rows(),
        "uploads": uploads,
    }
