"""What one blob costs in storage requests, counted by a proxy in front of Azurite (the
server side sees them, not the code under test), and the one ranged GET: the size limit
holds without reading beyond it, an empty blob is recorded, content and ETag agree."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from counting_proxy import CountingProxy, counting_proxy
from test_mutants_storage import KEY_PEM

from shared.app import handlers
from shared.local import samples
from shared.local.azurite import Azurite
from shared.local.runner import blob_trigger_argument, registered_function
from shared.storage.connections import azurite_connection_string


@dataclass
class Counted:
    rt: handlers.Runtime
    blob: CountingProxy
    table: CountingProxy

    def put(self, name: str, data: bytes) -> str:
        container = self.rt.blobs.get_container_client(self.rt.settings.cert_container)
        blob = container.get_blob_client(name)
        etag = blob.upload_blob(data, overwrite=True)["etag"]
        return str(etag).strip('"')

    def deliver(self, name: str) -> list[str]:
        """Deliver one blob event to the registered function; the requests it made."""
        self.blob.reset()
        self.table.reset()
        argument = blob_trigger_argument(self.rt.settings.cert_container, name)
        registered_function("analyze_upload")(argument)
        return [f"blob {r.method}" for r in self.blob.seen()] + [
            f"table {r.method}" for r in self.table.seen()
        ]

    def upload_row(self, name: str) -> dict:
        (row,) = [u for u in self.rt.store.report()["uploads"] if u["name"] == name]
        return row


@pytest.fixture
def counted(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Counted]:
    with counting_proxy(azurite.blob_port) as blob, counting_proxy(azurite.table_port) as table:
        monkeypatch.setenv(
            "CertStorage",
            azurite_connection_string("127.0.0.1", blob.port, azurite.queue_port, table.port),
        )
        monkeypatch.setenv("CERT_CONTAINER", f"certs{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("RESULTS_CONTAINER", f"results{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("ALERT_OUTBOX_DIR", str(tmp_path / "outbox"))
        handlers.reset_runtime()
        rt = handlers.runtime()
        rt.store.delete_all()
        rt.store.ensure_tables()
        handlers.ensure_containers(rt)
        yield Counted(rt, blob, table)
        handlers.reset_runtime()


def test_an_ordinary_certificate_costs_six_requests_and_a_duplicate_three(counted) -> None:
    tenant = samples.tenant_ca()
    device = samples.device_certificate(tenant)
    counted.put("device.pem", device.pem)

    first = counted.deliver("device.pem")
    # GET (ranged: content, size and ETag), the listing of the name's versions (issue 23:
    # an earlier version never processed may hold a key), the uploads read, the result
    # blob, the certificate row, the upload row.
    assert sorted(first) == sorted(
        ["blob GET", "blob GET", "table GET", "blob PUT", "table POST", "table PUT"]
    ), first
    (get,) = [r for r in counted.blob.seen() if r.method == "GET" and "comp=list" not in r.path]
    assert get.headers.get("x-ms-range") == f"bytes=0-{counted.rt.settings.max_upload_bytes}"

    again = counted.deliver("device.pem")  # the same event delivered twice
    assert sorted(again) == ["blob GET", "blob GET", "table GET"], again
    assert counted.upload_row("device.pem")["status"] == "analyzed"


def test_a_tenant_ca_adds_its_tenant_and_index_rows(counted) -> None:
    counted.put("tenant.cer", samples.tenant_ca().der)
    requests = counted.deliver("tenant.cer")
    # The six of any certificate, plus the tenant CA's bookkeeping: its thumbprint row
    # (which tenant a listed thumbprint belongs to) and its tenantcas row, the tenant's
    # refresh (read tenantcas, acks and its index rows; write resolved_by, the index row),
    # the gate (read it, then create or lower it), and the refresh's check that nothing
    # moved under it (read tenantcas, acks and the index rows again: the renewal race).
    assert len(requests) == 6 + 12, requests
    assert counted.upload_row("tenant.cer")["status"] == "analyzed"


def test_an_over_size_blob_is_refused_after_reading_at_most_the_limit_plus_one(
    counted, monkeypatch
) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "100")
    handlers.reset_runtime()
    counted.rt = handlers.runtime()
    counted.put("big.pem", samples.tenant_ca().pem)  # ~700 bytes
    counted.deliver("big.pem")
    gets = [
        r for r in counted.blob.seen() if r.method in ("GET", "HEAD") and "comp=list" not in r.path
    ]
    assert [(r.method, r.headers.get("x-ms-range")) for r in gets] == [("GET", "bytes=0-100")]
    assert gets[0].body_bytes <= 101
    row = counted.upload_row("big.pem")
    assert (row["status"], row["error"]["code"]) == ("rejected", "too-large")


def test_the_function_and_scan_agree_on_a_blob_of_exactly_the_limit(
    counted, monkeypatch, tmp_path
) -> None:
    from shared.analysis.reader import too_large  # noqa: F401 - the scan's rule: size > limit

    pem = samples.tenant_ca().pem
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(len(pem)))
    handlers.reset_runtime()
    counted.rt = handlers.runtime()
    counted.put("exact.pem", pem)
    counted.put("over.pem", pem + b"\n")
    counted.deliver("exact.pem")
    counted.deliver("over.pem")
    assert counted.upload_row("exact.pem")["status"] == "analyzed"
    over = counted.upload_row("over.pem")
    assert (over["status"], over["error"]["code"]) == ("rejected", "too-large")


def test_an_empty_blob_is_recorded_as_empty_with_its_etag(counted) -> None:
    etag = counted.put("empty.cer", b"")
    counted.deliver("empty.cer")
    row = counted.upload_row("empty.cer")
    assert (row["status"], row["error"]["code"]) == ("unreadable", "empty")
    assert row["etag"] == etag


def test_the_recorded_etag_is_the_one_of_the_content_read(counted) -> None:
    etag = counted.put("a.pem", samples.tenant_ca().pem)
    counted.deliver("a.pem")
    assert counted.upload_row("a.pem")["etag"] == etag


def _listings(counted: Counted) -> list[tuple[dict[str, list[str]], int]]:
    """The container listings the blob proxy saw: their query and the status answered."""
    return [
        (parse_qs(urlsplit(r.path).query), r.status)
        for r in counted.blob.seen()
        if "comp=list" in r.path
    ]


def test_each_versions_listing_is_of_the_blob_s_own_name(counted) -> None:
    """The version sweep and a key's deletion list only the name's own versions (a prefix
    listing), never the whole container: that would cost every event a listing of every
    upload."""
    counted.put("device.pem", samples.tenant_ca().pem)
    counted.deliver("device.pem")
    counted.put("device.key", KEY_PEM)
    counted.deliver("device.key")
    assert [(query["prefix"], query["include"]) for query, _ in _listings(counted)] == [
        (["device.key"], ["versions"]),  # the sweep
        (["device.key"], ["versions"]),  # the deletion of every copy
    ]
    counted.deliver("device.pem")  # a duplicate: the sweep only
    assert [query["prefix"] for query, _ in _listings(counted)] == [["device.pem"]]


def test_a_versions_listing_the_service_refuses_is_logged_once_and_not_retried(
    counted, caplog: pytest.LogCaptureFixture
) -> None:
    """Azurite answers 500 to a listing that would return a name XML cannot carry: the
    sweep asks once (the next event looks again), says so by name, and the blob is still
    recorded (refused for its name)."""
    caplog.set_level(logging.WARNING, logger="ca_watch")
    name = "dir/c\x01d.pem"
    counted.put(name, samples.tenant_ca().pem)
    counted.deliver(name)
    assert [status for _, status in _listings(counted)] == [500]
    (warned,) = [r.getMessage() for r in caplog.records if "versions" in r.getMessage()]
    assert warned == f"blob {name}: its versions could not be listed (Internal Server Error)"
    row = counted.upload_row(name)
    assert (row["status"], row["error"]["code"]) == ("rejected", "bad-blob-name")
