"""The golden scan corpus: fixed certificate files under tests/data/golden/ and the scan/v1
JSON the analysis must give for them at GOLDEN_NOW (test_mutants_golden.py compares).

Not a test module. Regenerate only on purpose, and review the JSON diff like code:
    .venv/bin/python tests/golden_files.py
The files themselves are committed (ECDSA signatures are random, so they are made once).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "golden"
EXPECTED = GOLDEN / "expected-scan.json"
GOLDEN_NOW = datetime(2020, 8, 4, 9, 0, 0, tzinfo=UTC)
TENANT = "9d7e79eb-e021-43ce-9f2b-fa944b447494"


def golden_sources() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if not p.name.startswith("expected-"))


def scan_golden() -> dict[str, object]:
    from shared.alerts.rules import DEFAULT_RULES_PATH, load_rules
    from shared.analysis.scan import analyze_bytes, scan_document

    rules = load_rules(DEFAULT_RULES_PATH)
    results = [analyze_bytes(p.name, p.read_bytes(), rules, GOLDEN_NOW) for p in golden_sources()]
    return scan_document(results)


def _write_files() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    from shared.local import samples

    pca = samples.azure_sphere_pca()
    year = timedelta(days=730, hours=3)

    def tenant(tid: str, not_before: datetime, seed: int, **kw: object) -> samples.Issued:
        return samples.tenant_ca(tid, not_before, issuer=pca, key_seed=seed, serial=seed, **kw)

    inside = tenant(TENANT, datetime(2020, 7, 1, 12, tzinfo=UTC), 31)
    edge_start = tenant(
        "00000000-0000-4000-8000-000000000001", datetime(2020, 6, 16, 21, tzinfo=UTC), 32
    )
    edge_end = tenant(
        "00000000-0000-4000-8000-000000000002", datetime(2020, 7, 28, 0, 15, tzinfo=UTC), 33
    )
    before = tenant(
        "00000000-0000-4000-8000-000000000003", datetime(2020, 6, 16, 20, 59, 59, tzinfo=UTC), 34
    )
    after = tenant(
        "00000000-0000-4000-8000-000000000004", datetime(2020, 7, 28, 0, 15, 1, tzinfo=UTC), 35
    )
    # notAfter 2020-10-01: in rotation (58 days left), next deadline "register" on 2020-08-17.
    rotating = tenant(
        "00000000-0000-4000-8000-000000000005", datetime(2020, 10, 1, tzinfo=UTC) - year, 36
    )
    # notAfter 2020-08-31: in rotation, only the expiry deadline left.
    last_days = tenant(
        "00000000-0000-4000-8000-000000000006", datetime(2020, 8, 31, tzinfo=UTC) - year, 37
    )
    expired = tenant("00000000-0000-4000-8000-000000000007", datetime(2018, 1, 2, tzinfo=UTC), 38)
    upper = tenant("ABCDEF00-0000-4000-8000-00000000000A", datetime(2019, 5, 1, tzinfo=UTC), 39)
    not_microsoft = tenant(
        "00000000-0000-4000-8000-000000000008",
        datetime(2019, 5, 1, tzinfo=UTC),
        40,
        organization="Contoso",
    )
    device = samples.device_certificate(upper, device_id="ab" * 64, key_seed=41)
    short_device = samples.device_certificate(upper, device_id="ab" * 63, key_seed=42)
    proof = samples.verification_certificate(upper)
    chain = pkcs7.serialize_certificates([upper.certificate, device.certificate], Encoding.DER)
    files: dict[str, bytes] = {
        "01-inside-oid-outer.cer": samples.mismatched(inside, pca, "oid-outer"),
        "02-inside-null-outer.pem": samples.pem(samples.mismatched(inside, pca, "null-outer")),
        "03-window-start.der": edge_start.der,
        "04-window-end.der": edge_end.der,
        "05-before-window-oid-inner.der": samples.mismatched(before, pca, "oid-inner"),
        "06-after-window-null-inner.der": samples.mismatched(after, pca, "null-inner"),
        "07-rotating.pem": rotating.pem,
        "08-last-days.pem": last_days.pem,
        "09-expired.pem": expired.pem,
        "10-not-microsoft.pem": not_microsoft.pem,
        "11-device.pem": device.pem,
        "12-short-device-id.pem": short_device.pem,
        "13-proof-of-possession.pem": proof.pem,
        "14-pca.pem": pca.pem,
        "15-chain.p7b": chain,
        "16-bundle-repeats.pem": upper.pem + device.pem + upper.pem,
        "17-bundle-one-broken.pem": upper.pem + samples.pem(device.der[:-20] + b"\x00" * 20),
        "18-not-a-certificate.txt": b"These are not the certificates you are looking for.\n",
        "19-empty.cer": b"",
        "20-truncated.der": upper.der[:100],
    }
    unknown = bytes.fromhex("3005060329010f")  # AlgorithmIdentifier { 1.1.1.15 }, no params
    files["21-negative-serial.der"] = _with_serial(upper, pca, bytes.fromhex("ff38"))  # -200
    files["22-serial-zero.der"] = _with_serial(upper, pca, b"\x00")
    files["23-unknown-algorithm.der"] = samples.with_algorithms(
        upper.der, pca.key, inner=unknown, outer=unknown
    )
    # An outer structure the reader accepts around a TBSCertificate that is only a serial.
    bits = samples.encode(0x03, b"\x00" + b"\x01" * 8)
    files["24-malformed-tbs.pem"] = samples.pem(
        samples.encode(0x30, samples.encode(0x30, b"\x02\x01\x01") + unknown + bits)
    )
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if not (GOLDEN / name).exists():  # signatures are random: keep the committed files
            (GOLDEN / name).write_bytes(data)


def _with_serial(issued: object, signer: object, serial_content: bytes) -> bytes:
    """The certificate with its serial INTEGER's content replaced, signed again."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from shared.analysis.der import TAG_SEQUENCE, children, element_bytes, expect, read_tlv
    from shared.local import samples

    der = issued.der
    cert = read_tlv(der, 0, len(der))
    tbs_tlv, outer_tlv, _bits = children(der, cert)
    fields = children(der, expect(tbs_tlv, TAG_SEQUENCE, "TBSCertificate"))
    index = 1 if fields[0][0] == 0xA0 else 0
    parts = [element_bytes(der, field) for field in fields]
    parts[index] = samples.encode(0x02, serial_content)
    tbs = samples.encode(TAG_SEQUENCE, b"".join(parts))
    signature = signer.key.sign(tbs, ec.ECDSA(samples.hashes.SHA256()))
    return samples.encode(
        TAG_SEQUENCE,
        tbs + element_bytes(der, outer_tlv) + samples.encode(0x03, b"\x00" + signature),
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    if "--files" in sys.argv:
        _write_files()
    EXPECTED.write_text(json.dumps(scan_golden(), indent=2) + "\n")
