"""``ca-watch azurite start | stop | status``: a local Azurite on its default ports
(10000-10002, what ``UseDevelopmentStorage=true`` means), with its data under the project,
so every storage command works without further settings."""

from __future__ import annotations

import argparse
import os
import signal
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


def command_stop(args: argparse.Namespace) -> int:
    location = Path(args.location).resolve()
    pid = _running_pid(location)
    if pid is None:
        print(f"no Azurite started by ca-watch is running for {location}")
        return EXIT_OK
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running_pid(location) == pid:
        time.sleep(0.1)
    if _running_pid(location) == pid:
        os.kill(pid, signal.SIGKILL)
    (location / PID_FILE).unlink(missing_ok=True)
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


def add_azurite_command(commands: Any) -> None:
    azurite = commands.add_parser(
        "azurite",
        help="start or stop a local Azurite (the storage emulator) for the storage commands",
        description=(
            "Start Azurite from node_modules on its default ports (10000-10002), which is "
            "what the default CertStorage=UseDevelopmentStorage=true points at. `make run` "
            "leaves the demo's data in .azurite/: start Azurite here to keep exploring it."
        ),
    )
    actions = azurite.add_subparsers(dest="azurite_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("start", command_start, "start Azurite in the background"),
        ("stop", command_stop, "stop the Azurite that `start` started"),
        ("status", command_status, "is it running? (exit 1 when not)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--location",
            default=str(DEFAULT_LOCATION),
            metavar="DIR",
            help="where Azurite keeps its data (default: .azurite/ in the project)",
        )
        action.set_defaults(handler=handler)
