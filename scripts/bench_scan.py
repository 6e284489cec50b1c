#!/usr/bin/env python3
"""Benchmark of ``ca-watch scan --json`` as users run it (issue 13): the whole process over
5,000 PEM files, its JSON sent to a file, with and without ``PYTHONUNBUFFERED=1``.

Against, in the same run, interleaved, medians:
- pkilint in one process over the same files (its RFC 5280 validator built once, each
  file read and its PEM decoded to DER, as ``scripts/bench_analyzer.py`` drives it);
- the floor: ``python -c`` that walks and reads the same files and writes the same JSON
  (interpreter start-up, the walk, the reads and the write: what no scanner can avoid).

Targets: >= 25x faster than pkilint, <= 2x the floor. Run: ``python scripts/bench_scan.py``
(or ``make bench``, whose ``scripts/bench.py`` imports ``run`` from here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "scripts"):  # the project, and bench_analyzer beside this file
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_analyzer import generate  # noqa: E402

PKILINT_TARGET_RATIO = 25.0
FLOOR_TARGET_RATIO = 2.0
NOW = "2024-01-01T00:00:00Z"

# The floor: start the interpreter, walk and read every file, write the same JSON.
FLOOR = """
import os, sys
def walk(folder):
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            walk(entry.path)
        else:
            with open(entry.path, "rb") as stream:
                stream.read()
walk(sys.argv[1])
with open(sys.argv[2], "rb") as stream:
    document = stream.read()
sys.stdout.buffer.write(document)
"""

# The floor with the analysis: the same, plus what any scanner must do in one process:
# analyse each file and build and serialise the scan/v1 document (no CLI around it).
FLOOR_ANALYSIS = """
import os, sys
from datetime import datetime
import orjson
from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes, scan_document
rules, now, results = load_rules(), datetime.fromisoformat(sys.argv[2]), []
def walk(folder):
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            walk(entry.path)
        else:
            with open(entry.path, "rb") as stream:
                results.append(analyze_bytes(entry.path, stream.read(), rules, now))
walk(sys.argv[1])
sys.stdout.buffer.write(orjson.dumps(scan_document(results), option=orjson.OPT_INDENT_2))
"""

# pkilint in one process: validator built once, then every file read, decoded and linted.
PKILINT = """
import base64, os, sys
from pkilint import loader
from pkilint.pkix import certificate, extension, name
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
linted = 0
for entry in sorted(os.scandir(sys.argv[1]), key=lambda e: e.name):
    with open(entry.path, "rb") as stream:
        pem = stream.read()
    body = b"".join(pem.split(b"-----")[2].split())
    doc = document_loader.load_der_document(base64.b64decode(body), entry.name)
    validator.validate(doc.root)
    linted += 1
print(linted)
"""


def write_files(folder: Path, count: int) -> None:
    """``count`` distinct tenant CAs as PEM files (the analyzer bench's generator)."""
    for index, issued in enumerate(generate(count)):
        (folder / f"cert-{index:05}.pem").write_bytes(issued.pem)


def _env(unbuffered: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "RULES_FILE")}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def _timed(command: list[str], out: Path, env: dict[str, str]) -> float:
    with out.open("wb") as stream:
        begin = time.perf_counter()
        subprocess.run(
            command, stdout=stream, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, check=False
        )
        return time.perf_counter() - begin


def _pkilint_available() -> bool:
    try:
        import pkilint  # noqa: F401
    except ImportError:
        return False
    return True


def run(count: int = 5000, repeats: int = 5, pkilint_repeats: int = 3, out: Any = None) -> dict:
    """Run the benchmark, print the figures to ``out`` (stdout), return them."""
    out = out or sys.stdout
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as work:
        folder = Path(work) / "certs"
        folder.mkdir()
        write_files(folder, count)
        scan = [python, "-m", "shared.local.cli", "scan", "--json", "-q", "--now", NOW]
        reference = Path(work) / "reference.json"
        _timed([*scan, str(folder)], reference, _env(False))  # warm-up, and the JSON
        floor = [python, "-c", FLOOR, str(folder), str(reference)]
        pkilint = [python, "-c", PKILINT, str(folder)]
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "scan_buffered": ([*scan, str(folder)], _env(False)),
            "scan_unbuffered": ([*scan, str(folder)], _env(True)),
            "floor": (floor, _env(False)),
            "floor_analysis": (
                [python, "-c", FLOOR_ANALYSIS, str(folder), NOW.replace("Z", "+00:00")],
                _env(False),
            ),
        }
        if _pkilint_available():
            variants["pkilint"] = (pkilint, _env(False))
        times: dict[str, list[float]] = {name: [] for name in variants}
        outputs: dict[str, bytes] = {}
        for round_index in range(repeats):  # interleaved: each round runs every variant
            for name, (command, env) in variants.items():
                if name == "pkilint" and round_index >= pkilint_repeats:
                    continue
                target = Path(work) / f"{name}.out"
                times[name].append(_timed(command, target, env))
                outputs[name] = target.read_bytes()
        expected = reference.read_bytes()
    identical = (
        outputs["scan_buffered"] == expected
        and outputs["scan_unbuffered"] == expected
        and outputs["floor"] == expected
    )
    if "pkilint" in outputs and int(outputs["pkilint"] or b"0") != count:
        raise SystemExit(f"pkilint linted {outputs['pkilint']!r} files, not {count}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    figures: dict[str, Any] = {
        "files": count,
        "repeats": repeats,
        "json_bytes": len(expected),
        "outputs_identical": identical,
        **{f"{name}_s": round(value, 3) for name, value in medians.items()},
    }
    for mode in ("buffered", "unbuffered"):
        ours = medians[f"scan_{mode}"]
        figures[f"{mode}_floor_analysis_ratio"] = round(ours / medians["floor_analysis"], 2)
        figures[f"{mode}_floor_ratio"] = round(ours / medians["floor"], 2)
        figures[f"{mode}_floor_ok"] = ours / medians["floor"] <= FLOOR_TARGET_RATIO
        if "pkilint" in medians:
            figures[f"{mode}_pkilint_ratio"] = round(medians["pkilint"] / ours, 1)
            figures[f"{mode}_pkilint_ok"] = medians["pkilint"] / ours >= PKILINT_TARGET_RATIO

    print(
        f"scan: {count} PEM files, --json to a file, whole process, median of {repeats}", file=out
    )
    for mode in ("buffered", "unbuffered"):
        line = (
            f"scan ({mode:<10}): {medians[f'scan_{mode}']:.3f} s; "
            f"{figures[f'{mode}_floor_ratio']:g}x the floor (target <= {FLOOR_TARGET_RATIO:g}x)"
        )
        if "pkilint" in medians:
            line += (
                f"; pkilint is {figures[f'{mode}_pkilint_ratio']:g}x slower "
                f"(target >= {PKILINT_TARGET_RATIO:g}x)"
            )
        ok = figures[f"{mode}_floor_ok"] and figures.get(f"{mode}_pkilint_ok", True)
        print(line + ("" if ok else "  ** OFF TARGET **"), file=out)
    print(f"floor (python -c: walk, read, write the same JSON): {medians['floor']:.3f} s", file=out)
    print(
        f"floor + analysis (python -c: the same, analysing each file and building the "
        f"document): {medians['floor_analysis']:.3f} s; scan is "
        f"{figures['buffered_floor_analysis_ratio']:g}x / "
        f"{figures['unbuffered_floor_analysis_ratio']:g}x of it (buffered / unbuffered)",
        file=out,
    )
    if "pkilint" in medians:
        print(
            f"pkilint (one process, {len(times['pkilint'])} runs): {medians['pkilint']:.2f} s",
            file=out,
        )
    else:
        print("pkilint: not installed, skipped", file=out)
    print(f"outputs byte-identical (buffered, unbuffered, floor): {identical}", file=out)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="PEM files")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--pkilint-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    figures = run(args.count, max(args.repeats, 1), max(args.pkilint_repeats, 1))
    good = all(v for k, v in figures.items() if k.endswith("_ok")) and figures["outputs_identical"]
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
