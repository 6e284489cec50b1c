"""Azure Sphere CA lists (issue 22): the ARM catalog form that ``az sphere ca-certificate
list`` and ``azure-mgmt-sphere`` ``certificates.list_by_catalog`` print, with its
``status``; and the legacy ``azsphere ca list`` / REST ``/v2/tenants/{id}/certificates``
shape, as before. Pure, plus the analysis an upload gets.

Shapes credited:
- The catalog entry: Azure/azure-powershell ``src/Sphere/Sphere.Autorest/examples/
  Get-AzSphereCertificate.md`` (Example 1: catalog ``MyCEVtest``, a real tenant CA of tenant
  ``be51057e-e6eb-487d-82c8-a7043ccab9e1`` with thumbprint
  ``BFF18CC17D19D7E3B7884091981E0190F8E84181``, status ``Active``), written back in the
  JSON field names of the ARM spec (Azure/azure-rest-api-specs ``specification/sphere/
  Sphere.Management/certificate.tsp``: ``certificate``, ``status``, ``subject``,
  ``thumbprint``, ``expiryUtc``, ``notBeforeUtc``, ``provisioningState``).
- Status values: ``CertificateStatus`` of the same spec (Active, Inactive, Expired, Revoked).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from shared.alerts.rules import load_rules
from shared.analysis.listing_json import looks_like_listing
from shared.analysis.listings import (
    FORMAT_SPHERE,
    FORMAT_SPHERE_CATALOG,
    ListingError,
    SphereCaEntry,
    parse_listing_document,
    read_listing_document,
    sphere_entry,
)
from shared.analysis.scan import analyze_bytes
from shared.local import samples
from tests.registration_samples import HUB_ID, arm_entry, sphere_ca_list

# Example 1 of Get-AzSphereCertificate.md, the body as printed (one line here).
REAL_TENANT_CA = base64.b64decode(
    "MIIDCzCCApGgAwIBAgIQEdZQEhOis5h5KfeQl2n3tTAKBggqhkjOPQQDAzBTMQswCQYDVQQGEwJVUzEeMBwGA1UE"
    "ChMVTWljcm9zb2Z0IENvcnBvcmF0aW9uMSQwIgYDVQQDExtBenVyZSBTcGhlcmUgUG9saWN5IENBIDIwMjIwHhcN"
    "MjMwNTE2MTQ1NTAwWhcNMjUwNTE1MTQ1NTAwWjCBmjELMAkGA1UEBhMCVVMxEzARBgNVBAgTCldhc2hpbmd0b24x"
    "EDAOBgNVBAcTB1JlZG1vbmQxHjAcBgNVBAoTFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjFEMEIGA1UEAxM7TWljcm9z"
    "b2Z0IEF6dXJlIFNwaGVyZSBiZTUxMDU3ZS1lNmViLTQ4N2QtODJjOC1hNzA0M2NjYWI5ZTEwdjAQBgcqhkjOPQIB"
    "BgUrgQQAIgNiAATrPradtPvdN46uvvSatOAWwuE7wdOGYTxtyWcG8+wEmDJjUhIYqFAfaEGA9SnPFZNJwJAqJvna"
    "Q/XhzIiFL8GvUDBiggAlJVLjYThPkC5Jc7kpOOFcpx8aRcSSaRsydIWjgeEwgd4wDgYDVR0PAQH/BAQDAgGGMA8G"
    "A1UdEwEB/wQFMAMBAf8wUgYDVR0fBEswSTBHoEWgQ4ZBaHR0cDovL2NybC5zcGhlcmUuYXp1cmUubmV0L01pY3Jv"
    "c29mdCBBenVyZSBTcGhlcmUgUG9saWN5MjAyMi5jcmwwZwYIKwYBBQUHAQEEWzBZMFcGCCsGAQUFBzAChktodHRw"
    "Oi8vcGtpLnNwaGVyZS5henVyZS5uZXQvY2VydGlmaWNhdGVzL01pY3Jvc29mdEF6dXJlU3BoZXJlUG9saWN5MjAy"
    "Mi5jZXIwCgYIKoZIzj0EAwMDaAAwZQIxALyiEKIYmCCDIjHVvjoNBeAz14DiTBWR3AWYePPG3oShXL/Je/yT8yOr"
    "imtRnrGnpAIwO07WVeqEeqRtyPbmJefdRtJ8/SF89z+wu1Y/CPO0ldDXavoLRQQyQq5yih6N9Cjl"
)
REAL_THUMBPRINT = "BFF18CC17D19D7E3B7884091981E0190F8E84181"
CATALOG = (
    "/subscriptions/82f138e0-1c79-4708-bda1-5e224cd688b2/resourceGroups/glumenCEVRG"
    "/providers/Microsoft.AzureSphere/catalogs/MyCEVtest"
)


def catalog_entry(
    der: bytes = REAL_TENANT_CA,
    status: str = "Active",
    serial: str = "11D6501213A2B3987929F7909769F7B5",
    *,
    catalog: str = CATALOG,
    with_body: bool = True,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "status": status,
        "subject": "CN=Microsoft Azure Sphere be51057e-e6eb-487d-82c8-a7043ccab9e1, "
        "O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        "thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        "notBeforeUtc": "2023-05-16T14:55:00Z",
        "expiryUtc": "2025-05-15T14:55:00Z",
        "provisioningState": "Succeeded",
    }
    if with_body:
        properties["certificate"] = base64.b64encode(der).decode()
    return {
        "id": f"{catalog}/certificates/{serial}",
        "name": serial,
        "type": "Microsoft.AzureSphere/catalogs/certificates",
        "properties": properties,
        "systemData": {},
    }


def test_the_real_catalog_entry_is_a_tenant_ca_with_its_status() -> None:
    assert hashlib.sha1(REAL_TENANT_CA, usedforsecurity=False).hexdigest().upper() == (
        REAL_THUMBPRINT
    )
    for document in ({"value": [catalog_entry()]}, [catalog_entry()]):
        parsed = parse_listing_document(document)
        assert (parsed.format, parsed.listings) == (FORMAT_SPHERE_CATALOG, ())
        (entry,) = parsed.sphere_entries
        assert (entry.thumbprint, entry.der, entry.status) == (
            REAL_THUMBPRINT,
            REAL_TENANT_CA,
            "Active",
        )
        assert (entry.is_active, entry.is_revoked, entry.never_a_renewal) == (True, False, False)


def test_an_upload_of_the_catalog_list_analyses_its_tenant_cas() -> None:
    data = json.dumps({"value": [catalog_entry()]}, indent=2).encode()
    assert looks_like_listing(data)
    result = analyze_bytes("catalog.json", data, load_rules())
    assert str(result.status) == "analyzed" and result.format == FORMAT_SPHERE_CATALOG
    (certificate,) = result.certificates
    assert certificate.facts.sha1_thumbprint == REAL_THUMBPRINT
    assert certificate.classification.azure_sphere_json()["role"] == "tenant-ca"
    (listed,) = result.to_json()["listing"]["tenant_cas"]
    assert listed["status"] == "Active" and listed["thumbprint"] == REAL_THUMBPRINT


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        # status as printed -> (status, is_active, is_revoked, never_a_renewal)
        ("Active", ("Active", True, False, False)),
        ("Inactive", ("Inactive", False, False, False)),
        ("Expired", ("Expired", False, False, True)),
        ("Revoked", ("Revoked", False, True, True)),
        ("revoked", ("Revoked", False, True, True)),
        ("EXPIRED", ("Expired", False, False, True)),
    ],
)
def test_revoked_and_expired_are_recognisable(status: str, expected: tuple) -> None:
    (entry,) = parse_listing_document([catalog_entry(status=status)]).sphere_entries
    assert (entry.status, entry.is_active, entry.is_revoked, entry.never_a_renewal) == expected


def test_a_status_we_do_not_know_is_kept_and_not_active() -> None:
    (entry,) = parse_listing_document([catalog_entry(status="Retiring")]).sphere_entries
    assert (entry.status, entry.is_active, entry.is_revoked) == ("Retiring", False, False)


def test_entries_without_a_body_keep_their_thumbprint() -> None:
    (entry,) = parse_listing_document([catalog_entry(with_body=False)]).sphere_entries
    assert (entry.thumbprint, entry.der) == (REAL_THUMBPRINT, None)


def test_the_legacy_rest_list_reads_as_before_with_a_derived_status() -> None:
    old = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
    parsed = read_listing_document(sphere_ca_list([(old, True)]))
    assert parsed.format == FORMAT_SPHERE
    (entry,) = parsed.sphere_entries
    assert (entry.is_active, entry.is_revoked, entry.status) == (True, False, None)
    revoked = [{"Thumbprint": entry.thumbprint, "IsActive": False, "IsRevoked": True}]
    (gone,) = parse_listing_document(revoked).sphere_entries
    assert gone.never_a_renewal and gone.status is None


def test_entry_json_carries_the_status() -> None:
    entry = SphereCaEntry(REAL_THUMBPRINT, None, False, True, "Revoked")
    assert entry.to_json() == {
        "thumbprint": REAL_THUMBPRINT,
        "sha256": None,
        "is_active": False,
        "is_revoked": True,
        "status": "Revoked",
    }


def test_a_list_mixing_catalog_and_hub_entries_is_refused() -> None:
    ca = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
    with pytest.raises(ListingError) as caught:
        parse_listing_document([catalog_entry(), arm_entry(HUB_ID, "ca", ca, verified=True)])
    assert caught.value.code == "malformed-listing"


def test_a_catalog_id_elsewhere_in_arm_is_refused() -> None:
    entry = catalog_entry()
    entry["id"] = entry["id"].replace("/certificates/", "/images/")
    with pytest.raises(ListingError) as caught:
        parse_listing_document([entry])
    assert caught.value.code == "malformed-listing"


def test_one_entry_reads_alike_for_the_live_reader() -> None:
    entry = catalog_entry(status="Revoked")
    (listed,) = parse_listing_document([entry]).sphere_entries
    assert sphere_entry(entry["properties"]) == listed
    pascal = {key[:1].upper() + key[1:]: value for key, value in entry["properties"].items()}
    assert sphere_entry(pascal) == listed
