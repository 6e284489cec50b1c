"""``ca-watch``: scan certificates, and drive the function app locally against Azurite.

Exit codes: 0 nothing needs action; 1 something does (an affected or mismatched
certificate, an unreadable or rejected file, a failed alert); 2 a usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_ACTION, EXIT_USAGE = 0, 1, 2
PROGRESS_THRESHOLD = 200  # files; below this a scan is quick enough to need no progress


class UsageError(Exception):
    """Wrong arguments or settings: printed without a traceback, exit 2."""


def parse_when(text: str) -> datetime:
    """ISO 8601 date or date-time; a time without a zone is UTC."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 date-time (e.g. 2020-08-04T09:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- scan --------------------------------------------------------------------------
def iter_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return files


class Progress:
    """Progress on stderr for long work, at most a few lines a second; silent when short."""

    def __init__(self, total: int, what: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.what, self.stream = total, what, stream
        self.enabled = total >= PROGRESS_THRESHOLD
        self.tty = stream.isatty()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.5 and done != self.total):
            return
        self.last = now
        end = "\r" if self.tty and done != self.total else "\n"
        self.stream.write(f"{self.what} {done}/{self.total}{end}")
        self.stream.flush()


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


_COLOURS = {
    "ok": "32",
    "affected": "31;1",
    "signature-mismatch": "31",
    "unreadable": "33",
    "rejected": "35",
}


def _paint(text: str, key: str, enabled: bool) -> str:
    code = _COLOURS.get(key)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def _error_row(result: Any) -> tuple[str, ...]:
    error = result.error
    return (result.source, str(result.status), "-", "-", "-", "-", f"{error.code}: {error.message}")


def render_scan_table(results: Sequence[Any], stream: TextIO) -> None:
    colour = _colour(stream)
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
        cells[1] = _paint(cells[1], row[1], colour)
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


# --- the parser --------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ca-watch",
        description=(
            "CA Rotation Watch: find Azure Sphere tenant CA certificates hit by the July 2020 "
            "signature-algorithm incident or due for rotation, and alert before trust breaks."
        ),
        epilog=(
            "Exit codes: 0 nothing needs action, 1 something needs action, 2 usage error.\n"
            "Settings come from the environment (see local.settings.json.example).\n"
            "Run 'ca-watch COMMAND --help' for each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    _add_local_commands(commands)
    return parser


def _add_local_commands(commands: Any) -> None:
    """The commands that drive the function app (upload, process, report, alerts, ack)."""
    from shared.local.runner import add_commands  # imported here: it imports this module

    add_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"ca-watch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # settings and rules errors explain themselves
        from shared.alerts.rules import RulesError
        from shared.settings import SettingsError

        if isinstance(exc, SettingsError | RulesError):
            print(f"ca-watch: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
