"""``ca-watch registrations pull``: run the live registration pull once, locally.

It reads every live source (``REGISTRATION_TARGETS`` hubs and DPS with their enrollment
groups, ``IOT_CENTRAL_APPS``, ``SPHERE_CATALOGS``; shared/readers) with the developer's
``az login`` (the app uses its managed identity), records each like an upload (source
``live``) and notes the pull time, so the timer waits ``REGISTRATION_REFRESH`` before its
next one. Exit 1 when a source could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.local.common import EXIT_ACTION, EXIT_OK, UsageError, parse_when


def add_registration_commands(subparsers: Any) -> None:
    """Register ``registrations`` (``pull``) on the ``ca-watch`` parser."""
    registrations = subparsers.add_parser(
        "registrations",
        help="registration evidence: list the IoT Hub / DPS targets' CA certificates live",
        description="Registration evidence from the hubs and DPS named in REGISTRATION_TARGETS.",
    )
    actions = registrations.add_subparsers(
        dest="registrations_command", metavar="ACTION", required=True
    )
    pull = actions.add_parser(
        "pull",
        help="read every live source once (hubs, DPS and their groups, IoT Central, Sphere)",
        description=(
            "Read the CA certificates of each hub and DPS in REGISTRATION_TARGETS (and each "
            "DPS's enrollment groups), the enrollment groups of each IOT_CENTRAL_APPS app and "
            "the tenant CAs of each SPHERE_CATALOGS catalog (signed in with az login; the "
            "roles are in docs/readers.md), within REGISTRATION_PULL_BUDGET, and record each "
            "like an upload. A source that cannot be read keeps its last good listing. "
            "Exit 1 when a source could not be read."
        ),
    )
    pull.add_argument("--now", metavar="ISO", help="the time to record (default: now)")
    pull.add_argument(
        "--json", action="store_true", help="print the ca-watch/registrations-pull/v1 JSON"
    )
    pull.set_defaults(handler=command_registrations_pull)


def command_registrations_pull(args: argparse.Namespace) -> int:
    from shared.app.registration_pull import (
        live_sources_configured,
        pull_registrations,
        record_pull,
    )
    from shared.local.runner import local_runtime

    now = parse_when(args.now) if args.now else datetime.now(UTC)
    rt = local_runtime()
    if not live_sources_configured(rt.settings):
        raise UsageError(
            "REGISTRATION_TARGETS is not set: give a comma list of IoT Hub / DPS resource ids "
            "(az iot hub show -n HUB --query id -o tsv), or set IOT_CENTRAL_APPS or "
            "SPHERE_CATALOGS"
        )
    _signed_in(None)  # no credential: one line and nothing recorded
    result = pull_registrations(rt.store, rt.settings, now)
    record_pull(rt.store, now)
    document = result.to_json()
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_pull(document, sys.stdout)
    return EXIT_OK if result.ok else EXIT_ACTION


ARM_SCOPE = "https://management.azure.com/.default"
NO_CREDENTIAL = "no Azure credential: run `az login`"


def _signed_in(credential: Any) -> Any:
    """The credential the pull uses, once it has given a token for ARM. Without one
    (no `az login`) the pull would record every target as failed, which the self-health
    alert then reports: a setup mistake, said in one line, with nothing recorded."""
    import logging

    from azure.core.exceptions import ClientAuthenticationError

    if credential is None:
        from shared.storage.connections import app_credential

        credential = app_credential()
    # DefaultAzureCredential logs every credential it tried (~15 lines) before it raises.
    identity_log = logging.getLogger("azure.identity")
    level = identity_log.level
    identity_log.setLevel(logging.CRITICAL)
    try:
        credential.get_token(ARM_SCOPE)
    except ClientAuthenticationError:  # CredentialUnavailableError is one too
        raise UsageError(NO_CREDENTIAL) from None
    finally:
        identity_log.setLevel(level)
    return credential


def render_pull(document: dict[str, Any], out: TextIO) -> None:
    targets = document["targets"]
    failed = sum(1 for t in targets if t["error"])
    out.write(
        f"registrations pull at {document['now']}: {len(targets) - failed} target(s) read, "
        f"{failed} unreadable\n"
    )
    for target in targets:
        label = f"{target['display_name']} ({target['kind']})"
        if target["error"]:
            error = target["error"]
            out.write(f"  unreadable  {label}: {error['code']}: {error['message']}\n")
            out.write(f"              {target['target']} keeps its last good listing\n")
        else:
            groups = f", {target['groups']} group(s)" if target.get("groups") is not None else ""
            out.write(f"  read        {label}: {target['certificates']} certificate(s){groups}\n")
        for warning in target.get("warnings") or ():
            out.write(f"  warning     {label}: {warning}\n")
    if document["tenants_refreshed"]:
        out.write(f"  re-timed the alerts of {len(document['tenants_refreshed'])} tenant(s)\n")
