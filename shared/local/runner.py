"""The local runner: ``ca-watch upload | process | report`` against Azurite (or any storage
account the settings name), driving the *same* registered function objects as Azure.

``process`` builds the blob function's argument the way the Python worker does for the
SDK-type binding: ``BlobClientConverter.decode`` of a ``model_binding_data`` datum whose
JSON content names the connection, container and blob. So the code under test is the
code that runs in Azure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shared.local.common import (
    EXIT_ACTION,
    EXIT_OK,
    Progress,
    UsageError,
    iter_files,
    parse_when,
    printable,
)
from shared.local.guards import bound_retries, refusal
from shared.settings import STORAGE_CONNECTION_NAME, SettingsError


def _default_connection() -> None:
    # The host reads the connection from the environment; locally default to Azurite.
    if not any(k == STORAGE_CONNECTION_NAME or k.startswith(STORAGE_CONNECTION_NAME + "__")
               for k in os.environ):  # fmt: skip
        os.environ[STORAGE_CONNECTION_NAME] = "UseDevelopmentStorage=true"


@cache
def registered_functions() -> dict[str, Any]:
    """The functions of ``function_app.app`` by name. Cached: ``get_functions()`` indexes
    the app and refuses to run twice in one process."""
    import logging

    # azure-functions warns at registration that auth levels do not apply to non-HTTP
    # triggers: true, expected, and noise on a terminal.
    logging.disable(logging.WARNING)
    try:
        import function_app

        return {f.get_function_name(): f for f in function_app.app.get_functions()}
    finally:
        logging.disable(logging.NOTSET)


def registered_function(name: str) -> Callable[..., Any]:
    """The user function behind a registered trigger of ``function_app.app``."""
    try:
        return registered_functions()[name].get_user_function()
    except KeyError:
        raise LookupError(f"function_app has no function named {name!r}") from None


def blob_trigger_argument(container: str, blob_name: str) -> Any:
    """The ``BlobClient`` the worker passes to the blob function (SDK-type binding)."""
    from azurefunctions.extensions.base import Datum
    from azurefunctions.extensions.bindings.blob import BlobClient, BlobClientConverter

    content = json.dumps(
        {"Connection": STORAGE_CONNECTION_NAME, "ContainerName": container, "BlobName": blob_name}
    )
    model_binding_data = SimpleNamespace(
        version="1.0",
        source="AzureStorageBlobs",
        content_type="application/json",
        content=content,
    )
    client = BlobClientConverter.decode(
        Datum(value=model_binding_data, type="model_binding_data"),
        trigger_metadata=None,
        pytype=BlobClient,
    )
    return bound_retries(client)


AZURITE_HINT = (
    "Locally, start Azurite first: `ca-watch azurite start` (or `npx azurite --location "
    ".azurite --skipApiVersionCheck --disableTelemetry`); for Azure, set CertStorage "
    "(a connection string) or CertStorage__blobServiceUri and CertStorage__tableServiceUri."
)


STORAGE_HELP = (
    "needs storage: the CertStorage setting names it (default UseDevelopmentStorage=true,\n"
    "  i.e. Azurite on 127.0.0.1:10000-10002).\n"
    "  Azurite: ca-watch azurite start   (or: npx azurite --location .azurite \\\n"
    "           --skipApiVersionCheck --disableTelemetry)\n"
    "  Azure:   CertStorage='DefaultEndpointsProtocol=https;AccountName=...;...', or\n"
    "           CertStorage__blobServiceUri=https://ACCOUNT.blob.core.windows.net and\n"
    "           CertStorage__tableServiceUri=https://ACCOUNT.table.core.windows.net\n"
    "           (az login / azd auth login supplies the identity)"
)


def _storage_hint(exc: Exception) -> UsageError:
    return UsageError(f"cannot reach storage ({type(exc).__name__}). {AZURITE_HINT}")


CLI_STORAGE_RETRIES = "2"  # a stopped Azurite fails a command in seconds, not after ~80 s


def local_runtime() -> Any:
    """The function app's runtime for a CLI command, with a clear error when storage is
    unreachable (exit 2) instead of a traceback."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

    from shared.app import handlers

    _default_connection()
    os.environ.setdefault("CA_WATCH_STORAGE_RETRY_TOTAL", CLI_STORAGE_RETRIES)
    try:
        rt = handlers.runtime()
        handlers.ensure_containers(rt)
    except ServiceRequestError as exc:
        raise _storage_hint(exc) from None
    except ClientAuthenticationError as exc:  # a bad key or token: the setting is wrong
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"{STORAGE_CONNECTION_NAME}: storage refused the credentials ({first}). {AZURITE_HINT}"
        ) from None
    except SettingsError:
        raise
    except ValueError as exc:  # the SDK refuses a malformed connection string
        raise UsageError(
            f"{STORAGE_CONNECTION_NAME} is not a valid storage connection string ({exc}). "
            f"{AZURITE_HINT}"
        ) from None
    return rt


# --- upload ------------------------------------------------------------------------
def command_upload(args: argparse.Namespace) -> int:
    if args.dps:  # enrollment groups with their DPS named (docs/listings.md)
        from shared.local.enrollment_upload import upload_dps

        return upload_dps(args, local_runtime)
    rt = local_runtime()
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    uploaded = refused = 0
    for root in args.paths:
        base = Path(root)
        files = iter_files([root])
        progress = Progress(len(files), "uploaded")
        for done, path in enumerate(files, start=1):
            name = blob_name_for(path, base)
            if args.prefix:
                name = f"{args.prefix.strip('/')}/{name}"
            data = path.read_bytes()
            reason = refusal(name, data)
            if reason:
                print(f"ca-watch: {printable(str(path))}: not uploaded: {reason}", file=sys.stderr)
                refused += 1
            elif (clash := _put(container, name, data, replace=args.replace)) is not None:
                print(f"ca-watch: {printable(str(path))}: not uploaded: {clash}", file=sys.stderr)
                refused += 1
            else:
                uploaded += 1
                if not args.quiet:
                    print(f"uploaded {name}")
            progress.update(done)
    print(f"{uploaded} file(s) uploaded to container {rt.settings.cert_container!r}"
          + (f", {refused} refused" if refused else ""))  # fmt: skip
    return EXIT_ACTION if refused else EXIT_OK


def blob_name_for(path: Path, base: Path) -> str:
    """The blob name of a file: its path below a folder argument, or below the current
    folder for a file argument, so `tenant-a/CAcertificate.cer` and
    `tenant-b/CAcertificate.cer` (the name `azsphere ca download` gives every tenant's CA)
    never collide. Outside the current folder: the path without its `..` parts."""
    if base.is_dir():
        return path.relative_to(base).as_posix()
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        parts = [part for part in path.parts if part not in ("..", ".", path.anchor)]
        return "/".join(parts) or path.name


def _put(container: Any, name: str, data: bytes, *, replace: bool) -> str | None:
    """Upload; None when done, else why not: a blob of that name holding other bytes is
    never overwritten silently (it may be another tenant's CA)."""
    from azure.core.exceptions import ResourceExistsError

    if replace:
        container.upload_blob(name, data, overwrite=True)
        return None
    try:
        container.upload_blob(name, data, overwrite=False)
    except ResourceExistsError:
        if container.download_blob(name).readall() == data:
            return None  # the same bytes: nothing to do
        return f"a blob named {name!r} holds other bytes; give --replace to overwrite it"
    return None


# --- process -----------------------------------------------------------------------
def pending_blobs(rt: Any) -> list[tuple[str, str]]:
    """(name, etag) of every blob not yet recorded at its current ETag."""
    from shared.local.listing import list_container
    from shared.storage.keys import normalize_etag

    done = rt.store.uploads.processed_uploads()
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    return [
        (name, etag)
        for name, etag in list_container(container, warn=_warn)
        if (name, normalize_etag(etag)) not in done
    ]


def _warn(message: str) -> None:
    print(f"ca-watch: {message}", file=sys.stderr)


DEFAULT_WORKERS = 8  # like host.json's blobs.maxDegreeOfParallelism


def process_pending(
    rt: Any, *, quiet: bool = True, workers: int = 1, delivered_names: list[str] | None = None
) -> tuple[int, int]:
    """Deliver each pending blob to the registered blob function, as the host would, with
    up to ``workers`` deliveries at once. Returns (delivered, not delivered); what was not
    delivered stays pending and is retried on the next pass, as the host does."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.core.exceptions import ServiceRequestError

    analyze_upload = registered_function("analyze_upload")
    pending = pending_blobs(rt)
    progress = Progress(len(pending), "processed", quiet=quiet)
    unreachable = threading.Event()
    lock = threading.Lock()
    counts = {"delivered": 0, "done": 0}

    def deliver(name: str) -> None:
        if unreachable.is_set():
            return  # storage is down: leave the rest pending for the next pass
        try:
            analyze_upload(blob_trigger_argument(rt.settings.cert_container, name))
        except ServiceRequestError as exc:
            # Every further delivery would fail the same way: stop the pass.
            if not unreachable.is_set():
                print(f"ca-watch: storage unreachable at {name}: {exc}", file=sys.stderr)
            unreachable.set()
            return
        except Exception as exc:  # the host would retry this event: so do we, next pass
            print(f"ca-watch: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            with lock:
                counts["delivered"] += 1
                if delivered_names is not None:
                    delivered_names.append(name)
            if not quiet:
                print(f"processed {name}")
        with lock:
            counts["done"] += 1
            progress.update(counts["done"])

    if workers <= 1:
        for name, _etag in pending:
            deliver(name)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
            list(pool.map(deliver, [name for name, _etag in pending]))
    return counts["delivered"], len(pending) - counts["delivered"]


def command_process(args: argparse.Namespace) -> int:
    from azure.core.exceptions import ServiceRequestError

    from shared.app import handlers

    rt = local_runtime()
    if args.now:
        moment = parse_when(args.now)
        handlers.use_clock(lambda: moment)
    needs_action = False
    try:
        while True:
            started = moment if args.now else datetime.now(UTC)
            names: list[str] = []
            try:
                delivered, failed = process_pending(
                    rt, quiet=args.quiet, workers=args.parallel, delivered_names=names
                )
            except ServiceRequestError as exc:
                if not args.watch:
                    raise _storage_hint(exc) from None
                delivered, failed = 0, 0
                print("ca-watch: storage unreachable; retrying", file=sys.stderr)
            until = moment if args.now else datetime.now(UTC)
            refused = _refused_uploads(rt, set(names), started, until) if names else []
            if delivered or failed or not args.watch:
                print(f"{delivered} blob(s) processed, {failed} not (retried on the next pass)")
            for row in refused:
                print(f"  {row.get('status')}: {printable(row['name'])} ({row.get('error_code')})")
            ignored = [row for row in refused if row.get("status") == "ignored"]
            if ignored:
                print(f"{len(ignored)} listing(s) changed nothing (live-target, stale-listing)")
            refused = [row for row in refused if row.get("status") != "ignored"]
            if refused:
                print(f"{len(refused)} upload(s) rejected or unreadable: see `ca-watch report`")
            needs_action = needs_action or bool(failed or refused)
            if not args.watch:
                return EXIT_ACTION if needs_action else EXIT_OK
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return EXIT_ACTION if needs_action else EXIT_OK
    finally:
        handlers.use_clock(None)


def _refused_uploads(
    rt: Any, names: set[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The uploads of this pass that were rejected or unreadable, from the per-day
    failures index the self-health check reads (one or two partition reads). None listed
    when storage went away during the pass (already said): the summary still prints."""
    from azure.core.exceptions import ServiceRequestError

    try:
        rows = rt.store.uploads.failed_uploads(since, until)
    except ServiceRequestError:
        return []
    return [row for row in rows if row.get("name") in names]


def add_commands(commands: Any) -> None:
    upload = commands.add_parser(
        "upload",
        help="upload certificate files to the certificates container",
        description="Upload files (directories walked) to CERT_CONTAINER, keeping relative paths.",
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("paths", nargs="+", metavar="PATH")
    upload.add_argument("--prefix", help="a folder to put the blobs under")
    upload.add_argument(
        "--replace",
        action="store_true",
        help="overwrite a blob of the same name that holds other bytes (refused otherwise)",
    )
    upload.add_argument("--quiet", "-q", action="store_true", help="only print the summary")
    upload.add_argument(
        "--dps",
        metavar="RESOURCE_ID",
        help="upload enrollment groups: the two PATHs are what `az iot dps enrollment-group "
        "list` and `az iot dps certificate list` print; one blob names this DPS",
    )
    upload.set_defaults(handler=command_upload)

    process = commands.add_parser(
        "process",
        help="deliver every unprocessed blob to the blob function (the local Event Grid)",
        description=(
            "Deliver each blob not yet recorded at its current ETag to the registered "
            "analyze_upload function, exactly as the Functions host does. Exit 1 when an "
            "upload was rejected or unreadable, or not delivered."
        ),
        epilog=STORAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = process.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass, then exit (default)")
    mode.add_argument("--watch", action="store_true", help="keep polling until Ctrl-C")
    process.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    process.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"deliveries at once, as the host's parallelism (default {DEFAULT_WORKERS})",
    )
    process.add_argument("--now", metavar="ISO", help="the clock the function sees")
    process.add_argument("--quiet", "-q", action="store_true")
    process.set_defaults(handler=command_process)
