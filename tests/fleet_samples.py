"""Report/v1 documents for the fleet report tests: hand-made ones (registrations, hostile
values) and the benchmark's synthetic fleets."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import html5lib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from bench_report import synthetic_fleet

__all__ = ["synthetic_fleet"]

NOW = datetime(2020, 9, 1, 9, tzinfo=UTC)
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
T_RENEWED = "a1b2c3d4-0000-4000-8000-000000000001"
T_PENDING = "a1b2c3d4-0000-4000-8000-000000000002"
T_FINE = "a1b2c3d4-0000-4000-8000-000000000003"
T_WAITING = "a1b2c3d4-0000-4000-8000-000000000004"
HUB = "/subscriptions/0000/resourcegroups/rg/providers/microsoft.devices/iothubs/hub-west"
DPS = "/subscriptions/0000/resourcegroups/rg/providers/microsoft.devices/provisioningservices/dps"


def certificate(
    tenant: str,
    sha: str,
    not_before: str,
    not_after: str,
    verdict: str = "ok",
    *,
    subject: str | None = None,
    sources: tuple[str, ...] = (),
    resolved_by: str | None = None,
    acknowledged: dict[str, Any] | None = None,
    registrations: tuple[dict[str, Any], ...] | None = None,
) -> dict[str, Any]:
    cert: dict[str, Any] = {
        "sha256_fingerprint": sha * (64 // len(sha)),
        "sha1_thumbprint": (sha * 40)[:40].upper(),
        "subject": subject or f"C=US, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant}",
        "issuer": "CN=Microsoft Azure Sphere PCA01",
        "not_before": not_before,
        "not_after": not_after,
        "signature_algorithm": {"mismatch": "oid" if verdict == "affected" else "none"},
        "azure_sphere": {"role": "tenant-ca", "tenant_id": tenant},
        "verdict": verdict,
        "sources": list(sources),
        "resolved_by": resolved_by and resolved_by * (64 // len(resolved_by)),
        "acknowledged": acknowledged,
    }
    if registrations is not None:
        cert["registrations"] = list(registrations)
    return cert


def registration(target: str, verified: bool, kind: str = "iot-hub") -> dict[str, Any]:
    return {
        "target": target,
        "kind": kind,
        "display_name": target.rsplit("/", 1)[-1],
        "name": "tenant-ca-1",
        "verified": verified,
        "seen_at": "2020-08-30T00:00:00Z",
        "source": "live",
    }


def incident_fleet() -> dict[str, Any]:
    """The demo's story by hand, with the registration fields of report/v1: one tenant
    renewed and registered (resolved), one renewed but not yet verified in DPS (pending),
    one affected with nothing renewed, one fine; an unreadable upload."""
    return {
        "schema": "ca-watch/report/v1",
        "certificates": [
            certificate(
                T_RENEWED,
                "a1",
                "2020-07-01T12:00:00Z",
                "2022-07-01T12:00:00Z",
                "affected",
                sources=("tenant-1/CAcertificate.cer",),
                resolved_by="b1",
                registrations=(registration(HUB, True),),
            ),
            certificate(
                T_RENEWED,
                "b1",
                "2020-08-05T00:00:00Z",
                "2022-08-05T00:00:00Z",
                sources=("tenant-1/renewed.cer",),
                registrations=(registration(HUB, True),),
            ),
            certificate(
                T_WAITING,
                "c4",
                "2020-07-10T00:00:00Z",
                "2022-07-10T00:00:00Z",
                "affected",
                sources=("tenant-4/ca.cer",),
                registrations=(registration(HUB, True), registration(DPS, True, "dps")),
            ),
            certificate(
                T_WAITING,
                "d4",
                "2020-08-05T00:00:00Z",
                "2022-08-05T00:00:00Z",
                sources=("tenant-4/renewed.cer",),
                registrations=(registration(HUB, True), registration(DPS, False, "dps")),
            ),
            certificate(
                T_PENDING,
                "e2",
                "2020-07-20T08:30:00Z",
                "2022-07-20T08:30:00Z",
                "affected",
                sources=("tenant-2/ca.pem",),
            ),
            certificate(
                T_FINE,
                "f3",
                "2020-03-02T10:00:00Z",
                "2022-03-02T10:00:00Z",
                sources=("tenant-3/chain.p7b",),
            ),
        ],
        "targets": [
            {
                "target": HUB,
                "kind": "iot-hub",
                "display_name": "hub-west",
                "seen_at": "2020-08-30T00:00:00Z",
                "source": "live",
                "certificates": 4,
                "error": None,
            },
            {
                "target": DPS,
                "kind": "dps",
                "display_name": "dps",
                "seen_at": "2020-08-30T00:00:00Z",
                "source": "dps.json",
                "certificates": 2,
                "error": {"code": "forbidden", "message": "Reader role missing"},
            },
        ],
        "uploads": [
            {
                "name": "tenant-1/CAcertificate.cer",
                "status": "analyzed",
                "error": None,
                "certificates": ["a1" * 32],
            },
            {
                "name": "misc/notes.txt",
                "status": "unreadable",
                "certificates": [],
                "error": {"code": "not-a-certificate", "message": "no certificate in this file"},
            },
        ],
    }


def parse_strictly(page: str) -> Any:
    """Parse as a browser would and fail on any HTML5 parse error."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
