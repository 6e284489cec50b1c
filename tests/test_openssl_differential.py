"""Differential test: our mismatch verdict agrees with `openssl verify` on every generated
certificate. OpenSSL compares the outer and inner AlgorithmIdentifiers (OID and
parameters) before checking the signature and answers "error 7" on a difference."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from analyzer_samples import INSIDE, NOW, OPENSSL, OUTSIDE, pca, rules, tenant

from shared.analysis.scan import analyze_bytes
from shared.local import samples

pytestmark = pytest.mark.usefixtures("openssl_command")

KINDS = [None, "oid-outer", "oid-inner", "null-outer", "null-inner"]


def _case(subject: str, when: str, kind: str | None) -> tuple[bytes, bytes]:
    """(certificate DER, CA file PEM holding its issuer chain)."""
    tenant_ca = tenant(INSIDE if when == "inside" else OUTSIDE)
    if subject == "tenant-ca":
        issued, signer, ca_file = tenant_ca, pca(), pca().pem
    else:
        issued = samples.device_certificate(tenant_ca, "5a" * 64)
        signer, ca_file = tenant_ca, tenant_ca.pem + pca().pem
    der = samples.mismatched(issued, signer, kind) if kind else issued.der
    return der, ca_file


def _openssl_verify(der: bytes, ca_file: bytes, tmp_path: Path) -> subprocess.CompletedProcess:
    cert_path, ca_path = tmp_path / "cert.pem", tmp_path / "ca.pem"
    cert_path.write_bytes(samples.pem(der))
    ca_path.write_bytes(ca_file)
    return subprocess.run(
        [str(OPENSSL), "verify", "-no_check_time", "-CAfile", str(ca_path), str(cert_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k or "normal")
@pytest.mark.parametrize("when", ["inside", "outside"])
@pytest.mark.parametrize("subject", ["tenant-ca", "device"])
def test_openssl_error_7_exactly_where_we_report_a_mismatch(
    subject: str, when: str, kind: str | None, tmp_path: Path
) -> None:
    der, ca_file = _case(subject, when, kind)
    result = analyze_bytes("cert.der", der, rules(), NOW)
    (cert,) = result.certificates
    ours = str(cert.facts.mismatch)
    assert (ours != "none") == (kind is not None)  # the fixture is what it claims

    done = _openssl_verify(der, ca_file, tmp_path)
    output = done.stdout + done.stderr
    if ours == "none":
        assert done.returncode == 0, output
        assert output.strip().endswith("OK")
    else:
        assert done.returncode != 0, output
        assert "error 7" in output, output
        assert "certificate signature failure" in output


def test_openssl_detects_a_broken_signature_differently(tmp_path: Path) -> None:
    """Guard: OpenSSL also says error 7 for a wrong signature, so the differential is
    only sound because every fixture is validly signed (the "normal" cases pass). A
    wrongly signed certificate with agreeing algorithms is no mismatch for us."""
    issued = tenant(OUTSIDE)
    other_key = samples.azure_sphere_pca(seed=6).key
    der = samples.with_algorithms(issued.der, other_key)  # same algorithms, wrong signer
    result = analyze_bytes("cert.der", der, rules(), NOW)
    assert str(result.certificates[0].facts.mismatch) == "none"
    done = _openssl_verify(der, pca().pem, tmp_path)
    assert done.returncode != 0
