"""``ca-watch scan``: analyse certificate files locally (no Azure needed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.local.common import (
    EXIT_ACTION,
    EXIT_OK,
    Progress,
    iter_files,
    paint,
    parse_when,
    use_colour,
)


def _error_row(result: Any) -> tuple[str, ...]:
    error = result.error
    return (result.source, str(result.status), "-", "-", "-", "-", f"{error.code}: {error.message}")


def render_scan_table(results: Sequence[Any], stream: TextIO) -> None:
    colour = use_colour(stream)
    header = ("FILE", "VERDICT", "ROLE", "TENANT", "START (notBefore)", "MISMATCH", "SHA-1")
    rows: list[tuple[str, ...]] = []
    for result in results:
        if result.error is not None and not result.certificates:
            rows.append(_error_row(result))
            continue
        for cert in result.certificates:
            facts, cls = cert.facts, cert.classification
            rows.append(
                (
                    result.source,
                    str(cls.verdict),
                    str(cls.role or "-"),
                    cls.tenant_id or "-",
                    facts.not_before.strftime("%Y-%m-%d %H:%M:%S"),
                    str(facts.mismatch),
                    facts.sha1_thumbprint,
                )
            )
        if result.error is not None:
            rows.append(_error_row(result))
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    widths[-1] = len(header[-1])  # last column is free text
    stream.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        cells[1] = paint(cells[1], row[1], colour)
        stream.write("  ".join(cells).rstrip() + "\n")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    stream.write(f"\n{len(results)} file(s): {summary or 'nothing found'}\n")


def command_scan(args: argparse.Namespace) -> int:
    from shared.alerts.rules import load_rules
    from shared.analysis.reader import too_large
    from shared.analysis.scan import analyze_bytes, analyze_read_result, scan_document
    from shared.settings import Settings

    settings = Settings.from_env()
    rules = load_rules(settings.rules_file)
    now = parse_when(args.now) if args.now else datetime.now(UTC)
    files = iter_files(args.paths)
    progress = Progress(len(files), "scanned")
    results = []
    for done, path in enumerate(files, start=1):
        source = str(path)
        size = path.stat().st_size
        if size > settings.max_upload_bytes:  # refused without reading the file
            results.append(
                analyze_read_result(source, too_large(size, settings.max_upload_bytes), rules, now)
            )
        else:
            results.append(
                analyze_bytes(source, path.read_bytes(), rules, now, settings.max_upload_bytes)
            )
        progress.update(done)
    if args.json:
        json.dump(scan_document(results), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_scan_table(results, sys.stdout)
    return EXIT_ACTION if any(r.needs_action for r in results) else EXIT_OK


def add_scan_command(commands: Any) -> None:
    scan = commands.add_parser(
        "scan",
        help="analyse certificate files locally (no Azure needed)",
        description=(
            "Read certificates (PEM, DER .cer/.crt, base64, PKCS#7 .p7b, PKCS#12 without a "
            "password) and report for each: role, tenant, whether its outer and inner "
            "signature algorithm identifiers differ (OpenSSL error 7), and the verdict."
        ),
        epilog=(
            "examples:\n"
            "  ca-watch scan CAcertificate.cer\n"
            "  ca-watch scan --json certs/ > scan.json\n"
            "  ca-watch scan --now 2020-08-04T09:00:00Z tenant-ca.pem\n\n"
            "verdicts: affected (tenant CA issued in the 2020-06-16 21:00 .. 2020-07-28 "
            "00:15 UTC window),\n"
            "          signature-mismatch (any other certificate with a mismatch), ok.\n"
            "exit codes: 0 all ok; 1 any affected, signature-mismatch, unreadable or "
            "rejected; 2 usage error."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (walked)")
    scan.add_argument("--json", action="store_true", help="print the ca-watch/scan/v1 JSON")
    scan.add_argument("--now", metavar="ISO", help="the time to judge expiry by (default: now)")
    scan.set_defaults(handler=command_scan)
