"""``ca-watch report``: what the tables hold, as text, ``ca-watch/report/v1`` JSON or the
fleet report page. Exit 1 while something needs action."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.alerts.states import state
from shared.local.common import (
    EXIT_ACTION,
    EXIT_OK,
    UsageError,
    describe_error,
    json_bytes,
    parse_when,
    printable,
    terminal_width,
    write_stdout,
)
from shared.local.runner import STORAGE_HELP, local_runtime
from shared.local.table import Shrink, render_table


def state_column(cert: dict[str, Any], state_id: str, sha1_of: dict[str, str]) -> str:
    """A tenant CA's state as the fleet page names it (shared/alerts/states.py), with the
    detail a terminal reader needs: who replaced or acknowledged it, where it waits."""
    label = state(state_id).label
    if state_id == "resolved" and cert.get("resolved_by"):
        replacement = cert["resolved_by"]
        return f"{label}, replaced by {sha1_of.get(replacement) or 'SHA-256 ' + replacement[:16]}"
    if state_id == "acknowledged" and isinstance(cert.get("acknowledged"), dict):
        return f"{label} by {cert['acknowledged'].get('by', '?')}"
    if state_id == "pending" and cert.get("renewal_pending"):
        return f"{label}: renewal not verified in {len(cert['renewal_pending'])} target(s)"
    return label


def render_report(
    report: dict[str, Any], stream: Any, states: Mapping[str, str] | None = None
) -> None:
    """The tables as text; ``states`` (sha256 -> state id) are the fleet page's, so both
    say the same (without them: the document's own ``state``, else derived as the page
    does from the document alone)."""
    from shared.report.fleet import document_state

    certs = report["certificates"]
    stream.write(f"{len(certs)} certificate(s), {len(report['uploads'])} upload(s)\n\n")

    header = ("VERDICT", "ROLE", "TENANT", "START (notBefore)", "SHA-1", "STATE")
    rows = []
    # One identifier style: the SHA-1 thumbprint Azure shows; a SHA-256 (the table's key)
    # only where no SHA-1 is on record, and then marked as one.
    sha1_of = {c["sha256_fingerprint"]: c["sha1_thumbprint"] for c in certs}
    for cert in certs:
        state_id = (states or {}).get(cert["sha256_fingerprint"]) or document_state(cert)
        text = state_column(cert, state_id, sha1_of)
        rows.append((
            cert["verdict"], cert["azure_sphere"]["role"] or "-",
            cert["azure_sphere"]["tenant_id"] or "-", cert["not_before"],
            cert["sha1_thumbprint"],
            text if cert["azure_sphere"]["role"] == "tenant-ca" else "-",
        ))  # fmt: skip
    width = terminal_width(stream)
    shrink = (Shrink(5, 20, "wrap"), Shrink(4, 16, "right"), Shrink(2, 13, "right"))
    stream.write(render_table(header, rows, width, shrink))
    _render_registrations(report, stream)
    uploads = []
    for upload in report["uploads"]:
        error = upload["error"]
        detail = (
            describe_error(error["code"], error["message"])
            if error
            else f"registration listing ({upload['format']})"
            if upload.get("format") in LISTING_FORMATS and not upload["certificates"]
            else ", ".join(
                sha1_of.get(sha, "SHA-256 " + sha[:16]) for sha in upload["certificates"]
            )
        )
        ignored = [
            f"{item['outcome']}: {item['target']}"
            for item in upload.get("listing_outcomes") or ()
            if item.get("outcome") != "recorded"
        ]
        if ignored:  # the listing changed nothing: say which target and why
            detail = f"listing ignored ({'; '.join(ignored)})"
        status = "retired" if upload.get("retired") else upload["status"]
        uploads.append((status, printable(upload["name"]), detail or "-"))
    stream.write("\nUPLOADS\n")
    upload_header = ("STATUS", "BLOB", "CERTIFICATES (SHA-1) OR ERROR")
    shrink = (Shrink(2, 30, "wrap"), Shrink(1, 20, "left"))
    stream.write(render_table(upload_header, uploads, width, shrink))


LISTING_FORMATS = ("iot-hub-certificates", "dps-certificates", "ca-watch-registrations")


def _render_registrations(report: dict[str, Any], stream: Any) -> None:
    """Per tenant CA, where it is registered; then each target's last listing."""
    targets = report.get("targets") or []
    if not targets:
        return
    stream.write("\nREGISTERED IN (per tenant CA)\n")
    for cert in report["certificates"]:
        if cert["azure_sphere"]["role"] != "tenant-ca":
            continue
        where = ", ".join(
            f"{r['display_name']} ({r['kind']}, {'verified' if r['verified'] else 'unverified'})"
            for r in cert.get("registrations") or []
        )
        stream.write(
            f"  {cert['azure_sphere']['tenant_id']}  {cert['sha1_thumbprint']}  "
            f"{where or 'no target lists it'}\n"
        )
    stream.write("\nTARGETS\n")
    for target in targets:
        error = target.get("error")
        detail = f"  last read failed: {error['code']}: {error['message']}" if error else ""
        stream.write(
            f"  {target['kind']:<11}  {target['display_name']}  {target['certificates']} CA(s), "
            f"seen {target.get('seen_at') or 'never'} from {target.get('source') or '-'}"
            f"{detail}\n"
        )


def write_html_report(rt: Any, target: str, moment: Any) -> Path:
    """``report --html FILE``: the fleet page, written whole or not at all."""
    from shared.app.report_writer import fleet_report

    path = Path(target)
    if path.is_dir():
        raise UsageError(f"--html {target!r} is a directory; name the file to write")
    if not path.parent.is_dir():
        raise UsageError(f"--html {target!r}: the folder {str(path.parent)!r} does not exist")
    _report, page = fleet_report(rt, moment)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {target!r}: {exc.strerror or exc}") from None
    return path


def command_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    rt = local_runtime()
    moment = parse_when(args.now) if args.now else datetime.now(UTC)
    report = rt.store.report()
    if args.html:
        written = write_html_report(rt, args.html, moment)
        print(f"fleet report written to {written}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        write_stdout(json_bytes(report))
    elif not args.html:
        from shared.report.fleet import build_fleet

        fleet = build_fleet(report, rt.rules, moment)
        states = {ca.sha256: ca.state for tenant in fleet.tenants for ca in tenant.cas}
        render_report(report, sys.stdout, states)
    return EXIT_ACTION if needs_action(report) else EXIT_OK


# States that need an operator whatever the certificate's verdict (shared.alerts.states):
# evidence that is wrong or forged. (An unauthenticated renewal of a routine CA is the
# rotation in progress: its alerts say to upload the chain.)
ALWAYS_ACTION = frozenset({"lost-trust", "look-alike", "unknown"})


def needs_action(report: dict[str, Any]) -> bool:
    """Exit 1 only for what is open: a tenant CA in an open state (an affected or
    mismatched one, or one whose evidence is wrong), or an upload refused and not retired."""
    for cert in report["certificates"]:
        found = cert.get("state")
        if found is None:  # not a tenant CA: a mismatched certificate on its own
            if cert["verdict"] != "ok" and not cert.get("acknowledged"):
                return True
            continue
        if not state(found).open:
            continue
        if cert["verdict"] != "ok" or found in ALWAYS_ACTION:
            return True
    return any(u["status"] != "analyzed" and not u.get("retired") for u in report["uploads"])


def add_report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="what the tables hold: every certificate and upload (text, JSON or HTML)",
        description=(
            "Print the certificates and uploads tables (ca-watch/report/v1 with --json), "
            "or write the fleet report page with --html FILE. "
            "Exit 1 while an affected or mismatched certificate is open (not replaced, not "
            "acknowledged, not retired), while evidence is wrong (lost trust, a look-alike, "
            "an unknown target, an unauthenticated renewal), or an upload was refused and "
            "not retired (`ca-watch retire UPLOAD --by NAME`)."
        ),
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--json", action="store_true", help="print ca-watch/report/v1 JSON")
    report.add_argument(
        "--html",
        metavar="FILE",
        help="write the fleet report (one self-contained HTML page) to FILE",
    )
    report.add_argument(
        "--now", metavar="ISO", help="the moment the report is as of (default: now)"
    )
    report.set_defaults(handler=command_report)
