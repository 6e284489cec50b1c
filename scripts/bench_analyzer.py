#!/usr/bin/env python3
"""Benchmark of the certificate analyzer (issue 2), as ratios against the baselines.

- ours: median (over >= 5 repeats) of the mean ``analyze_bytes`` time per certificate, in
  one process, over 5,000 distinct generated tenant CAs, as PEM and as DER;
- pkilint: the same certificates linted in one process with its RFC 5280 validator built
  once (timed on a subset, expressed per certificate);
- ``openssl x509 -noout -in FILE``: one process per file, as operators script it today.

Run: ``python scripts/bench_analyzer.py`` (or ``make bench``, whose ``scripts/bench.py``
imports ``run`` from here). ``run()`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.alerts.rules import load_rules  # noqa: E402
from shared.analysis.scan import analyze_bytes  # noqa: E402
from shared.local import samples  # noqa: E402

PEM_TARGET_US = 25.0
PKILINT_TARGET_RATIO = 50.0
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def generate(count: int) -> list[samples.Issued]:
    """``count`` distinct tenant CAs: own tenant id, serial and notBefore each (some in the
    2020 incident window), all issued by one PCA stand-in."""
    pca = samples.azure_sphere_pca()
    start = datetime(2019, 1, 1, tzinfo=UTC)
    step = timedelta(hours=7, seconds=13)
    return [
        samples.tenant_ca(
            str(uuid.UUID(int=(index + 1) * 0x9E3779B97F4A7C15)),
            start + index * step,
            issuer=pca,
            serial=0x10000 + index,
        )
        for index in range(count)
    ]


def time_ours(files: list[bytes], repeats: int) -> float:
    """Median over ``repeats`` of the mean per-certificate time of ``analyze_bytes``, µs."""
    rules = load_rules()
    for data in files[:200]:  # warm-up: imports, regex compilation
        analyze_bytes("warm", data, rules, NOW)
    means = []
    for _ in range(repeats):
        begin = time.perf_counter()
        for data in files:
            analyze_bytes("bench", data, rules, NOW)
        means.append((time.perf_counter() - begin) / len(files) * 1e6)
    return statistics.median(means)


def time_wrapped(issued: list[samples.Issued], repeats: int) -> dict[str, float]:
    """Per-certificate µs of two-certificate chain files (tenant CA + its issuer) as a PEM
    bundle and as PKCS#7 (DER): the wrapper walk and the chain check, per certificate."""
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    pca = samples.azure_sphere_pca()
    kinds = {
        "pem_bundle": [item.pem + pca.pem for item in issued],
        "pkcs7_der": [
            pkcs7.serialize_certificates([item.certificate, pca.certificate], Encoding.DER)
            for item in issued
        ],
    }
    figures = {}
    for kind, files in kinds.items():
        result = analyze_bytes("check", files[0], load_rules(), NOW)
        if result.error is not None or len(result.certificates) != 2:
            raise SystemExit(f"benchmark chain file not analysed: {result.error}")
        figures[kind] = time_ours(files, repeats) / 2
    return figures


def check_results(files: list[bytes]) -> None:
    """The timed work is real work: every file gives one analysed certificate."""
    rules = load_rules()
    for data in files:
        result = analyze_bytes("check", data, rules, NOW)
        if result.error is not None or len(result.certificates) != 1:
            raise SystemExit(f"benchmark input not analysed: {result.error}")


def time_pkilint(ders: list[bytes], repeats: int = 3) -> float | None:
    """Per-certificate µs of pkilint's RFC 5280 certificate lint, validator built once."""
    try:
        from pkilint import loader
        from pkilint.pkix import certificate, extension, name
    except ImportError:
        return None
    validator = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    document_loader = loader.RFC5280CertificateDocumentLoader()
    doc = document_loader.load_der_document(ders[0], "warm")
    validator.validate(doc.root)
    means = []
    for _ in range(repeats):
        begin = time.perf_counter()
        for index, der in enumerate(ders):
            doc = document_loader.load_der_document(der, f"cert-{index}")
            validator.validate(doc.root)
        means.append((time.perf_counter() - begin) / len(ders) * 1e6)
    return statistics.median(means)


def time_openssl(pems: list[bytes]) -> float | None:
    """Per-certificate median µs of ``openssl x509 -noout -in FILE``, one process each."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-openssl-") as folder:
        paths = []
        for index, data in enumerate(pems):
            path = Path(folder) / f"cert-{index}.pem"
            path.write_bytes(data)
            paths.append(path)
        times = []
        for path in paths:
            begin = time.perf_counter()
            subprocess.run(
                [openssl, "x509", "-noout", "-in", str(path)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times.append((time.perf_counter() - begin) * 1e6)
    return statistics.median(times)


def run(
    count: int = 5000,
    repeats: int = 5,
    pkilint_subset: int = 300,
    openssl_files: int = 200,
    out: Any = None,
) -> dict[str, Any]:
    """Run the benchmark, print the figures to ``out`` (stdout), return them."""
    out = out or sys.stdout
    issued = generate(count)
    pems = [item.pem for item in issued]
    ders = [item.der for item in issued]
    if len(set(ders)) != count:
        raise SystemExit("benchmark certificates are not distinct")
    check_results(pems[:50] + ders[:50])

    pem_us = time_ours(pems, repeats)
    der_us = time_ours(ders, repeats)
    wrapped = time_wrapped(issued[: max(count // 10, 50)], repeats)
    pkilint_us = time_pkilint(ders[:pkilint_subset])
    openssl_us = time_openssl(pems[:openssl_files])

    figures: dict[str, Any] = {
        "certificates": count,
        "repeats": repeats,
        "analyzer_pem_us": round(pem_us, 2),
        "analyzer_der_us": round(der_us, 2),
        "analyzer_pem_bundle_chain_us": round(wrapped["pem_bundle"], 2),
        "analyzer_pkcs7_chain_us": round(wrapped["pkcs7_der"], 2),
        "analyzer_pem_target_us": PEM_TARGET_US,
        "analyzer_pem_ok": pem_us <= PEM_TARGET_US,
        "pkilint_us": round(pkilint_us, 1) if pkilint_us else None,
        "pkilint_subset": pkilint_subset,
        "pkilint_ratio": round(pkilint_us / pem_us, 1) if pkilint_us else None,
        "pkilint_ratio_target": PKILINT_TARGET_RATIO,
        "openssl_us": round(openssl_us, 1) if openssl_us else None,
        "openssl_files": openssl_files,
        "openssl_ratio": round(openssl_us / pem_us, 1) if openssl_us else None,
    }
    figures["pkilint_ok"] = bool(
        figures["pkilint_ratio"] and figures["pkilint_ratio"] >= PKILINT_TARGET_RATIO
    )

    print(f"analyzer: {count} distinct certificates, median of {repeats} runs", file=out)
    print(
        f"analyzer: PEM median {pem_us:.1f} µs/cert (target <= {PEM_TARGET_US:g})"
        f"{'' if figures['analyzer_pem_ok'] else '  ** OVER TARGET **'}",
        file=out,
    )
    print(f"analyzer: DER median {der_us:.1f} µs/cert", file=out)
    print(
        f"analyzer: chain files (tenant CA + issuer, signature checked): PEM bundle "
        f"{wrapped['pem_bundle']:.1f} µs/cert, PKCS#7 {wrapped['pkcs7_der']:.1f} µs/cert",
        file=out,
    )
    if pkilint_us:
        print(
            f"pkilint: {pkilint_us / 1000:.2f} ms/cert ({pkilint_subset} certs, validator built "
            f"once) -> {figures['pkilint_ratio']:g}x slower than ours "
            f"(target >= {PKILINT_TARGET_RATIO:g}x)"
            f"{'' if figures['pkilint_ok'] else '  ** UNDER TARGET **'}",
            file=out,
        )
    else:
        print("pkilint: not installed, skipped", file=out)
    if openssl_us:
        print(
            f"openssl x509 -noout: {openssl_us / 1000:.2f} ms/cert (one process per file, "
            f"{openssl_files} files) -> {figures['openssl_ratio']:g}x slower than ours",
            file=out,
        )
    else:
        print("openssl: command not found, skipped", file=out)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="distinct certificates")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median taken)")
    parser.add_argument("--pkilint-subset", type=int, default=300)
    parser.add_argument("--openssl-files", type=int, default=200)
    args = parser.parse_args(argv)
    figures = run(args.count, max(args.repeats, 1), args.pkilint_subset, args.openssl_files)
    return 0 if figures["analyzer_pem_ok"] and figures["pkilint_ok"] in (True,) else 1


if __name__ == "__main__":
    sys.exit(main())
