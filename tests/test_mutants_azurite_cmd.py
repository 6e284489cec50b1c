"""Kill tests for `make mutation` on shared/local/azurite_cmd.py (issue 24): what `ca-watch
azurite start` says when Azurite cannot start, and what `reset` asks, accepts and says.

`reset` works on files: the stores here are folders holding the names Azurite writes
(tests/test_undo_azurite_reset.py resets stores a real Azurite wrote). A "running Azurite" is
a stand-in process whose command line names azurite, as `_running_pid` checks. The one test
that starts a real Azurite (on free ports) kills whatever runs under its folder at the end,
so no mutant can leave one running."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.local import azurite, azurite_cmd
from shared.local.cli import main

STORE = ("__azurite_db_blob__.json", "__azurite_db_table__.json", "azurite.log")


def _store(location: Path) -> Path:
    location.mkdir(exist_ok=True)
    for name in STORE:
        (location / name).write_text("{}")
    for folder in ("__blobstorage__", "__queuestorage__"):
        (location / folder).mkdir()
        (location / folder / "extent").write_bytes(b"extent bytes")
    (location / "notes.txt").write_text("the operator's own file\n")
    return location


def _left(location: Path) -> list[str]:
    return sorted(path.name for path in location.iterdir())


def _reset(
    location: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *flags: str,
    answer: str | None = None,
) -> tuple[int, str, str]:
    """`ca-watch azurite reset`; stdin no terminal, or a pseudo-terminal typed ``answer``."""
    argv = ["azurite", "reset", "--location", str(location), *flags]
    if answer is None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = main(argv)
    else:
        controller, terminal = pty.openpty()
        try:
            os.write(controller, answer.encode() + b"\n")
            with os.fdopen(terminal, "r") as tty:
                monkeypatch.setattr(sys, "stdin", tty)
                code = main(argv)
        finally:
            os.close(controller)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A store with a recorded "Azurite" running on it (a stand-in that ends on SIGTERM)."""
    location = _store(tmp_path / "store")
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "azurite"],
        start_new_session=True,
    )
    (location / azurite_cmd.PID_FILE).write_text(f"{stand_in.pid}\n")
    yield location, stand_in
    stand_in.kill()
    stand_in.wait()


@pytest.mark.parametrize("answer", ["y", "Y", "yes", "YES", "  yes  "])
def test_reset_takes_y_or_yes_in_any_case(
    answer: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = _store(tmp_path / "store")
    code, out, err = _reset(location, capsys, monkeypatch, answer=answer)
    assert (code, out) == (0, f"reset: {location} is empty of Azurite data\n")
    assert err == (f"Delete every upload, table and ledger row Azurite keeps in {location}? [y/N] ")
    assert _left(location) == ["notes.txt"]


@pytest.mark.parametrize("answer", ["", "n", "no", "yess", "ja"])
def test_reset_takes_anything_else_as_no(
    answer: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = _store(tmp_path / "store")
    before = _left(location)
    code, out, _err = _reset(location, capsys, monkeypatch, answer=answer)
    assert (code, out) == (1, "not reset: nothing deleted\n")
    assert _left(location) == before


def test_reset_asks_naming_the_running_azurite_and_stops_it(
    running: tuple[Path, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location, stand_in = running
    pid = stand_in.pid
    code, out, err = _reset(location, capsys, monkeypatch, answer="y")
    assert err == (
        f"Delete every upload, table and ledger row Azurite keeps in {location}? Azurite "
        f"(pid {pid}) is running on it and will be stopped. [y/N] "
    )
    assert (code, out) == (
        0,
        f"reset: {location} is empty of Azurite data; Azurite (pid {pid}) was stopped: "
        "`ca-watch azurite start` starts it\n",
    )
    assert stand_in.wait(timeout=5) == -signal.SIGTERM
    assert _left(location) == ["notes.txt"]  # the pid file went with it


def test_reset_without_a_terminal_says_how_to_confirm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    location = _store(tmp_path / "store")
    before = _left(location)
    assert _reset(location, capsys, monkeypatch) == (
        2,
        "",
        f"ca-watch: error: reset deletes every upload, table and ledger row in {location}: "
        "confirm with --yes (no terminal to ask on)\n",
    )
    assert _left(location) == before


def test_reset_of_a_folder_without_azurite_data_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("not Azurite's\n")
    assert _reset(tmp_path, capsys, monkeypatch, "--yes") == (
        0,
        f"nothing to reset: {tmp_path} holds no Azurite data\n",
        "",
    )
    assert _left(tmp_path) == ["notes.txt"]


def test_reset_removes_a_linked_store_entry_not_what_it_points_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not in the store\n")
    location = tmp_path / "store"
    location.mkdir()
    (location / "__queuestorage__").symlink_to(elsewhere, target_is_directory=True)
    code, _out, _err = _reset(location, capsys, monkeypatch, "--yes")
    assert code == 0
    assert _left(location) == []
    assert (elsewhere / "keep.txt").read_text() == "not in the store\n"


def test_start_without_azurite_installed_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "node_modules" / ".bin" / "azurite"
    monkeypatch.setattr(azurite, "AZURITE_BIN", missing)
    monkeypatch.setattr(azurite_cmd, "DEFAULT_PORTS", (1, 2, 3))  # nothing listens there
    location = tmp_path / "store"
    code = main(["azurite", "start", "--location", str(location)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"ca-watch: error: {missing} is missing: run `npm ci` (or `make deps`) first\n"
    assert not (location / azurite_cmd.PID_FILE).exists()


def test_azurite_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["azurite"])
    assert done.value.code == 2
    assert "the following arguments are required: ACTION" in capsys.readouterr().err


def _stand_in(location: Path, on_term: str) -> subprocess.Popen[bytes]:
    """A recorded "Azurite" that runs ``on_term`` (Python) when asked to end, then ends."""
    code = (
        "import signal, sys, time, pathlib\n"
        "def end(*_):\n"
        f"    {on_term}\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, end)\n"
        "print(flush=True)\n"
        "time.sleep(60)\n"
    )
    stand_in = subprocess.Popen(
        [sys.executable, "-c", code, "azurite"], stdout=subprocess.PIPE, start_new_session=True
    )
    assert stand_in.stdout is not None and stand_in.stdout.readline()  # handler set
    (location / azurite_cmd.PID_FILE).write_text(f"{stand_in.pid}\n")
    return stand_in


def test_stop_ends_cleanly_when_the_pid_file_went_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another `stop` at the same moment (here: the process itself) removed the pid file."""
    pid_file = tmp_path / azurite_cmd.PID_FILE
    stand_in = _stand_in(tmp_path, f"pathlib.Path({str(pid_file)!r}).unlink()")
    try:
        code = main(["azurite", "stop", "--location", str(tmp_path)])
        assert (code, capsys.readouterr().out) == (
            0,
            f"Azurite stopped (pid {stand_in.pid}); its data stays in {tmp_path}\n",
        )
        assert stand_in.wait(timeout=5) == 0 and not pid_file.exists()
    finally:
        stand_in.kill()
        stand_in.wait()


def test_reset_ends_cleanly_when_azurite_removes_a_store_file_as_it_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    location = _store(tmp_path / "store")
    saving = location / "__azurite_db_blob__.json~"  # a save in progress, gone at the end
    saving.write_text("{}")
    stand_in = _stand_in(location, f"pathlib.Path({str(saving)!r}).unlink()")
    try:
        code, out, err = _reset(location, capsys, monkeypatch, "--yes")
        assert (code, err) == (0, "")
        assert out.startswith(f"reset: {location} is empty of Azurite data; Azurite (pid ")
        assert _left(location) == ["notes.txt"]
    finally:
        stand_in.kill()
        stand_in.wait()


def test_the_default_store_is_the_projects_azurite_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    default = Path(__file__).resolve().parents[1] / ".azurite"
    assert default == azurite_cmd.DEFAULT_LOCATION
    code = main(["azurite", "status"])  # reads only: no --location, so the default
    assert capsys.readouterr().out in (
        f"not running ({default})\n",
        f"running (pid {azurite_cmd._running_pid(default)}), data in {default}\n",
    )
    assert code in (0, 1)


def test_start_serves_the_ports_use_development_storage_means() -> None:
    blob = BlobServiceClient.from_connection_string("UseDevelopmentStorage=true")
    table = TableServiceClient.from_connection_string("UseDevelopmentStorage=true")
    assert (
        int(blob.url.split(":")[2].split("/")[0]),
        10001,  # the queue's (no queue SDK here to ask)
        int(table.url.split(":")[2].split("/")[0]),
    ) == azurite_cmd.DEFAULT_PORTS


# -- start, stop and status (as in test_mutants_cli.py, with nothing left running) --------


def _free_ports(count: int) -> tuple[int, ...]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return tuple(sock.getsockname()[1] for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tmp_path, with free ports standing in for 10000-10002 (which other work on this
    machine may hold). At the end every Azurite whose store lies under it is killed and
    reaped: a mutant of `stop`, or of the checks before `start`, may leave one running or
    start one where none should be."""
    monkeypatch.setattr(azurite_cmd, "DEFAULT_PORTS", _free_ports(3))
    yield tmp_path
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"node") and str(tmp_path).encode() in cmdline:
            pid = int(entry.name)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # ours: reaped here
                os.waitpid(pid, 0)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_start_and_stop_on_a_recorded_azurite(
    contained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = contained / "store"
    location.mkdir()
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "azurite"],
        start_new_session=True,
    )
    try:
        (location / azurite_cmd.PID_FILE).write_text(f"{stand_in.pid}\n")
        pid, where = stand_in.pid, ("--location", str(location))
        assert _cli(capsys, "azurite", "status", *where) == (
            0,
            f"running (pid {pid}), data in {location}\n",
            "",
        )
        assert _cli(capsys, "azurite", "start", *where) == (
            0,
            f"Azurite already running (pid {pid}), data in {location}\n",
            "",
        )
        assert _cli(capsys, "azurite", "stop", *where) == (
            0,
            f"Azurite stopped (pid {pid}); its data stays in {location}\n",
            "",
        )
        assert stand_in.wait(timeout=5) == -signal.SIGTERM  # asked to end, not killed
        assert not (location / azurite_cmd.PID_FILE).exists()
        assert _cli(capsys, "azurite", "status", *where) == (1, f"not running ({location})\n", "")
        assert _cli(capsys, "azurite", "stop", *where) == (
            0,
            f"no Azurite started by ca-watch is running for {location}\n",
            "",
        )
    finally:
        stand_in.kill()
        stand_in.wait()


def test_start_serves_its_ports_and_a_second_start_finds_them_busy(
    contained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob, queue, table = azurite_cmd.DEFAULT_PORTS
    location, other = contained / "store", contained / "other"
    location.mkdir()
    other.mkdir()
    code, out, err = _cli(capsys, "azurite", "start", "--location", str(location))
    pid = int((location / azurite_cmd.PID_FILE).read_text())
    assert (code, err) == (0, "")
    assert out == (
        f"Azurite started on 127.0.0.1:{blob}-{table} (pid {pid}), data in {location}.\n"
        "Storage commands use it with no settings (CertStorage defaults to "
        "UseDevelopmentStorage=true). Stop it with `ca-watch azurite stop`.\n"
    )
    for port in (blob, queue, table):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    assert _cli(capsys, "azurite", "start", "--location", str(other)) == (
        2,
        "",
        f"ca-watch: error: port(s) {blob}, {queue}, {table} already in use: another "
        "Azurite is running (stop it first), or point CertStorage at it\n",
    )
    assert _cli(capsys, "azurite", "stop", "--location", str(location))[0] == 0
    assert not (location / azurite_cmd.PID_FILE).exists()
