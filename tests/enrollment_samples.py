"""Real-shaped enrollment group documents for the readers' stand-ins and the parser tests.

Shapes follow Microsoft's published REST examples (Azure/azure-rest-api-specs):
- DPS ``EnrollmentGroup_Query`` (data-plane, stable/2021-10-01,
  examples/EnrollmentGroup_Query_MaximumSet_Gen.json): a JSON array of groups with
  ``enrollmentGroupId``, ``attestation`` {``type``: x509|tpm|symmetricKey|none, ``x509``:
  {``signingCertificates``: {primary, secondary: {certificate, info: {sha1Thumbprint, ...}}},
  ``caReferences``: {primary, secondary}}}, ``provisioningStatus``, ``etag``, ...
- IoT Central 2022-07-31 (examples/enrollmentgroups_update.json for a group:
  ``id``, ``displayName``, ``enabled``, ``type``, ``attestation``, ``etag``;
  examples/enrollmentgroups_getx509.json for a slot: ``verified``,
  ``info.sha1Thumbprint``, ``etag``).
Values (ids, names, thumbprints) are ours.
"""

from __future__ import annotations

from typing import Any


def dps_ca_reference_group(
    group_id: str, primary: str | None, secondary: str | None = None, *, enabled: bool = True
) -> dict[str, Any]:
    """A group of type *CA certificate* naming CAs of the DPS certificate list (Azure
    Sphere's kind of group)."""
    return {
        "enrollmentGroupId": group_id,
        "attestation": {
            "type": "x509",
            "x509": {
                "signingCertificates": None,
                "caReferences": {"primary": primary, "secondary": secondary},
            },
        },
        "capabilities": {"iotEdge": False},
        "etag": '"0b00c1c2-0000-0300-0000-6571b0a90000"',
        "provisioningStatus": "enabled" if enabled else "disabled",
        "reprovisionPolicy": {"updateHubAssignment": True, "migrateDeviceData": True},
        "createdDateTimeUtc": "2026-10-01T17:42:05.495Z",
        "lastUpdatedDateTimeUtc": "2026-10-01T17:42:05.495Z",
        "allocationPolicy": "hashed",
        "iotHubs": ["contoso-hub.azure-devices.net"],
    }


def _inline(thumbprint: str) -> dict[str, Any]:
    return {
        "certificate": None,
        "info": {
            "subjectName": "CN=Microsoft Azure Sphere 00000000-0000-0000-0000-000000000000",
            "sha1Thumbprint": thumbprint,
            "sha256Thumbprint": None,
            "issuerName": "CN=Microsoft Azure Sphere 00000000-0000-0000-0000-000000000000",
            "notBeforeUtc": "2026-01-01T00:00:00Z",
            "notAfterUtc": "2028-01-01T00:00:00Z",
            "serialNumber": "0123456789ABCDEF",
            "version": 3,
        },
    }


def dps_inline_group(
    group_id: str, primary: str | None, secondary: str | None = None, *, enabled: bool = True
) -> dict[str, Any]:
    """A group carrying its signing certificates inline (``info.sha1Thumbprint``)."""
    group = dps_ca_reference_group(group_id, None, enabled=enabled)
    group["attestation"]["x509"] = {
        "signingCertificates": {
            "primary": _inline(primary) if primary else None,
            "secondary": _inline(secondary) if secondary else None,
        },
        "caReferences": None,
    }
    return group


def dps_symmetric_key_group(group_id: str) -> dict[str, Any]:
    group = dps_ca_reference_group(group_id, None)
    group["attestation"] = {
        "type": "symmetricKey",
        "symmetricKey": {"primaryKey": None, "secondaryKey": None},
    }
    return group


def central_group(group_id: str, *, enabled: bool = True, x509: bool = True) -> dict[str, Any]:
    attestation: dict[str, Any] = (
        {"type": "x509", "x509": {}}
        if x509
        else {"type": "symmetricKey", "symmetricKey": {"primaryKey": None, "secondaryKey": None}}
    )
    return {
        "id": group_id,
        "displayName": f"Group {group_id}",
        "enabled": enabled,
        "type": "iot",
        "attestation": attestation,
        "etag": "IjA4MDUwMTJiLTAwMDAtMDcwMC0wMDAwLTYyODJhOWVjMDAwMCI=",
    }


def central_slot(thumbprint: str, *, verified: bool = True) -> dict[str, Any]:
    return {
        "verified": verified,
        "info": {"sha1Thumbprint": thumbprint},
        "etag": "IjE3MDAwODNhLTAwMDAtMDcwMC0wMDAwLTYyNjFmNzk0MDAwMCI=",
    }
