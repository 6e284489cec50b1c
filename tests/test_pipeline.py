"""The upload-to-table pipeline against a real Azurite, through the registered functions."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.app import handlers
from shared.local import samples
from shared.local.azurite import Azurite
from shared.local.runner import (
    blob_trigger_argument,
    process_pending,
    registered_function,
    registered_functions,
)
from shared.storage.keys import upload_partition

REAL_CERTS = Path(__file__).parent / "data" / "azure-sphere-public"

PROJECT = Path(__file__).resolve().parent.parent
NOW = datetime(2020, 7, 30, 9, 0, tzinfo=UTC)


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)


def mixed_tree() -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in REAL_CERTS.iterdir() if p.suffix in (".pem", ".der")}
    files.update(samples.incident_sample_files())
    files["keys/device-key.pem"] = (
        b"-----BEGIN EC PRIVATE KEY-----\n"
        b"MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oZFVdK4gvqT/oAoGCCqGSM49\n"
        b"-----END EC PRIVATE KEY-----\n"
    )
    return files


def comparable(report: dict) -> dict:
    """The report without the processing timestamps."""
    for cert in report["certificates"]:
        cert.pop("last_seen", None)
        cert.pop("first_seen", None)
    for row in report["uploads"]:
        row.pop("processed_at", None)
    return report


def test_functions_are_registered_as_designed() -> None:
    functions = {
        name: json.loads(f.get_function_json()) for name, f in registered_functions().items()
    }
    blob = functions["analyze_upload"]["bindings"][0]
    assert blob == {
        "direction": "IN",
        "type": "blobTrigger",
        "name": "client",
        "path": "%CERT_CONTAINER%/{name}",
        "connection": "CertStorage",
        "source": "EventGrid",
    }
    timer = functions["send_alerts"]["bindings"][0]
    assert timer["schedule"] == "%ALERT_SCHEDULE%"
    assert timer["runOnStartup"] is False and timer["useMonitor"] is True


def test_mixed_tree_gives_a_row_per_certificate_and_upload_and_is_idempotent(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    files = mixed_tree()
    upload(app_runtime, files)
    delivered, failed = process_pending(app_runtime)
    assert (delivered, failed) == (len(files), 0)
    report = app_runtime.store.report()
    uploads = {u["name"]: u for u in report["uploads"]}
    assert set(uploads) == set(files)
    assert uploads["misc/notes.txt"]["status"] == "unreadable"
    assert uploads["misc/notes.txt"]["error"]["code"] == "not-a-certificate"
    assert uploads["keys/device-key.pem"]["status"] == "rejected"
    assert uploads["keys/device-key.pem"]["error"]["code"] == "private-key-material"
    assert "MHcCAQEEIBkg4LVWM9" not in json.dumps(report)
    assert (
        len(uploads[f"tenant-{samples.TENANT_DEVICES}/CAcertificateChain.p7b"]["certificates"]) == 2
    )

    by_tenant: dict[str, list[dict]] = {}
    for cert in report["certificates"]:
        by_tenant.setdefault(cert["azure_sphere"]["tenant_id"], []).append(cert)
    (oid,) = by_tenant[samples.TENANT_OID]
    assert (oid["verdict"], oid["signature_algorithm"]["mismatch"]) == ("affected", "oid")
    (params,) = by_tenant[samples.TENANT_PARAMS]
    assert (params["verdict"], params["signature_algorithm"]["mismatch"]) == (
        "affected",
        "parameters",
    )
    assert {c["azure_sphere"]["role"] for c in by_tenant[samples.TENANT_DEVICES]} == {
        "tenant-ca",
        "device",
    }
    assert len(report["certificates"]) == 3 + 2 + 2  # real, affected, chain
    assert all(c["sources"] for c in report["certificates"])

    # The result blob sits next to the upload, for Storage Explorer users.
    result_blob = app_runtime.blobs.get_blob_client(
        app_runtime.settings.results_container,
        f"tenant-{samples.TENANT_OID}/CAcertificate.cer.json",
    )
    document = json.loads(result_blob.download_blob().readall())
    assert document["schema"] == "ca-watch/scan/v1"
    assert document["results"][0]["certificates"][0]["verdict"] == "affected"

    before = comparable(app_runtime.store.report())
    assert process_pending(app_runtime) == (0, 0)  # nothing pending at the same ETags
    assert comparable(app_runtime.store.report()) == before


def test_duplicate_delivery_leaves_the_same_rows(app_runtime) -> None:
    upload(app_runtime, {"a.pem": samples.tenant_ca("b7d8c6e2-1111-4222-8333-944445555666").pem})
    analyze = registered_function("analyze_upload")
    handlers.use_clock(lambda: NOW)
    analyze(blob_trigger_argument(app_runtime.settings.cert_container, "a.pem"))
    first = app_runtime.store.report()
    # Later deliveries of the same event: were it recorded again, its processing time and
    # the certificate's last_seen would move, so the whole report is compared, timestamps
    # included.
    for hours in (1, 2):
        handlers.use_clock(lambda hours=hours: NOW + timedelta(hours=hours))
        analyze(blob_trigger_argument(app_runtime.settings.cert_container, "a.pem"))
    handlers.use_clock(None)
    assert app_runtime.store.report() == first
    # Re-uploading the same bytes gives a new ETag: recorded again, still one row.
    replacement = samples.tenant_ca("b7d8c6e2-1111-4222-8333-944445555666")
    upload(app_runtime, {"a.pem": replacement.pem})
    process_pending(app_runtime)
    report = app_runtime.store.report()
    assert len(report["uploads"]) == 1
    # The tenant CA it replaced stays on record with no source (the inventory never forgets).
    sources = {c["sha256_fingerprint"]: c["sources"] for c in report["certificates"]}
    assert sources == {
        first["certificates"][0]["sha256_fingerprint"]: [],
        sha256_hex(replacement.der): ["a.pem"],
    }


def test_same_certificate_in_two_uploads_is_one_row_with_both_sources(app_runtime) -> None:
    cert = samples.tenant_ca("c0ffee00-1111-4222-8333-944445555666")
    upload(app_runtime, {"one.pem": cert.pem, "two/copy.cer": cert.der})
    process_pending(app_runtime)
    report = app_runtime.store.report()
    assert len(report["certificates"]) == 1
    assert report["certificates"][0]["sources"] == ["one.pem", "two/copy.cer"]


def test_changed_content_under_the_same_name_replaces_its_contribution(app_runtime) -> None:
    old = samples.tenant_ca("d00d0000-1111-4222-8333-944445555666", key_seed=31)
    new = samples.tenant_ca(
        "d00d0000-1111-4222-8333-944445555666", datetime(2021, 3, 1, tzinfo=UTC), key_seed=32
    )
    shared_cert = samples.tenant_ca("eeee0000-1111-4222-8333-944445555666", key_seed=33)
    upload(app_runtime, {"ca.pem": old.pem + shared_cert.pem, "other.pem": shared_cert.pem})
    process_pending(app_runtime)
    upload(app_runtime, {"ca.pem": new.pem})
    process_pending(app_runtime)
    report = app_runtime.store.report()
    shas = {c["sha256_fingerprint"]: c for c in report["certificates"]}
    old_sha = sha256_hex(old.der)
    assert shas[old_sha]["sources"] == []  # its only source was replaced: still watched
    assert shas[sha256_hex(new.der)]["sources"] == ["ca.pem"]
    assert shas[sha256_hex(shared_cert.der)]["sources"] == ["other.pem"]
    names = [u["name"] for u in report["uploads"]]
    assert sorted(names) == ["ca.pem", "other.pem"]
    # The superseded upload row is gone from its partition.
    rows = list(
        app_runtime.store.table("uploads").query_entities(
            "PartitionKey eq @pk", parameters={"pk": upload_partition("ca.pem")}
        )
    )
    assert len(rows) == 1


def test_every_bad_input_is_recorded_with_its_code(app_runtime) -> None:
    cert = samples.tenant_ca()
    files = {
        "empty.cer": b"",
        "garbage.bin": bytes(range(1, 200)),
        "truncated.cer": cert.der[:-40],
        "half.pem": cert.pem[:200],
        "csr.pem": b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
        b"-----END CERTIFICATE REQUEST-----\n",
    }
    upload(app_runtime, files)
    assert process_pending(app_runtime) == (len(files), 0)
    codes = {
        u["name"]: (u["status"], u["error"]["code"]) for u in app_runtime.store.report()["uploads"]
    }
    assert codes == {
        "empty.cer": ("unreadable", "empty"),
        "garbage.bin": ("unreadable", "not-a-certificate"),
        "truncated.cer": ("unreadable", "truncated"),
        "half.pem": ("unreadable", "truncated"),
        "csr.pem": ("unreadable", "certificate-request"),
    }


@pytest.mark.timeout(600)  # 500 blobs through Azurite: seconds alone, minutes on a loaded box
def test_five_hundred_blobs_each_recorded_once(app_runtime) -> None:
    pca = samples.azure_sphere_pca()
    files = {
        f"fleet/{i:03d}.pem": samples.pem(
            samples.device_certificate(
                samples.tenant_ca("f1ee7000-1111-4222-8333-944445555666", issuer=pca)
            ).der
        )
        for i in range(500)
    }
    upload(app_runtime, files)
    assert process_pending(app_runtime) == (500, 0)
    report = app_runtime.store.report()
    # One upload row per blob, each holding its one certificate, and each certificate listed
    # with exactly the blob it came from.
    assert sorted(u["name"] for u in report["uploads"]) == sorted(files)
    assert all(u["status"] == "analyzed" for u in report["uploads"])
    held = {u["name"]: u["certificates"] for u in report["uploads"]}
    assert all(len(shas) == 1 for shas in held.values())
    sources = {c["sha256_fingerprint"]: c["sources"] for c in report["certificates"]}
    assert len(sources) == 500
    assert all(sources[shas[0]] == [name] for name, shas in held.items())


@pytest.mark.xdist_group("azurite-restart")
def test_azurite_stopped_mid_run_then_restarted(tmp_path, monkeypatch) -> None:
    server = Azurite(tmp_path / "azurite").start()
    try:
        monkeypatch.setenv("CertStorage", server.connection_string)
        monkeypatch.setenv("CERT_CONTAINER", "certificates")
        handlers.reset_runtime()
        rt = handlers.runtime()
        handlers.ensure_containers(rt)
        files = {
            f"batch/{i:02d}.pem": samples.tenant_ca(
                f"ab000000-1111-4222-8333-9444455556{i:02d}"
            ).pem
            for i in range(30)
        }
        upload(rt, files)

        monkeypatch.setenv("CA_WATCH_STORAGE_RETRY_TOTAL", "0")
        handlers.reset_runtime()
        rt = handlers.runtime()
        calls = {"n": 0}
        original = type(rt.store.uploads).record_upload

        def stop_on_the_eleventh(store, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 11:
                server.stop()  # storage goes away mid-run, between download and table write
            return original(store, *args, **kwargs)

        monkeypatch.setattr(type(rt.store.uploads), "record_upload", stop_on_the_eleventh)
        delivered, failed = process_pending(rt)
        assert delivered == 10 and failed == 20

        server.start()  # same ports, same data folder
        monkeypatch.setattr(type(rt.store.uploads), "record_upload", original)
        delivered, failed = process_pending(rt)
        assert (delivered, failed) == (20, 0)
        assert process_pending(rt) == (0, 0)
        report = rt.store.report()
        assert sorted(u["name"] for u in report["uploads"]) == sorted(files)
        assert all(len(c["sources"]) == 1 for c in report["certificates"])
        assert len(report["certificates"]) == 30
    finally:
        server.wipe()
        handlers.reset_runtime()


def test_cli_upload_process_report_round_trip(app_runtime, tmp_path) -> None:
    tree = tmp_path / "tree"
    for name, data in mixed_tree().items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    env = dict(os.environ)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shared.local.cli", *args], cwd=PROJECT, env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    sent = set(mixed_tree()) - {"keys/device-key.pem"}  # the CLI never sends key material
    uploaded = cli("upload", "-q", str(tree))
    assert uploaded.returncode == 1 and "device-key.pem: not uploaded" in uploaded.stderr
    first = cli("process", "--once")
    assert first.returncode == 1, first.stderr  # the tree's bad files need action
    assert f"{len(sent)} blob(s) processed" in first.stdout
    report = cli("report", "--json")
    assert report.returncode == 1  # affected certificates and bad files need action
    document = json.loads(report.stdout)
    assert document["schema"] == "ca-watch/report/v1"
    assert {u["name"] for u in document["uploads"]} == sent
    again = cli("process", "--once")
    assert "0 blob(s) processed" in again.stdout
    assert comparable(json.loads(cli("report", "--json").stdout)) == comparable(document)
    assert "Traceback" not in report.stderr + again.stderr


def test_concurrent_deliveries_merge_sources_of_a_shared_certificate(app_runtime) -> None:
    """Eight deliveries at once, as the host runs them: every upload carries the same tenant
    CA, so its row is merged concurrently (ETag conflicts) and must end with every source."""
    pca = samples.azure_sphere_pca()
    shared_ca = samples.tenant_ca("5ca1ab1e-1111-4222-8333-944445555666", issuer=pca)
    files = {
        f"sites/{i:02d}.pem": shared_ca.pem + samples.device_certificate(shared_ca).pem
        for i in range(40)
    }
    upload(app_runtime, files)
    assert process_pending(app_runtime, workers=8) == (40, 0)
    report = app_runtime.store.report()
    (ca_row,) = [c for c in report["certificates"] if c["azure_sphere"]["role"] == "tenant-ca"]
    assert ca_row["sources"] == sorted(files)
    assert len(report["certificates"]) == 41 and len(report["uploads"]) == 40
    assert process_pending(app_runtime, workers=8) == (0, 0)


def test_a_tenant_ca_whose_last_upload_is_replaced_stays_watched(app_runtime) -> None:
    """New content under the same blob name removes what the old content contributed,
    except a tenant CA: it keeps its tenant row and its alert until it is resolved or
    retired (issue 21 hole 7: an overwrite used to make an affected CA vanish silently)."""
    tenant_id = "c0ffee00-1111-4222-8333-944445555666"
    incident = samples.tenant_ca(tenant_id)
    upload(app_runtime, {"tenant/ca.cer": incident.der})
    process_pending(app_runtime)
    store = app_runtime.store
    assert [c.sha256 for c in store.tenants.tenant_certificates(tenant_id)] == [
        sha256_hex(incident.der)
    ]
    open_now = store.index.open_tenant_certificates(NOW, all_open=True)
    assert [c.sha256 for c in open_now] == [sha256_hex(incident.der)]

    upload(app_runtime, {"tenant/ca.cer": samples.device_certificate(incident).der})
    process_pending(app_runtime)
    # DESIGN §4 "The inventory never forgets": overwriting its blob changes nothing.
    assert [c.sha256 for c in store.tenants.tenant_certificates(tenant_id)] == [
        sha256_hex(incident.der)
    ]
    open_now = store.index.open_tenant_certificates(NOW, all_open=True)
    assert [c.sha256 for c in open_now] == [sha256_hex(incident.der)]
    (kept,) = [
        c
        for c in store.report()["certificates"]
        if c["sha256_fingerprint"] == sha256_hex(incident.der)
    ]
    assert kept["sources"] == [] and kept["state"] == "pending"
