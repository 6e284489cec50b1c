"""Lend an already running Azurite to a test session instead of starting one.

`make mutation` runs a module's tests once per mutant, each in a fresh forked pytest session;
starting Azurite (a Node process) for each would cost more than the tests. scripts/mutation.py
starts one Azurite per parallel mutant run and names their directory in POOL_ENV; a session
takes the first one whose lock it can hold, so two mutants never share tables.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from shared.local.azurite import Azurite

POOL_ENV = "CA_WATCH_TEST_AZURITE_POOL"


class LentAzurite:
    """A running Azurite held by this process until release() (or until the process ends)."""

    def __init__(self, server: Azurite, lock_fd: int) -> None:
        self.server = server
        self._lock_fd = lock_fd

    def release(self) -> None:
        os.close(self._lock_fd)  # closing the descriptor drops the flock


def write_pool_entry(pool: Path, server: Azurite) -> None:
    ports = {name: getattr(server, name) for name in ("blob_port", "queue_port", "table_port")}
    (pool / f"{server.blob_port}.json").write_text(json.dumps(ports))


def borrow() -> LentAzurite | None:
    """A free Azurite from the pool named in POOL_ENV; None when no pool is set."""
    pool = os.environ.get(POOL_ENV)
    if not pool:
        return None
    for entry in sorted(Path(pool).glob("*.json")):
        fd = os.open(entry.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        ports = json.loads(entry.read_text())
        return LentAzurite(Azurite(entry.parent / entry.stem, **ports), fd)
    raise RuntimeError(f"every Azurite in {pool} is in use: start more than the runs at once")
