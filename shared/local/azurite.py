"""Start and stop a local Azurite (from ``node_modules``) for the demo and the tests.

Development tooling only: the function app never imports this module.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shared.storage.connections import azurite_connection_string

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"


class AzuriteError(RuntimeError):
    """Azurite could not be started; the message says what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class Azurite:
    """One Azurite process: blob, queue and table services on loopback."""

    location: Path
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()  # e.g. --oauth basic --cert ... --key ... (HTTPS)

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(
            "127.0.0.1", self.blob_port, self.queue_port, self.table_port
        )

    def start(self, timeout: float = 30.0) -> Azurite:
        if not AZURITE_BIN.exists():
            raise AzuriteError(f"{AZURITE_BIN} is missing: run `npm ci` (or `make deps`) first")
        self.location.mkdir(parents=True, exist_ok=True)
        self.blob_port = self.blob_port or free_port()
        self.queue_port = self.queue_port or free_port()
        self.table_port = self.table_port or free_port()
        log = open(self.location / "azurite.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [
                str(AZURITE_BIN),
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--disableProductStyleUrl",
                "--location",
                str(self.location),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.blob_port),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(self.queue_port),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(self.table_port),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        for port in (self.blob_port, self.queue_port, self.table_port):
            if not _wait_for_port(port, deadline):
                self.stop()
                raise AzuriteError(
                    f"Azurite did not listen on port {port} within {timeout:.0f} s; "
                    f"see {self.location / 'azurite.log'}"
                )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.location, ignore_errors=True)

    def environment(self) -> dict[str, str]:
        return {
            "CertStorage": self.connection_string,
            "AzureWebJobsStorage": self.connection_string,
        }

    def apply_to(self, env: os._Environ[str] | dict[str, str]) -> None:
        env.update(self.environment())
