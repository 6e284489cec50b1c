"""``ca-watch alerts run | plan`` and ``ca-watch ack``.

``alerts run`` invokes the registered timer function of ``function_app.app`` (the code
that runs in Azure) with an injected clock; ``alerts plan`` is a dry run that claims
nothing; ``ack`` silences a tenant CA (or a whole tenant) until it is replaced.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.local.common import (
    EXIT_ACTION,
    EXIT_OK,
    UsageError,
    json_bytes,
    parse_when,
    terminal_width,
    write_stdout,
)
from shared.local.runner import STORAGE_HELP, local_runtime
from shared.local.table import Shrink, render_table

TIMER_FUNCTION = "send_alerts"


def add_alert_commands(subparsers: Any) -> None:
    """Register ``alerts`` (``run``, ``plan``) and ``ack`` on the ``ca-watch`` parser."""
    alerts = subparsers.add_parser(
        "alerts",
        help="send (run) or preview (plan) the deadline alerts that are due",
        description="Drive the alert timer function locally, against the configured storage.",
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run the timer function once: claim, send and record the alerts due",
        description=(
            "Invoke the registered send_alerts timer function with an injected clock. "
            "Exit 1 when a send failed (it is retried by a later run)."
        ),
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--now", metavar="ISO", help="the time to run at (default: now)")
    run.add_argument("--json", action="store_true", help="print the ca-watch/alerts/v1 JSON")
    run.set_defaults(handler=command_alerts_run)
    plan = actions.add_parser(
        "plan",
        help="show what a run at --now would send, claiming nothing",
        description=(
            "A dry run: reads the store and the ledger, writes nothing, sends nothing. "
            "Exit 1 when a run at --now would send something."
        ),
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("--now", metavar="ISO", required=True, help="the time to plan for")
    plan.add_argument("--json", action="store_true", help="print the ca-watch/alerts/v1 JSON")
    plan.set_defaults(handler=command_alerts_plan)


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
    warn_about_recipients(handlers.runtime().settings, document["channels"])
    return _print(document, args.json, sys.stdout)


def warn_about_recipients(settings: Any, channels: list[str]) -> None:
    """A channel with no recipient is said on stderr (the JSON on stdout stays clean)."""
    from shared.app.self_health import recipient_warnings

    for warning in recipient_warnings(settings, channels).values():
        print(f"warning: {warning}", file=sys.stderr)


def command_alerts_plan(args: argparse.Namespace) -> int:
    from shared.app.alert_pass import run_alerts

    now = parse_when(args.now)
    rt = local_runtime()
    document = run_alerts(
        store=rt.store, settings=rt.settings, rules=rt.rules, now=now, dry_run=True
    )
    _print(document, args.json, sys.stdout)
    return EXIT_ACTION if due_in_plan(document) else EXIT_OK


def due_in_plan(document: dict[str, Any]) -> bool:
    """Would a run now send something? (what makes ``alerts plan`` exit 1)"""
    planned = [
        status
        for entry in [*document["items"], *document.get("self_health", [])]
        for status in entry["channels"].values()
    ]
    return "planned" in planned


def _print(document: dict[str, Any], as_json: bool, out: TextIO) -> int:
    from shared.app.alert_pass import any_failed

    if as_json:
        write_stdout(json_bytes(document), out)
    else:
        render_summary(document, out)
    return EXIT_ACTION if any_failed(document) else EXIT_OK


def render_summary(document: dict[str, Any], out: TextIO) -> None:
    """The alert document as a table with headers, written at once."""
    verb = "plan" if document.get("dry_run") else "run"
    lines = [f"alerts {verb} at {document['now']}: {len(document['items'])} item(s) due\n"]
    rows = [
        (
            item["tenant_id"],
            item["deadline"],
            item["stage"],
            item["due"],
            ", ".join(f"{c}={s}" for c, s in item["channels"].items()) or "-",
        )
        for item in document["items"]
    ]
    if rows:
        header = ("TENANT", "DEADLINE", "STAGE", "DUE", "CHANNELS")
        shrink = (Shrink(1, 20, "left"), Shrink(4, 16, "wrap"))
        lines.append(render_table(header, rows, terminal_width(out), shrink))
    # Where each due tenant CA's renewal is still missing or unverified (DESIGN §3).
    pending_by_cert: dict[tuple[str, str], list[str]] = {}
    for item in document["items"]:
        registration = item.get("registration") or {}
        pending_by_cert[(item["tenant_id"], item["certificate"])] = [
            f"{t['display_name']} ({t['kind']}: renewed CA {t['renewed']})"
            for t in registration.get("targets", [])
            if t["target"] in registration.get("pending", [])
        ]
    for (tenant, _certificate), targets in pending_by_cert.items():
        if targets:
            lines.append(f"renewal pending for {tenant} in: {', '.join(targets)}\n")
    for problem in document.get("self_health", []):
        outcomes = ", ".join(f"{c}={s}" for c, s in problem["channels"].items()) or "no channel"
        lines.append(f"operator alert: {problem['summary']}  {outcomes}\n")
    for message in document.get("messages", []):
        state = f"FAILED: {message['error']}" if message["error"] else "sent"
        lines.append(f"message on {message['channel']} ({message['items']} item(s)): {state}\n")
    for error in document.get("errors", []):
        lines.append(f"error on {error['channel']}: {error['error']}\n")
    write_stdout("".join(lines).encode("utf-8"), out)
