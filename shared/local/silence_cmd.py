"""`ca-watch ack`, `ca-watch unack` and `ca-watch retire`: an operator's acts that end or
silence alerts. Each is scoped, audited on its row and announced on the channels at the
next alert pass (DESIGN §1 "Who may silence an alert", §4 rule 3)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from shared.local.common import EXIT_OK, UsageError, parse_when
from shared.local.runner import STORAGE_HELP, local_runtime

REFERENCE = "TENANT_ID|THUMBPRINT|SHA256"


def add_silence_commands(subparsers: Any) -> None:
    ack = subparsers.add_parser(
        "ack",
        help="acknowledge a tenant CA (or the CAs a tenant has now): its alerts stop",
        description=(
            "Record that an operator has handled a tenant CA. REFERENCE is a SHA-1 thumbprint "
            "or SHA-256 of one tenant CA, or a tenant id: then every CA of that tenant on "
            "record NOW, never one uploaded later (its renewal, its next rotation). The "
            "acknowledgement is announced on the alert channels; --withdraw ends it."
        ),
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ack.add_argument("reference", metavar=REFERENCE)
    ack.add_argument("--by", required=True, metavar="NAME", help="who acknowledges")
    ack.add_argument("--note", metavar="TEXT", help="why (shown in ca-watch report)")
    ack.add_argument(
        "--until", metavar="ISO", help="the alerts resume by themselves then (a date or time)"
    )
    ack.add_argument(
        "--withdraw", action="store_true", help="end the acknowledgement now (as `unack`)"
    )
    ack.set_defaults(handler=command_ack)

    unack = subparsers.add_parser(
        "unack",
        help="withdraw an acknowledgement: the alerts resume",
        description="End the acknowledgement of a tenant CA, or of every CA of a tenant.",
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    unack.add_argument("reference", metavar=REFERENCE)
    unack.add_argument("--by", required=True, metavar="NAME", help="who withdraws it")
    unack.set_defaults(handler=command_unack)

    retire = subparsers.add_parser(
        "retire",
        help="retire a tenant CA or a junk upload (audited): no longer watched or counted",
        description=(
            "REFERENCE is the SHA-1 thumbprint or SHA-256 of a tenant CA (it stops being "
            "watched; announced on the channels), or the blob name of an upload (it is hidden "
            "from the report and from its exit code, e.g. a CSR uploaded by mistake)."
        ),
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    retire.add_argument("reference", metavar="THUMBPRINT|SHA256|UPLOAD")
    retire.add_argument("--by", required=True, metavar="NAME", help="who retires it")
    retire.add_argument("--note", metavar="TEXT", help="why (shown in ca-watch report)")
    retire.set_defaults(handler=command_retire)


def _tenant_ca(rt: Any, reference: str) -> tuple[str, str | None]:
    found = rt.store.certificates.find_tenant_ca(reference)
    tenants = rt.store.tenants
    if found is not None and found[1] is None and not tenants.tenant_certificates(found[0]):
        found = None  # a well-formed tenant id with no tenant CA on record
    if found is None:
        raise UsageError(
            f"{reference!r}: no tenant CA on record with that tenant id, SHA-1 "
            "thumbprint or SHA-256 (see `ca-watch report`)"
        )
    return found


def command_ack(args: argparse.Namespace) -> int:
    if args.withdraw:
        return command_unack(args)
    until = parse_when(args.until) if args.until else None
    now = datetime.now(UTC)
    if until is not None and until <= now:
        raise UsageError(f"--until {args.until!r} is not in the future")
    rt = local_runtime()
    tenant_id, sha256 = _tenant_ca(rt, args.reference)
    done = rt.store.acknowledge(tenant_id, sha256, args.by, args.note, now, until)
    end = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    print(
        f"acknowledged {len(done)} tenant CA(s) of tenant {tenant_id} (by {args.by}){end}; "
        "their alerts stop. A CA uploaded later is not covered. "
        f"Undo: ca-watch unack {args.reference} --by NAME"
    )
    return EXIT_OK


def command_unack(args: argparse.Namespace) -> int:
    rt = local_runtime()
    tenant_id, sha256 = _tenant_ca(rt, args.reference)
    gone = rt.store.withdraw_acknowledgement(tenant_id, sha256, args.by, datetime.now(UTC))
    if not gone:
        raise UsageError(f"{args.reference!r}: no acknowledgement in force to withdraw")
    print(f"withdrew {len(gone)} acknowledgement(s) of tenant {tenant_id}; its alerts resume")
    return EXIT_OK


def command_retire(args: argparse.Namespace) -> int:
    rt = local_runtime()
    now = datetime.now(UTC)
    found = rt.store.certificates.find_tenant_ca(args.reference)
    if found is not None and found[1] is not None:
        tenant_id, sha256 = found
        rt.store.retire_certificate(tenant_id, sha256, args.by, args.note, now)
        print(f"retired tenant CA {sha256} of tenant {tenant_id} (by {args.by})")
        return EXIT_OK
    if rt.store.uploads.retire(args.reference, args.by, args.note, now):
        print(f"retired upload {args.reference!r} (by {args.by}): hidden from the report")
        return EXIT_OK
    raise UsageError(
        f"{args.reference!r}: neither a tenant CA (SHA-1 or SHA-256) nor an upload name on "
        "record (see `ca-watch report`)"
    )
