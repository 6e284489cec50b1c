"""Blob names the service or the runner cannot use, against a real Azurite: a control
character (Azurite then answers 500 to every listing of the container), a name too long
for ``<name>.json``, and a storage account that is not there at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from shared.app import handlers
from shared.app.pipeline import HASHED_RESULTS, result_blob_name
from shared.local import samples
from shared.local.azurite import Azurite, free_port
from shared.local.runner import blob_trigger_argument, process_pending, registered_function
from shared.storage.connections import azurite_connection_string

PROJECT = Path(__file__).resolve().parent.parent


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.local.cli", *args], cwd=PROJECT,
        env=env or dict(os.environ), capture_output=True, text=True, timeout=110,
    )  # fmt: skip


def test_control_character_names_are_rejected_and_the_rest_still_processed(
    app_runtime, capsys
) -> None:
    good = ["a.pem", "dir/b.pem", "dir/zz.pem", "z.pem", "dir/deeper/c.pem"]
    bad = ["dir/c\x01d.pem", "\x02root.pem"]
    upload(app_runtime, {name: samples.tenant_ca().pem for name in good + bad})

    delivered, failed = process_pending(app_runtime)
    assert (delivered, failed) == (len(good), 0)
    said = capsys.readouterr().err
    assert "Traceback" not in said
    # One line per level that could not be listed whole, saying where and why.
    lines = said.splitlines()
    assert all(line.startswith("ca-watch: cannot list blobs under ") for line in lines)
    assert sorted(line.split("'")[1] for line in lines) == ["", "dir/", "dir/c"]

    # Event Grid still delivers such a blob in Azure: the function records it as rejected,
    # unread, and its result blob gets a name every listing can carry.
    analyze = registered_function("analyze_upload")
    for name in bad:
        analyze(blob_trigger_argument(app_runtime.settings.cert_container, name))
    uploads = {u["name"]: u for u in app_runtime.store.report()["uploads"]}
    assert set(uploads) == set(good + bad)
    for name in bad:
        assert (uploads[name]["status"], uploads[name]["error"]["code"]) == (
            "rejected",
            "bad-blob-name",
        )
        assert uploads[name]["certificates"] == []
    for name in good:
        assert uploads[name]["status"] == "analyzed"
    results = app_runtime.blobs.get_container_client(app_runtime.settings.results_container)
    listed = sorted(b.name for b in results.list_blobs())  # no 500: no bad name in there
    assert sum(name.startswith(HASHED_RESULTS) for name in listed) == len(bad)
    assert process_pending(app_runtime) == (0, 0)


def test_a_name_too_long_for_the_result_suffix_gets_a_hashed_result_name(app_runtime) -> None:
    name = "deep/" + "n" * 1_011 + ".pem"
    assert len(name) == 1_020  # fits Azure's 1,024; "<name>.json" would not
    upload(app_runtime, {name: samples.tenant_ca().pem})
    assert process_pending(app_runtime) == (1, 0)
    (row,) = app_runtime.store.report()["uploads"]
    assert (row["name"], row["status"]) == (name, "analyzed")
    result_name = result_blob_name(name)
    assert result_name.startswith(HASHED_RESULTS) and len(result_name) <= 1_024
    result = app_runtime.blobs.get_blob_client(app_runtime.settings.results_container, result_name)
    assert json.loads(result.download_blob().readall())["results"][0]["source"] == name


def test_cli_upload_refuses_a_name_storage_cannot_list(app_runtime, tmp_path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.pem").write_bytes(samples.tenant_ca().pem)
    (tree / "bad\x01name.pem").write_bytes(samples.tenant_ca().pem)
    done = cli("upload", str(tree))
    assert done.returncode == 1
    assert "bad\\x01name.pem" in done.stderr and "Traceback" not in done.stderr
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    assert [b.name for b in container.list_blobs()] == ["ok.pem"]


def test_process_against_a_stopped_azurite_ends_within_seconds(tmp_path) -> None:
    port = free_port()  # nothing listens there: Azurite stopped
    env = dict(os.environ)
    env.pop("CA_WATCH_STORAGE_RETRY_TOTAL", None)
    env["CertStorage"] = azurite_connection_string("127.0.0.1", port, port, port)
    start = time.monotonic()
    done = cli("process", "--once", env=env)
    elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot reach storage" in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 12, f"{elapsed:.1f} s"


def test_azurite_stopped_mid_process_ends_it_within_seconds(tmp_path) -> None:
    """Azurite stops while ``ca-watch process`` runs: the SDKs' default retries would wait
    about 80 s on the dead endpoint; the CLI bounds them, so it ends with the storage error
    in seconds, and what was not processed stays pending."""
    server = Azurite(tmp_path / "azurite").start()
    try:
        env = dict(os.environ)
        env.pop("CA_WATCH_STORAGE_RETRY_TOTAL", None)
        env.update(CertStorage=server.connection_string, CERT_CONTAINER="certificates")
        blobs = BlobServiceClient.from_connection_string(server.connection_string)
        container = blobs.create_container("certificates")
        for i in range(30):
            container.upload_blob(f"site/{i:02d}.pem", samples.tenant_ca().pem)
        run = subprocess.Popen(
            [sys.executable, "-m", "shared.local.cli", "process", "--once", "--parallel", "1"],
            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert run.stdout is not None
            assert run.stdout.readline().startswith("processed ")
            server.stop()
            stopped = time.monotonic()
            out, err = run.communicate(timeout=100)
        finally:
            run.kill()
        elapsed = time.monotonic() - stopped
        assert run.returncode == 1, out + err
        assert "storage unreachable" in err and "Traceback" not in err
        assert "not (retried on the next pass)" in out
        assert elapsed < 10, f"{elapsed:.1f} s"
    finally:
        server.wipe()
