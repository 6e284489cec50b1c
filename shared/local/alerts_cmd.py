"""``ca-watch alerts run | plan`` and ``ca-watch ack``.

``alerts run`` invokes the registered timer function of ``function_app.app`` (the code
that runs in Azure) with an injected clock; ``alerts plan`` is a dry run that claims
nothing; ``ack`` silences a tenant CA (or a whole tenant) until it is replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.local.common import EXIT_ACTION, EXIT_OK, UsageError, parse_when
from shared.local.runner import local_runtime

TIMER_FUNCTION = "send_alerts"


def add_alert_commands(subparsers: Any) -> None:
    """Register ``alerts`` (``run``, ``plan``) and ``ack`` on the ``ca-watch`` parser."""
    alerts = subparsers.add_parser(
        "alerts",
        help="send (run) or preview (plan) the deadline alerts that are due",
        description="Drive the alert timer function locally, against the configured storage.",
    )
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run the timer function once: claim, send and record the alerts due",
        description=(
            "Invoke the registered send_alerts timer function with an injected clock. "
            "Exit 1 when a send failed (it is retried by a later run)."
        ),
    )
    run.add_argument("--now", metavar="ISO", help="the time to run at (default: now)")
    run.add_argument("--json", action="store_true", help="print the ca-watch/alerts/v1 JSON")
    run.set_defaults(handler=command_alerts_run)
    plan = actions.add_parser(
        "plan",
        help="show what a run at --now would send, claiming nothing",
        description="A dry run: reads the store and the ledger, writes nothing, sends nothing.",
    )
    plan.add_argument("--now", metavar="ISO", required=True, help="the time to plan for")
    plan.add_argument("--json", action="store_true", help="print the ca-watch/alerts/v1 JSON")
    plan.set_defaults(handler=command_alerts_plan)

    ack = subparsers.add_parser(
        "ack",
        help="acknowledge a tenant CA (or every CA of a tenant): its alerts stop",
        description=(
            "Record that an operator has handled a tenant CA. REFERENCE is a tenant id "
            "(silences every CA of the tenant), a SHA-1 thumbprint or a SHA-256."
        ),
    )
    ack.add_argument("reference", metavar="TENANT_ID|THUMBPRINT|SHA256")
    ack.add_argument("--by", required=True, metavar="NAME", help="who acknowledges")
    ack.add_argument("--note", metavar="TEXT", help="why (shown in ca-watch report)")
    ack.set_defaults(handler=command_ack)


def timer_function() -> Any:
    """The user function behind the registered ``send_alerts`` timer trigger."""
    from shared.local.runner import registered_function  # one cached get_functions()

    try:
        return registered_function(TIMER_FUNCTION)
    except LookupError as exc:
        raise UsageError(str(exc)) from None


def command_alerts_run(args: argparse.Namespace) -> int:
    from azure.functions.timer import TimerRequest

    from shared.app import handlers

    now = parse_when(args.now) if args.now else datetime.now(UTC)
    local_runtime()  # a clear error before the timer function runs, if storage is down
    handlers.use_clock(lambda: now)
    handlers.last_alert_result = None
    try:
        # past_due=False: this is an on-demand run, not a missed schedule.
        timer_function()(TimerRequest(past_due=False))
    finally:
        handlers.use_clock(None)
    document = handlers.last_alert_result
    if document is None:
        raise RuntimeError("the send_alerts function returned without an alert document")
    return _print(document, args.json, sys.stdout)


def command_alerts_plan(args: argparse.Namespace) -> int:
    from shared.app.alert_pass import run_alerts

    now = parse_when(args.now)
    rt = local_runtime()
    document = run_alerts(
        store=rt.store, settings=rt.settings, rules=rt.rules, now=now, dry_run=True
    )
    _print(document, args.json, sys.stdout)
    return EXIT_OK


def _print(document: dict[str, Any], as_json: bool, out: TextIO) -> int:
    from shared.app.alert_pass import any_failed

    if as_json:
        json.dump(document, out, indent=2)
        out.write("\n")
    else:
        render_summary(document, out)
    return EXIT_ACTION if any_failed(document) else EXIT_OK


def render_summary(document: dict[str, Any], out: TextIO) -> None:
    verb = "plan" if document.get("dry_run") else "run"
    out.write(f"alerts {verb} at {document['now']}: {len(document['items'])} item(s) due\n")
    for item in document["items"]:
        outcomes = ", ".join(f"{c}={s}" for c, s in item["channels"].items())
        out.write(
            f"  {item['tenant_id']}  {item['deadline']:<40} {item['stage']:<8} "
            f"due {item['due']}  {outcomes}\n"
        )
    for problem in document.get("self_health", []):
        outcomes = ", ".join(f"{c}={s}" for c, s in problem["channels"].items()) or "no channel"
        out.write(f"  operator alert: {problem['summary']}  {outcomes}\n")
    for message in document.get("messages", []):
        state = f"FAILED: {message['error']}" if message["error"] else "sent"
        out.write(f"  message on {message['channel']} ({message['items']} item(s)): {state}\n")
    for error in document.get("errors", []):
        out.write(f"  error on {error['channel']}: {error['error']}\n")


def command_ack(args: argparse.Namespace) -> int:
    rt = local_runtime()
    found = rt.store.certificates.find_tenant_ca(args.reference)
    if (
        found is not None
        and found[1] is None
        and not rt.store.tenants.tenant_certificates(found[0])
    ):
        found = None  # a well-formed tenant id with no tenant CA on record
    if found is None:
        raise UsageError(
            f"{args.reference!r}: no tenant CA on record with that tenant id, SHA-1 "
            "thumbprint or SHA-256 (see `ca-watch report`)"
        )
    tenant_id, sha256 = found
    rt.store.acknowledge(tenant_id, sha256, args.by, args.note, datetime.now(UTC))
    what = f"tenant CA {sha256}" if sha256 else "every tenant CA"
    print(f"acknowledged {what} of tenant {tenant_id} (by {args.by}); its alerts stop")
    return EXIT_OK
