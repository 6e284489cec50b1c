"""The storage commands' exit codes, errors and help as the README states them, on a real
Azurite: 1 whenever something needs action, 2 for a usage or setup error (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from analyzer_samples import GLOVEBOXES_DER, INSIDE, tenant

from shared.app import handlers
from shared.local import samples
from shared.local.cli import main

ROOT = Path(__file__).resolve().parent.parent
STORAGE_COMMANDS = (
    ["upload"],
    ["process"],
    ["report"],
    ["alerts", "run"],
    ["alerts", "plan"],
    ["alerts"],
    ["ack"],
)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "tenant.cer").write_bytes(GLOVEBOXES_DER.read_bytes())
    return folder


def test_process_exits_0_when_every_upload_is_analyzed(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], certs: Path
) -> None:
    assert cli(capsys, "upload", "-q", str(certs))[0] == 0
    code, out, _err = cli(capsys, "process", "-q")
    assert code == 0, out
    assert "1 blob(s) processed, 0 not" in out


def test_process_exits_1_when_an_upload_is_unreadable_or_rejected(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], certs: Path
) -> None:
    (certs / "notes.txt").write_text("not a certificate\n")
    cli(capsys, "upload", "-q", str(certs))
    code, out, _err = cli(capsys, "process", "-q", "--now", "2020-07-30T09:00:00Z")
    assert code == 1, out
    assert "unreadable: notes.txt (not-a-certificate)" in out
    assert "1 upload(s) rejected or unreadable" in out
    # nothing new on the next pass: nothing needs action from it
    assert cli(capsys, "process", "-q")[0] == 0


def test_report_exits_1_while_an_affected_tenant_ca_is_open_and_0_once_acknowledged(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], certs: Path
) -> None:
    affected = tenant(INSIDE)
    (certs / "affected.pem").write_bytes(affected.pem)
    cli(capsys, "upload", "-q", str(certs))
    cli(capsys, "process", "-q", "--now", "2020-07-30T09:00:00Z")
    code, out, _err = cli(capsys, "report")
    assert code == 1 and "affected" in out
    sha1 = next(line.split()[4] for line in out.splitlines() if line.startswith("affected"))
    assert cli(capsys, "ack", sha1, "--by", "ops")[0] == 0
    code, out, _err = cli(capsys, "report")
    assert code == 0, out
    assert "acknowledged by ops" in out


def test_report_names_certificates_by_sha1_everywhere(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "tenant"
    folder.mkdir()
    files = samples.incident_sample_files()
    name = next(n for n in files if samples.TENANT_OID in n)
    (folder / "old.cer").write_bytes(files[name])
    renewed_name, renewed = samples.renewed_tenant_file(samples.TENANT_OID)
    (folder / "new.cer").write_bytes(renewed)
    (folder / "chain.cer").write_bytes(samples.azure_sphere_pca().der)  # authenticates it
    cli(capsys, "upload", "-q", str(folder))
    cli(capsys, "process", "-q", "--now", "2020-08-26T09:00:00Z")
    _code, out, _err = cli(capsys, "report", "--json")
    document = json.loads(out)
    sha1 = {c["sha256_fingerprint"]: c["sha1_thumbprint"] for c in document["certificates"]}
    replaced = next(c for c in document["certificates"] if c["resolved_by"])
    _code, table, _err = cli(capsys, "report")
    assert f"replaced by {sha1[replaced['resolved_by']]}" in table
    for value in sha1.values():  # the uploads list the same SHA-1s, not SHA-256 prefixes
        assert table.count(value) >= 2
    assert renewed_name.endswith(".cer")


def test_alerts_plan_exits_1_with_items_due_and_shows_column_headers(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], certs: Path
) -> None:
    (certs / "affected.pem").write_bytes(tenant(INSIDE).pem)
    cli(capsys, "upload", "-q", str(certs))
    cli(capsys, "process", "-q", "--now", "2020-07-30T09:00:00Z")
    code, out, _err = cli(capsys, "alerts", "plan", "--now", "2020-07-30T09:00:00Z")
    assert code == 1, out
    header = next(line for line in out.splitlines() if line.startswith("TENANT"))
    assert header.split() == ["TENANT", "DEADLINE", "STAGE", "DUE", "CHANNELS"]
    assert "outbox=planned" in out


def test_alerts_plan_exits_0_with_nothing_due(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], certs: Path
) -> None:
    cli(capsys, "upload", "-q", str(certs))
    cli(capsys, "process", "-q", "--now", "2019-06-01T09:00:00Z")
    code, out, _err = cli(capsys, "alerts", "plan", "--now", "2019-06-01T09:00:00Z")
    assert code == 0, out
    assert "0 item(s) due" in out


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CertStorage")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "shared.local.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )


@pytest.mark.parametrize(
    "value", ["not a connection string", "AccountName=x;AccountKey=not-base64"]
)
def test_a_malformed_certstorage_is_a_setup_error_naming_it(value: str) -> None:
    done = run_cli("report", CertStorage=value, CA_WATCH_STORAGE_RETRY_TOTAL="0")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("ca-watch: error: CertStorage")
    assert len(done.stderr.strip().splitlines()) == 1


def test_unreachable_storage_hint_is_a_command_that_works() -> None:
    done = run_cli(
        "report",
        CertStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=YWJj;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        CA_WATCH_STORAGE_RETRY_TOTAL="0",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ca-watch azurite start" in done.stderr
    assert "--skipApiVersionCheck --disableTelemetry" in done.stderr


@pytest.mark.parametrize("command", STORAGE_COMMANDS, ids=" ".join)
def test_each_storage_command_help_says_it_needs_storage_and_how(command: list[str]) -> None:
    done = run_cli(*command, "--help")
    assert done.returncode == 0
    assert "needs storage" in done.stdout
    assert "ca-watch azurite start" in done.stdout and "CertStorage" in done.stdout


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("ca-watch ") and len(done.stdout.split()) >= 2


def test_azurite_status_says_not_running_for_an_unused_location(tmp_path: Path) -> None:
    done = run_cli("azurite", "status", "--location", str(tmp_path))
    assert done.returncode == 1 and "not running" in done.stdout
    stop = run_cli("azurite", "stop", "--location", str(tmp_path))
    assert stop.returncode == 0 and "no Azurite" in stop.stdout


def _ports_free(*ports: int) -> bool:
    import socket

    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


def test_azurite_start_serves_the_storage_commands_and_stop_ends_it(tmp_path: Path) -> None:
    if not _ports_free(10000, 10001, 10002):
        pytest.skip("an Azurite (or something else) already listens on 10000-10002")
    location = tmp_path / "azurite"
    started = run_cli("azurite", "start", "--location", str(location))
    try:
        assert started.returncode == 0, started.stderr
        assert run_cli("azurite", "status", "--location", str(location)).returncode == 0
        again = run_cli("azurite", "start", "--location", str(location))
        assert again.returncode == 0 and "already running" in again.stdout
        # no CertStorage at all: the default, UseDevelopmentStorage=true, is this Azurite
        report = run_cli("report", "--json")
        assert report.returncode == 0, report.stderr
        assert json.loads(report.stdout)["schema"] == "ca-watch/report/v1"
    finally:
        stopped = run_cli("azurite", "stop", "--location", str(location))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert _ports_free(10000, 10001, 10002)
    assert run_cli("azurite", "status", "--location", str(location)).returncode == 1
