"""Issue 24 "Mistakes cannot be undone": `ca-watch azurite reset` empties the local store
(before it, the only way was `rm -rf .azurite`, or a second `make run`, which deleted it
silently). It asks first on a terminal, refuses without one unless `--yes`, deletes only
what Azurite keeps there, and stops an Azurite running on the store.

Every store here is a real one: Azurite started on free ports with its data in a temporary
folder, holding a blob container written through the SDK.
"""

from __future__ import annotations

import io
import os
import pty
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from shared.local.azurite import Azurite
from shared.local.azurite_cmd import PID_FILE, _running_pid
from shared.local.cli import main as cli_main

Reset = Callable[..., tuple[int, str, str]]
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


@pytest.fixture
def reset(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Reset:
    """`ca-watch azurite reset --location DIR [flags]`, run in this process (so `make
    mutation` sees what it runs). Its stdin is no terminal, unless ``answer`` is given:
    then a pseudo-terminal on which that answer is typed."""

    def run(location: Path, *flags: str, answer: str | None = None) -> tuple[int, str, str]:
        argv = ["azurite", "reset", "--location", str(location), *flags]
        if answer is None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(""))
            code = cli_main(argv)
        else:
            controller, terminal = pty.openpty()
            try:
                os.write(controller, answer.encode() + b"\n")
                with os.fdopen(terminal, "r") as tty:
                    monkeypatch.setattr(sys, "stdin", tty)
                    code = cli_main(argv)
            finally:
                os.close(controller)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def restarted() -> Iterator[list[Azurite]]:
    started: list[Azurite] = []
    yield started
    for azurite in started:
        azurite.stop()


def test_reset_with_yes_empties_the_store_and_keeps_other_files(
    store: Path, restarted: list[Azurite], reset: Reset
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
    store: Path, reset: Reset
) -> None:
    before = azurite_files(store)

    code, out, err = reset(store)

    assert code == 2
    assert out == ""
    assert err.startswith("ca-watch: error: reset deletes every upload") and "--yes" in err
    assert len(err.splitlines()) == 1
    assert azurite_files(store) == before


def test_reset_asks_on_a_terminal_and_no_keeps_everything(store: Path, reset: Reset) -> None:
    before = azurite_files(store)

    code, out, err = reset(store, answer="n")

    assert code == 1
    assert "Delete every upload, table and ledger row" in err and "[y/N]" in err
    assert "not reset: nothing deleted" in out
    assert azurite_files(store) == before


def test_reset_asks_on_a_terminal_and_yes_empties_it(store: Path, reset: Reset) -> None:
    code, out, err = reset(store, answer="y")

    assert code == 0, err
    assert "[y/N]" in err
    assert "reset:" in out
    assert azurite_files(store) == []


def test_reset_stops_the_azurite_running_on_the_store_first(store: Path, reset: Reset) -> None:
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


def test_reset_of_a_folder_without_azurite_data_deletes_nothing(
    tmp_path: Path, reset: Reset
) -> None:
    (tmp_path / "precious.txt").write_text("not Azurite's\n")

    code, out, _err = reset(tmp_path, "--yes")

    assert code == 0
    assert "holds no Azurite data" in out
    assert (tmp_path / "precious.txt").exists()
