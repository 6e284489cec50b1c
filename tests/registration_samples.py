"""Registration listings as the tools print them, built around sample certificates."""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.local.samples import Issued

SUB = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/Fleet-RG"
HUB_ID = f"{SUB}/providers/Microsoft.Devices/IotHubs/Fleet-Hub"
DPS_ID = f"{SUB}/providers/Microsoft.Devices/provisioningServices/Fleet-DPS"


def thumbprint(issued: Issued) -> str:
    return issued.sha1_thumbprint if hasattr(issued, "sha1_thumbprint") else _sha1(issued.der)


def _sha1(der: bytes) -> str:
    import hashlib

    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def arm_entry(
    parent_id: str,
    name: str,
    issued: Issued,
    *,
    verified: bool,
    with_body: bool = False,
    spelling: str = "upper",
) -> dict[str, Any]:
    """One entry of ``az iot hub|dps certificate list`` (ARM ``CertificateDescription``)."""
    thumb = _sha1(issued.der)
    if spelling == "lower":
        thumb = thumb.lower()
    elif spelling == "colons":
        thumb = ":".join(thumb[i : i + 2] for i in range(0, 40, 2))
    elif spelling == "spaces":
        thumb = " ".join(thumb[i : i + 2] for i in range(0, 40, 2)).lower()
    cert = issued.certificate
    props: dict[str, Any] = {
        "subject": cert.subject.rfc4514_string(),
        "expiry": cert.not_valid_after_utc.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "thumbprint": thumb,
        "isVerified": verified,
        "created": "Tue, 01 Dec 2020 10:00:00 GMT",
        "updated": "Tue, 01 Dec 2020 10:00:00 GMT",
    }
    if with_body:
        props["certificate"] = base64.b64encode(issued.der).decode()
    kind = "IotHubs" if "/IotHubs/" in parent_id else "ProvisioningServices"
    return {
        "id": f"{parent_id}/certificates/{name}",
        "name": name,
        "type": f"Microsoft.Devices/{kind}/Certificates",
        "etag": "AAAAAAFD6M4=",
        "properties": props,
    }


def arm_listing(parent_id: str, entries: list[tuple[str, Issued, bool]], **kw: Any) -> bytes:
    return json.dumps(
        {"value": [arm_entry(parent_id, n, c, verified=v, **kw) for n, c, v in entries]},
        indent=2,
    ).encode()


def manifest(target: str, entries: list[tuple[Issued, bool]], kind: str = "iot-central") -> bytes:
    return json.dumps(
        {
            "schema": "ca-watch/registrations/v1",
            "target": target,
            "kind": kind,
            "certificates": [{"thumbprint": _sha1(c.der), "verified": v} for c, v in entries],
        }
    ).encode()


def sphere_ca_list(entries: list[tuple[Issued, bool]]) -> bytes:
    """``GET /v2/tenants/{id}/certificates`` as the public API returns it."""
    return json.dumps(
        [
            {
                "Certificate": base64.b64encode(c.der).decode(),
                "Thumbprint": _sha1(c.der),
                "IsActive": active,
                "IsRevoked": False,
            }
            for c, active in entries
        ]
    ).encode()
