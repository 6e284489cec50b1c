"""``ca-watch azurite start | stop | status | reset``: a local Azurite on its default ports
(10000-10002, what ``UseDevelopmentStorage=true`` means), with its data under the project,
so every storage command works without further settings. ``reset`` empties that store, after
asking (or with ``--yes``)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from shared.local.common import EXIT_ACTION, EXIT_OK, UsageError

# shared.local.azurite (subprocess, sockets, the storage settings) loads only when used:
# every ca-watch command, scan included, builds this parser.
DEFAULT_LOCATION = Path(__file__).resolve().parents[2] / ".azurite"
DEFAULT_PORTS = (10000, 10001, 10002)  # blob, queue, table: UseDevelopmentStorage=true
PID_FILE = "azurite.pid"


def _running_pid(location: Path) -> int | None:
    """The pid recorded in ``location`` if that process is still an Azurite."""
    try:
        pid = int((location / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"azurite" in cmdline else None  # a reused pid is not ours


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def command_start(args: argparse.Namespace) -> int:
    location = Path(args.location).resolve()
    pid = _running_pid(location)
    if pid is not None:
        print(f"Azurite already running (pid {pid}), data in {location}")
        return EXIT_OK
    busy = [port for port in DEFAULT_PORTS if _port_in_use(port)]
    if busy:
        raise UsageError(
            f"port(s) {', '.join(map(str, busy))} already in use: another Azurite is running "
            "(stop it first), or point CertStorage at it"
        )
    from shared.local.azurite import Azurite, AzuriteError

    blob, queue, table = DEFAULT_PORTS
    azurite = Azurite(location, blob_port=blob, queue_port=queue, table_port=table)
    try:
        azurite.start()
    except AzuriteError as exc:
        raise UsageError(str(exc)) from None
    assert azurite.process is not None
    (location / PID_FILE).write_text(f"{azurite.process.pid}\n")
    azurite.process = None  # it outlives this command (own session); `stop` ends it
    print(
        f"Azurite started on 127.0.0.1:{blob}-{table} (pid {_running_pid(location)}), "
        f"data in {location}.\nStorage commands use it with no settings "
        "(CertStorage defaults to UseDevelopmentStorage=true). Stop it with "
        "`ca-watch azurite stop`."
    )
    return EXIT_OK


def _stop(location: Path, pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running_pid(location) == pid:
        time.sleep(0.1)
    if _running_pid(location) == pid:
        os.kill(pid, signal.SIGKILL)
    (location / PID_FILE).unlink(missing_ok=True)


def command_stop(args: argparse.Namespace) -> int:
    location = Path(args.location).resolve()
    pid = _running_pid(location)
    if pid is None:
        print(f"no Azurite started by ca-watch is running for {location}")
        return EXIT_OK
    _stop(location, pid)
    print(f"Azurite stopped (pid {pid}); its data stays in {location}")
    return EXIT_OK


def command_status(args: argparse.Namespace) -> int:
    location = Path(args.location).resolve()
    pid = _running_pid(location)
    if pid is None:
        print(f"not running ({location})")
        return EXIT_ACTION
    print(f"running (pid {pid}), data in {location}")
    return EXIT_OK


# What Azurite writes into its --location (its databases, blob and queue extents) and the
# log `start` keeps there: `reset` deletes these and nothing else it finds in the folder.
STORE_PATTERNS = ("__azurite_db_*", "__blobstorage__", "__queuestorage__", "azurite.log")


def _store_entries(location: Path) -> list[Path]:
    return sorted({path for pattern in STORE_PATTERNS for path in location.glob(pattern)})


def _confirmed(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def command_reset(args: argparse.Namespace) -> int:
    location = Path(args.location).resolve()
    entries = _store_entries(location)
    if not entries:
        print(f"nothing to reset: {location} holds no Azurite data")
        return EXIT_OK
    pid = _running_pid(location)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"reset deletes every upload, table and ledger row in {location}: "
                "confirm with --yes (no terminal to ask on)"
            )
        running = f" Azurite (pid {pid}) is running on it and will be stopped." if pid else ""
        if not _confirmed(
            f"Delete every upload, table and ledger row Azurite keeps in {location}?{running}"
        ):
            print("not reset: nothing deleted")
            return EXIT_ACTION
    if pid is not None:
        _stop(location, pid)
    for path in entries:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    stopped = (
        f"; Azurite (pid {pid}) was stopped: `ca-watch azurite start` starts it" if pid else ""
    )
    print(f"reset: {location} is empty of Azurite data{stopped}")
    return EXIT_OK


def add_azurite_command(commands: Any) -> None:
    azurite = commands.add_parser(
        "azurite",
        help="start or stop a local Azurite (the storage emulator) for the storage commands",
        description=(
            "Start Azurite from node_modules on its default ports (10000-10002), which is "
            "what the default CertStorage=UseDevelopmentStorage=true points at. Its data "
            "stays in .azurite/ until `reset`. `make run` keeps the demo's own in "
            ".azurite-demo/ (start --location .azurite-demo to keep exploring it)."
        ),
    )
    actions = azurite.add_subparsers(dest="azurite_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("start", command_start, "start Azurite in the background"),
        ("stop", command_stop, "stop the Azurite that `start` started"),
        ("status", command_status, "is it running? (exit 1 when not)"),
        (
            "reset",
            command_reset,
            "empty the store: delete every upload, table and ledger row Azurite keeps there "
            "(asks first, exit 1 on no; stops a running Azurite)",
        ),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--location",
            default=str(DEFAULT_LOCATION),
            metavar="DIR",
            help="where Azurite keeps its data (default: .azurite/ in the project)",
        )
        action.set_defaults(handler=handler)
        if name == "reset":
            action.add_argument(
                "--yes",
                action="store_true",
                help="do not ask (needed without a terminal)",
            )
