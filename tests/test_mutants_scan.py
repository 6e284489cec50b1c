"""One file's whole scan/v1 result, as `ca-watch scan --json` prints it (DESIGN §2-§3):
registration listings (targets, the Azure Sphere CA list's certificates analysed like
uploads, listing errors) and multi-certificate files (repeats, a broken one among good
ones). Kills mutants of scan.py that the golden corpus (certificate files only) does not
reach (issue 16). Equivalent survivors: tests/MUTANTS.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from analyzer_samples import pca, rules, tenant
from golden_files import GOLDEN_NOW
from registration_samples import HUB_ID, arm_listing, sphere_ca_list

from shared.analysis.scan import analyze_bytes
from shared.local.samples import encode, pem


def _scan(name: str, data: bytes, **kw: Any) -> dict[str, Any]:
    return analyze_bytes(name, data, rules(), GOLDEN_NOW, **kw).to_json()


def _sha1(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def test_an_iot_hub_listing_gives_its_target_and_registered_certificates() -> None:
    data = arm_listing(HUB_ID, [("tenant-ca", tenant(), True), ("root", pca(), False)])
    assert _scan("hub.json", data) == {
        "source": "hub.json",
        "status": "analyzed",
        "error": None,
        "format": "iot-hub-certificates",
        "certificates": [],
        "listing": {
            "targets": [
                {
                    "target": HUB_ID.lower(),
                    "kind": "iot-hub",
                    "display_name": "Fleet-Hub",
                    "certificates": [
                        {"name": "tenant-ca", "thumbprint": _sha1(tenant().der), "verified": True},
                        {"name": "root", "thumbprint": _sha1(pca().der), "verified": False},
                    ],
                }
            ],
            "tenant_cas": [],
        },
    }


def test_an_azure_sphere_ca_list_analyses_its_certificates_as_uploads() -> None:
    data = sphere_ca_list([(tenant(), True)])
    body = _scan("tenant-cas.json", data)
    upload = _scan("tenant.cer", tenant().der)
    assert body == {
        "source": "tenant-cas.json",
        "status": "analyzed",
        "error": None,
        "format": "azure-sphere-ca-list",
        "certificates": upload["certificates"],
        "listing": {
            "targets": [],
            "tenant_cas": [
                {
                    "thumbprint": _sha1(tenant().der),
                    "sha256": hashlib.sha256(tenant().der).hexdigest(),
                    "is_active": True,
                    "is_revoked": False,
                    "status": None,
                }
            ],
        },
    }
    assert upload["certificates"][0]["reasons"][0] == (
        "Valid until 2021-04-26 10:42:26 UTC (265 days left)."  # the scan's own clock
    )


def test_a_listing_exactly_at_the_size_limit_is_still_read_as_a_listing() -> None:
    data = arm_listing(HUB_ID, [("tenant-ca", tenant(), True)])
    assert _scan("hub.json", data, max_bytes=len(data))["format"] == "iot-hub-certificates"
    over = _scan("hub.json", data, max_bytes=len(data) - 1)
    assert over["error"]["code"] == "too-large"


def test_listing_errors_have_their_code_and_fixed_text() -> None:
    bad = json.dumps({"value": [{"thumbprint": 5}]}).encode()
    assert _scan("bad.json", bad) == {
        "source": "bad.json",
        "status": "unreadable",
        "error": {"code": "malformed-listing", "message": "a thumbprint is not a string"},
        "format": None,
        "certificates": [],
    }
    empty = json.dumps({"thumbprint": None, "value": []}).encode()
    assert _scan("empty.json", empty) == {
        "source": "empty.json",
        "status": "unreadable",
        "error": {"code": "empty-listing", "message": "the listing holds no certificates"},
        "format": None,
        "certificates": [],
    }


def test_a_repeated_certificate_does_not_hide_the_ones_after_it() -> None:
    body = _scan("bundle.pem", tenant().pem * 2 + pca().pem)
    assert body["status"] == "analyzed"
    fingerprints = [c["sha256_fingerprint"] for c in body["certificates"]]
    tenant_sha, pca_sha = (hashlib.sha256(c.der).hexdigest() for c in (tenant(), pca()))
    assert fingerprints == [tenant_sha, tenant_sha, pca_sha]
    assert [c["chain"]["issuer"] for c in body["certificates"]] == [pca_sha] * 3


def test_one_good_certificate_beside_a_broken_one_has_no_chain_to_itself() -> None:
    """A file whose only readable certificate is a self-signed root reads like that root
    uploaded alone (no chain link), with the broken one named."""
    broken = encode(0x30, encode(0x30, b"\x02\x01\x01" + b"\x30\x00" * 2) + b"\x30\x00\x03\x01\x00")
    body = _scan("root-and-junk.pem", pca().pem + pem(broken))
    assert body["status"] == "unreadable"
    assert body["error"]["code"] == "malformed-certificate"
    assert body["error"]["message"].startswith("certificate 2 of 2: ")
    assert [c["sha256_fingerprint"] for c in body["certificates"]] == [
        hashlib.sha256(pca().der).hexdigest()
    ]
    assert body["certificates"][0]["chain"] is None
    assert body["format"] == "pem"


def test_a_key_file_is_refused_first_under_its_own_name() -> None:
    """DESIGN §2: the key check comes first, for every kind of file; the refusal keeps the
    file's name and says why, and no certificate is read from it."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    result = _scan("keys/device.pem", pem(tenant().der) + key)
    assert result["source"] == "keys/device.pem"
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "private-key-material"
    assert result["certificates"] == []


def test_a_pkcs12_over_the_size_limit_is_key_material_not_too_large() -> None:
    """Only the start of a file over the limit is read: a PKCS#12 there cannot be proven
    key-free, so it is refused as key material (and its blob deleted), not merely too large."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    pfx = pkcs12.serialize_key_and_certificates(
        None, None, tenant().certificate, None, NoEncryption()
    )
    assert _scan("ca.pfx", pfx, max_bytes=len(pfx))["status"] == "analyzed"  # whole: key-free
    over = _scan("ca.pfx", pfx, max_bytes=len(pfx) - 1)
    assert (over["status"], over["error"]["code"]) == ("rejected", "private-key-material")
