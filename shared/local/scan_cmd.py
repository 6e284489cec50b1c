"""``ca-watch scan``: analyse certificate files locally (no Azure needed)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.local.common import (
    EXIT_ACTION,
    EXIT_OK,
    Progress,
    describe_error,
    json_bytes,
    paint,
    parse_when,
    printable,
    terminal_width,
    use_colour,
    write_stdout,
)
from shared.local.inputs import TooLarge, read_input, walk_inputs
from shared.local.table import Shrink, render_table

HEADER = (
    "FILE",
    "VERDICT",
    "VALIDITY",
    "ROLE",
    "TENANT",
    "START (notBefore)",
    "MISMATCH",
    "SHA-1",
    "ERROR",
)
# Too wide for the terminal: the error text wraps first, then the SHA-1 keeps a prefix
# long enough to find it (as git does), the file name loses its start, the tenant its end.
SHRINK = (
    Shrink(8, 50, "wrap"),
    Shrink(7, 16, "right"),
    Shrink(0, 40, "left"),
    Shrink(8, 30, "wrap"),
    Shrink(0, 24, "left"),
    Shrink(4, 13, "right"),
)


def validity(facts: Any, now: datetime) -> str:
    if now < facts.not_before:
        return "not-yet-valid"
    return "expired" if now > facts.not_after else "valid"


def error_text(error: Any) -> str:
    return describe_error(str(error.code), error.message)


def _error_row(result: Any) -> tuple[str, ...]:
    return (printable(result.source), str(result.status), *("-",) * 6, error_text(result.error))


def render_scan_table(
    results: Sequence[Any], stream: TextIO, now: datetime | None = None, *, write: bool = True
) -> str:
    """The table and its summary, written to ``stream`` in one write."""
    now = now or datetime.now(UTC)
    colour = use_colour(stream)
    rows: list[tuple[str, ...]] = []
    for result in results:
        for cert in result.certificates:
            facts, cls = cert.facts, cert.classification
            rows.append(
                (
                    printable(result.source),
                    str(cls.verdict),
                    validity(facts, now),
                    str(cls.role or "-"),
                    cls.tenant_id or "-",
                    facts.not_before.strftime("%Y-%m-%d %H:%M:%S"),
                    str(facts.mismatch),
                    facts.sha1_thumbprint,
                    "",
                )
            )
        if result.error is not None:
            rows.append(_error_row(result))
    header: Sequence[str] = HEADER
    if not any(row[-1] for row in rows):  # no error: no empty column
        header, rows = HEADER[:-1], [row[:-1] for row in rows]

    def painter(column: int, value: str, padded: str) -> str:
        if column == 1:
            return paint(padded, value, colour)
        if column == 2 and value in ("expired", "not-yet-valid"):
            return paint(padded, "unreadable", colour)
        return padded

    text = (
        render_table(header, rows, terminal_width(stream), SHRINK, painter) + "\n" if rows else ""
    )
    text += summary(results, now) + "\n"
    if write:
        write_stdout(text.encode("utf-8"), stream)
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(results: Sequence[Any], now: datetime) -> str:
    """``7 files, 8 certificates: 2 affected, 6 ok (1 expired); 1 file unreadable``."""
    verdicts: dict[str, int] = {}
    validities: dict[str, int] = {}
    statuses: dict[str, int] = {}
    certificates = 0
    for result in results:
        if result.error is not None:
            statuses[str(result.status)] = statuses.get(str(result.status), 0) + 1
        for cert in result.certificates:
            certificates += 1
            verdict = str(cert.classification.verdict)
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            state = validity(cert.facts, now)
            if state != "valid":
                validities[state] = validities.get(state, 0) + 1
    text = f"{_plural(len(results), 'file')}, {_plural(certificates, 'certificate')}"
    if verdicts:
        text += ": " + ", ".join(f"{n} {k}" for k, n in sorted(verdicts.items()))
    if validities:
        text += " (" + ", ".join(f"{n} {k}" for k, n in sorted(validities.items())) + ")"
    if statuses:
        text += "; " + ", ".join(f"{_plural(n, 'file')} {k}" for k, n in sorted(statuses.items()))
    return text


def scan_json(results: Sequence[Any], now: datetime) -> bytes:
    """The ``ca-watch/scan/v1`` document, with each certificate's additive ``validity``
    at ``now``, serialised in one call."""
    from shared.analysis.scan import scan_document

    document = scan_document(list(results))
    for result, body in zip(results, document["results"], strict=True):
        for cert, cert_body in zip(result.certificates, body["certificates"], strict=True):
            cert_body["validity"] = validity(cert.facts, now)
    return json_bytes(document, may_hold_floats=False)


def command_scan(args: argparse.Namespace) -> int:
    from shared.alerts.rules import load_rules
    from shared.analysis.reader import ReadResult, too_large
    from shared.analysis.scan import analyze_bytes, analyze_read_result
    from shared.local.inputs import problem_of
    from shared.settings import Settings

    settings = Settings.from_env()
    rules = load_rules(settings.rules_file)
    now = parse_when(args.now) if args.now else datetime.now(UTC)
    limit = settings.max_upload_bytes
    inputs, empty = walk_inputs(args.paths)
    progress = Progress(len(inputs), "scanned", quiet=args.quiet)
    results = []
    for done, item in enumerate(inputs, start=1):
        problem = item.problem
        if problem is None:
            try:
                data = read_input(item, limit)
            except OSError as exc:
                problem = problem_of(exc)
        if problem is not None:
            result = analyze_read_result(item.source, ReadResult(error=problem), rules, now)
        elif type(data) is TooLarge:  # refused without reading the file
            result = analyze_read_result(item.source, too_large(data.size, limit), rules, now)
        else:
            result = analyze_bytes(item.source, data, rules, now, limit)
        results.append(result)
        progress.update(done)
    if args.json:
        write_stdout(scan_json(results, now))
    else:
        render_scan_table(results, sys.stdout, now)
    for folder in empty:
        print(f"ca-watch: {folder}: no file in it to read", file=sys.stderr)
    needs_action = empty or any(r.needs_action for r in results)
    return EXIT_ACTION if needs_action else EXIT_OK


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
            "  ca-watch scan --now 2020-08-04T09:00:00Z tenant-ca.pem\n"
            "  curl -s https://example.test/ca.pem | ca-watch scan -\n\n"
            "verdicts: affected (tenant CA issued in the 2020-06-16 21:00 .. 2020-07-28 "
            "00:15 UTC window),\n"
            "          signature-mismatch (any other certificate with a mismatch), ok.\n"
            "validity: valid, expired or not-yet-valid at --now (a column in the table, a\n"
            "          `validity` field per certificate in --json).\n"
            "exit codes: 0 all ok; 1 any affected, signature-mismatch, unreadable or "
            "rejected file, or a directory with no file in it; 2 usage error."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or directories (walked); - reads stdin (FIFOs and /dev/stdin work too)",
    )
    scan.add_argument("--json", action="store_true", help="print the ca-watch/scan/v1 JSON")
    scan.add_argument("--now", metavar="ISO", help="the time to judge expiry by (default: now)")
    scan.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    scan.set_defaults(handler=command_scan)
