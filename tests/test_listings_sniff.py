"""Finding a listing by its content (issue 21): anywhere in the file, in the encodings and
key spellings the tools write; ambiguous JSON refused; a listing inside a certificate file
never dropped silently. Pure, plus ``ca-watch scan --json`` as an operator runs it.

Shapes credited: Windows PowerShell 5.1 ``>`` and ``Out-File`` write UTF-16 LE with a BOM;
``Get-AzIotHubCertificate | ConvertTo-Json`` (Az.IotHub ``PSCertificateDescription``) spells
the keys in Pascal case (``Id``, ``Name``, ``Properties``, ``Thumbprint``, ``IsVerified``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.rules import load_rules
from shared.analysis.listing_json import looks_like_listing
from shared.analysis.listings import ListingError, parse_listing_document, read_listing_document
from shared.analysis.scan import analyze_bytes
from shared.local import samples
from tests.registration_samples import HUB_ID, arm_entry, arm_listing

ROOT = Path(__file__).resolve().parent.parent
CA = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
NEW = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=42)
PADDING = "x" * 5000  # pushes the first "thumbprint" key past 4 KB


def late_thumbprint_listing() -> dict[str, Any]:
    """``az iot hub certificate list`` output whose first thumbprint comes after 4 KB:
    a long subject first, as ``--query`` or a reformatting tool may order it."""
    entry = arm_entry(HUB_ID, "ca", CA, verified=True, with_body=True)
    properties = entry.pop("properties")
    # The DPS example's order (body first), and a long subject before the thumbprint.
    body = properties.pop("certificate")
    del properties["subject"]
    ordered = {"certificate": body, "subject": PADDING, **properties}
    return {"value": [{"properties": ordered, **entry}]}


def pascal_case(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: pascal_case(item) for key, item in value.items()}
    if isinstance(value, list):
        return [pascal_case(item) for item in value]
    return value


def powershell_file(document: Any) -> bytes:
    """What ``ConvertTo-Json | Out-File x.json`` writes in Windows PowerShell 5.1."""
    return b"\xff\xfe" + json.dumps(document, indent=4).replace("\n", "\r\n").encode("utf-16-le")


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(late_thumbprint_listing()).encode(),
        powershell_file(late_thumbprint_listing()),
        b"\xef\xbb\xbf" + json.dumps(late_thumbprint_listing()).encode(),
    ],
    ids=["utf-8", "utf-16 with BOM (PowerShell 5.1)", "utf-8 with BOM"],
)
def test_a_listing_whose_thumbprint_comes_late_is_found(data: bytes) -> None:
    assert looks_like_listing(data)
    (listing,) = read_listing_document(data).listings
    assert listing.display_name == "Fleet-Hub" and len(listing.certificates) == 1


def test_the_sniff_stops_at_the_upload_limit() -> None:
    # Bounded work: nothing past MAX_UPLOAD_BYTES is looked at.
    data = b"[" + b" " * 1_048_576 + b'{"thumbprint": "00"}]'
    assert not looks_like_listing(data, max_bytes=1_048_576)
    assert looks_like_listing(data, max_bytes=len(data))


def test_pascal_case_keys_are_read_as_the_sniffer_finds_them() -> None:
    document = pascal_case(json.loads(arm_listing(HUB_ID, [("ca", CA, True), ("new", NEW, False)])))
    data = powershell_file(document)
    assert looks_like_listing(data)
    (listing,) = read_listing_document(data).listings
    assert [(c.name, c.verified) for c in listing.certificates] == [("ca", True), ("new", False)]
    # The manifest's keys, too.
    manifest = pascal_case(
        {
            "schema": "ca-watch/registrations/v1",
            "target": "partner",
            "certificates": [{"thumbprint": "AB" * 20, "verified": True}],
        }
    )
    data = json.dumps(manifest).encode()
    assert looks_like_listing(data)
    (listing,) = read_listing_document(data).listings
    assert listing.target == "partner" and listing.certificates[0].verified


ENTRY_ID = f"{HUB_ID}/certificates/a"
T1, T2 = "AB" * 20, "CD" * 20
DUPLICATES = {
    "thumbprint twice": f'[{{"id": "{ENTRY_ID}", "properties": {{"thumbprint": "{T1}",'
    f' "isVerified": false, "thumbprint": "{T2}"}}}}]',
    "isVerified twice": f'[{{"id": "{ENTRY_ID}", "properties": {{"thumbprint": "{T1}",'
    ' "isVerified": false, "isVerified": true}}]',
    "isVerified in two spellings": f'[{{"id": "{ENTRY_ID}", "properties": {{"thumbprint":'
    f' "{T1}", "isVerified": false, "IsVerified": true}}}}]',
    "id twice": f'[{{"id": "{ENTRY_ID}", "id": "/x", "properties": {{"thumbprint": "{T1}"}}}}]',
    "target twice": '{"schema": "ca-watch/registrations/v1", "target": "a", "target": "b",'
    ' "certificates": []}',
    "value twice": f'{{"value": [], "value": [{{"id": "{ENTRY_ID}", "properties":'
    f' {{"thumbprint": "{T1}"}}}}]}}',
}


@pytest.mark.parametrize("text", DUPLICATES.values(), ids=DUPLICATES.keys())
def test_json_with_a_duplicate_key_is_refused(text: str) -> None:
    data = text.encode()
    json.loads(data)  # valid JSON: only the duplicate makes it ambiguous
    assert looks_like_listing(data)
    with pytest.raises(ListingError) as caught:
        read_listing_document(data)
    assert caught.value.code == "duplicate-json-key"
    assert T1 not in caught.value.message  # fixed texts, never the document's


def test_a_decoded_document_with_two_spellings_of_a_key_is_refused() -> None:
    entry = {"id": f"{HUB_ID}/certificates/a", "properties": {"thumbprint": "AB" * 20}}
    entry["properties"]["Thumbprint"] = "CD" * 20
    with pytest.raises(ListingError) as caught:
        parse_listing_document([entry])
    assert caught.value.code == "duplicate-json-key"


def test_duplicate_keys_are_refused_through_the_analysis_with_their_code() -> None:
    entry = json.dumps(arm_entry(HUB_ID, "a", CA, verified=True))
    data = '{"value": [], "value": [' + entry + "]}"
    result = analyze_bytes("dup.json", data.encode(), load_rules())
    assert (str(result.status), str(result.error.code)) == ("unreadable", "duplicate-json-key")


# --- a listing after a PEM block -------------------------------------------------------------

MIXED = {
    "PEM then listing": CA.pem + arm_listing(HUB_ID, [("ca", CA, True)]),
    "PEM then PowerShell listing": CA.pem.decode().encode("utf-16")
    + powershell_file(json.loads(arm_listing(HUB_ID, [("ca", CA, True)])))[2:],
    "two PEMs then manifest": CA.pem
    + NEW.pem
    + b'{"schema": "ca-watch/registrations/v1", "target": "x", "certificates": []}',
}


@pytest.mark.parametrize("data", MIXED.values(), ids=MIXED.keys())
def test_a_listing_after_a_pem_block_is_refused_with_a_code(data: bytes) -> None:
    result = analyze_bytes("mixed.pem", data, load_rules())
    assert str(result.status) == "unreadable"
    assert str(result.error.code) == "listing-in-certificate-file"
    assert "own file" in result.error.message
    assert result.certificates == () and result.listing is None


def test_a_pem_file_with_braces_elsewhere_is_still_a_certificate() -> None:
    text = b"Subject: CN={tenant}\n" + CA.pem + b"\n# {not a listing}\n"
    result = analyze_bytes("ca.pem", text, load_rules())
    assert str(result.status) == "analyzed" and len(result.certificates) == 1


def test_ca_watch_scan_says_why(tmp_path: Path) -> None:
    (tmp_path / "mixed.pem").write_bytes(MIXED["PEM then listing"])
    (tmp_path / "dup.json").write_bytes(
        b'{"schema": "ca-watch/registrations/v1", "target": "a", "target": "b"}'
    )
    done = subprocess.run(
        [sys.executable, "-m", "shared.local.cli", "scan", "--json", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    codes = {Path(r["source"]).name: r["error"]["code"] for r in json.loads(done.stdout)["results"]}
    assert codes == {"mixed.pem": "listing-in-certificate-file", "dup.json": "duplicate-json-key"}
