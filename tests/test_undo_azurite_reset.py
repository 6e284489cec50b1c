"""Issue 24 "Mistakes cannot be undone": `ca-watch azurite reset` empties the local store
(before it, the only way was `rm -rf .azurite`, or a second `make run`, which deleted it
silently). It asks first on a terminal, refuses without one unless `--yes`, deletes only
what Azurite keeps there, and stops an Azurite running on the store.

Every store here is a real one: Azurite started on free ports with its data in a temporary
folder, holding a blob container written through the SDK.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from shared.local.azurite import Azurite
from shared.local.azurite_cmd import PID_FILE, _running_pid

PROJECT = Path(__file__).resolve().parent.parent
CONTAINER = "operator-uploads"


def azurite_files(location: Path) -> list[str]:
    return sorted(p.name for p in location.iterdir() if p.name != "notes.txt")


def containers(azurite: Azurite) -> list[str]:
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    return [c.name for c in client.list_containers()]


@pytest.fixture(scope="module")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store Azurite wrote: one container with one blob, Azurite stopped."""
    location = tmp_path_factory.mktemp("template") / "store"
    azurite = Azurite(location).start()
    try:
        client = BlobServiceClient.from_connection_string(azurite.connection_string)
        client.create_container(CONTAINER).upload_blob("tenant/ca.cer", b"certificate bytes")
    finally:
        azurite.stop()
    return location


@pytest.fixture
def store(template_store: Path, tmp_path: Path) -> Path:
    location = tmp_path / "store"
    shutil.copytree(template_store, location)
    (location / "notes.txt").write_text("the operator's own file, not Azurite's\n")
    return location


def reset(
    location: Path, *flags: str, stdin: int | None = subprocess.DEVNULL
) -> tuple[int, str, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.local.cli",
            "azurite",
            "reset",
            "--location",
            str(location),
            *flags,
        ],
        cwd=PROJECT,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def reset_on_a_terminal(location: Path, answer: str) -> tuple[int, str, str]:
    """`reset` with a terminal on stdin (a pseudo-terminal), answering the question."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode() + b"\n")
        return reset(location, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)


@pytest.fixture
def restarted() -> Iterator[list[Azurite]]:
    started: list[Azurite] = []
    yield started
    for azurite in started:
        azurite.stop()


def test_reset_with_yes_empties_the_store_and_keeps_other_files(
    store: Path, restarted: list[Azurite]
) -> None:
    assert "__azurite_db_blob__.json" in azurite_files(store)

    code, out, err = reset(store, "--yes")

    assert (code, err) == (0, "")
    assert f"reset: {store} is empty of Azurite data" in out
    assert azurite_files(store) == []
    assert (store / "notes.txt").exists()
    # Azurite started on it again finds no container: the uploads and tables are gone.
    azurite = Azurite(store).start()
    restarted.append(azurite)
    assert containers(azurite) == []


def test_reset_without_a_terminal_and_without_yes_refuses_and_deletes_nothing(
    store: Path,
) -> None:
    before = azurite_files(store)

    code, out, err = reset(store)

    assert code == 2
    assert out == ""
    assert err.startswith("ca-watch: error: reset deletes every upload") and "--yes" in err
    assert len(err.splitlines()) == 1
    assert azurite_files(store) == before


def test_reset_asks_on_a_terminal_and_no_keeps_everything(store: Path) -> None:
    before = azurite_files(store)

    code, out, err = reset_on_a_terminal(store, "n")

    assert code == 1
    assert "Delete every upload, table and ledger row" in err and "[y/N]" in err
    assert "not reset: nothing deleted" in out
    assert azurite_files(store) == before


def test_reset_asks_on_a_terminal_and_yes_empties_it(store: Path) -> None:
    code, out, err = reset_on_a_terminal(store, "y")

    assert code == 0, err
    assert "[y/N]" in err
    assert "reset:" in out
    assert azurite_files(store) == []


def test_reset_stops_the_azurite_running_on_the_store_first(store: Path) -> None:
    azurite = Azurite(store).start()  # free ports: never the default ones another may hold
    try:
        assert azurite.process is not None
        (store / PID_FILE).write_text(f"{azurite.process.pid}\n")
        assert containers(azurite) == [CONTAINER]

        code, out, err = reset(store, "--yes")

        assert code == 0, err
        assert f"Azurite (pid {azurite.process.pid}) was stopped" in out
        assert azurite.process.wait(timeout=15) is not None
        assert _running_pid(store) is None
        assert azurite_files(store) == []
    finally:
        azurite.stop()


def test_reset_of_a_folder_without_azurite_data_deletes_nothing(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("not Azurite's\n")

    code, out, _err = reset(tmp_path, "--yes")

    assert code == 0
    assert "holds no Azurite data" in out
    assert (tmp_path / "precious.txt").exists()
