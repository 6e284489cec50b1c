"""Kill tests for the pipeline and the store parts behind it (issue 16), against a real
Azurite: what a user reads after an upload, a duplicate delivery, a replacement, a second
source and its removal, a refused file (its row, its failure row and its result blob), and
an acknowledgement. Each test delivers a handful of small blobs, so every mutant of
``shared/app/pipeline.py`` and ``shared/storage/{uploads,certificates,tenants,store}.py``
runs them in a second or two."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.analysis.scan import FileResult, analyze_bytes
from shared.app import handlers
from shared.app.pipeline import (
    HASHED_RESULTS,
    blob_name_problem,
    holds_private_key,
    result_blob_name,
)
from shared.local import samples
from shared.storage import uploads as upload_rows

NOW = datetime(2020, 7, 30, 9, 0, tzinfo=UTC)
TENANT = "5707a9e0-1111-4222-8333-944445555666"
KEY_PEM = (
    b"-----BEGIN EC PRIVATE KEY-----\n"
    b"MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oZFVdK4gvqT/oAoGCCqGSM49\n"
    b"-----END EC PRIVATE KEY-----\n"
)


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def put(rt: handlers.Runtime, name: str, data: bytes) -> str:
    """Upload one blob; its ETag as the pipeline records it (bare)."""
    blob = rt.blobs.get_blob_client(rt.settings.cert_container, name)
    return blob.upload_blob(data, overwrite=True)["etag"].strip('"')


def deliver(rt: handlers.Runtime, name: str, at: datetime = NOW) -> FileResult | None:
    """One delivery of the blob's event, as the host makes it, at ``at``."""
    handlers.use_clock(lambda: at)
    return handlers.analyze_upload(rt.blobs.get_blob_client(rt.settings.cert_container, name))


def uploads_by_name(rt: handlers.Runtime) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in rt.store.report()["uploads"]}


def certificates_by_sha(rt: handlers.Runtime) -> dict[str, dict[str, Any]]:
    return {c["sha256_fingerprint"]: c for c in rt.store.report()["certificates"]}


def result_document(rt: handlers.Runtime, name: str) -> tuple[dict[str, Any], str]:
    blob = rt.blobs.get_blob_client(rt.settings.results_container, result_blob_name(name))
    download = blob.download_blob()
    return json.loads(download.readall()), download.properties.content_settings.content_type


# --- names and keys: pure answers the pipeline records -----------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a" * 1_024, None),
        ("a" * 1_025, "the name is 1,025 characters, over the 1,024 allowed"),
        ("ok name ~.pem", None),  # space and tilde are the printable edges
        ("dir/\x1f.pem", "the name holds the character U+001F, which storage listings refuse"),
        ("x\x7f", "the name holds the character U+007F, which storage listings refuse"),
        ("\x00", "the name holds the character U+0000, which storage listings refuse"),
        ("x\ud7ff\ue000\ufffd", None),  # the neighbours of the refused ranges
        ("x\ud800", "the name holds the character U+D800, which storage listings refuse"),
        ("x\udfff", "the name holds the character U+DFFF, which storage listings refuse"),
        ("x\ufffe", "the name holds the character U+FFFE, which storage listings refuse"),
        ("x\uffff", "the name holds the character U+FFFF, which storage listings refuse"),
    ],
)
def test_a_name_storage_cannot_use_is_refused_with_its_reason(name: str, problem: str) -> None:
    assert blob_name_problem(name) == problem


def test_result_blob_names_fit_and_name_their_upload() -> None:
    fits = "d/" + "n" * 1_017
    assert len(fits) + len(".json") == 1_024
    assert result_blob_name(fits) == fits + ".json"
    for name in (fits + "x", "bad\x01.pem", "lone\ud800.pem"):
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        assert result_blob_name(name) == f"{HASHED_RESULTS}{digest}.json"


@pytest.mark.parametrize(
    ("data", "holds"),
    [
        (b"", False),
        (samples.tenant_ca(TENANT).pem, False),
        (KEY_PEM, True),
        # A key after a block the reader gives up on is still seen.
        (b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n" + KEY_PEM, True),
        (b"junk -----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n", True),
    ],
)
def test_key_material_is_seen_in_any_start_of_a_file(data: bytes, holds: bool) -> None:
    assert holds_private_key(data) is holds


# --- an upload, its rows and its result blob ---------------------------------------------


def test_an_upload_is_recorded_once_with_its_etag_rows_and_result_blob(app_runtime, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ca_watch")
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    device = samples.device_certificate(ca, "d" * 128)
    etag = put(rt, "site/chain.pem", ca.pem + device.pem + ca.pem)  # the CA twice

    result = deliver(rt, "site/chain.pem")
    assert result is not None and len(result.certificates) == 3
    upload = uploads_by_name(rt)["site/chain.pem"]
    assert upload == {
        "name": "site/chain.pem",
        "etag": etag,
        "status": "analyzed",
        "error": None,
        "format": "pem",
        "certificates": [sha256_hex(ca.der), sha256_hex(device.der)],  # once each, in order
        "processed_at": "2020-07-30T09:00:00Z",
        "listing_outcomes": [],
        "retired": None,
    }
    certs = certificates_by_sha(rt)
    assert set(certs) == {sha256_hex(ca.der), sha256_hex(device.der)}
    # Classified at the delivery's time: the days left are counted from it.
    (analysed, *_) = analyze_bytes("x.pem", ca.pem, rt.rules, NOW).certificates
    assert certs[sha256_hex(ca.der)]["reasons"] == analysed.to_json()["reasons"]
    assert any("days left" in reason for reason in analysed.to_json()["reasons"])
    for cert in certs.values():
        assert cert["sources"] == ["site/chain.pem"]
        assert (cert["first_seen"], cert["last_seen"]) == ("2020-07-30T09:00:00Z",) * 2
    # The tenant CA is a tenant row and an open alert: the device is neither.
    (tenant_ca,) = rt.store.tenants.tenant_certificates(TENANT)
    assert tenant_ca.sha256 == sha256_hex(ca.der)
    open_now = rt.store.index.open_tenant_certificates(NOW, all_open=True)
    assert [c.sha256 for c in open_now] == [sha256_hex(ca.der)]
    document, content_type = result_document(rt, "site/chain.pem")
    assert content_type == "application/json"
    assert document["etag"] == etag
    assert document["results"][0]["source"] == "site/chain.pem"
    assert len(document["results"][0]["certificates"]) == 3

    # Redelivered later: nothing is recorded again (its times would move).
    before = rt.store.report()
    assert deliver(rt, "site/chain.pem", NOW + timedelta(hours=2)) is None
    assert rt.store.report() == before
    assert rt.store.uploads.processed_uploads() == {("site/chain.pem", etag)}
    assert said(caplog) == [
        "blob site/chain.pem: analyzed, 3 certificate(s)",
        f"blob site/chain.pem (ETag {etag}) is already recorded; duplicate delivery ignored",
    ]


def test_a_second_source_and_its_removal_keep_the_rows_right(app_runtime) -> None:
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    other = samples.tenant_ca("0bb00000-1111-4222-8333-944445555666", key_seed=44)
    put(rt, "first.pem", ca.pem)
    deliver(rt, "first.pem")
    put(rt, "second.cer", ca.der)
    deliver(rt, "second.cer", NOW + timedelta(hours=1))
    (cert,) = certificates_by_sha(rt).values()
    assert cert["sources"] == ["first.pem", "second.cer"]
    assert (cert["first_seen"], cert["last_seen"]) == (
        "2020-07-30T09:00:00Z",
        "2020-07-30T10:00:00Z",
    )

    # The first (inline) source replaced: the certificate stays, named by the second.
    put(rt, "first.pem", other.pem)
    deliver(rt, "first.pem", NOW + timedelta(hours=2))
    certs = certificates_by_sha(rt)
    assert certs[sha256_hex(ca.der)]["sources"] == ["second.cer"]
    assert certs[sha256_hex(other.der)]["sources"] == ["first.pem"]
    assert [c.sha256 for c in rt.store.tenants.tenant_certificates(TENANT)] == [sha256_hex(ca.der)]

    # Its last source replaced: a tenant CA stays watched with no source left (DESIGN §4
    # "The inventory never forgets"), its tenant row and its alert too.
    put(rt, "second.cer", other.der)
    deliver(rt, "second.cer", NOW + timedelta(hours=3))
    certs = certificates_by_sha(rt)
    assert sorted(certs) == sorted([sha256_hex(ca.der), sha256_hex(other.der)])
    assert certs[sha256_hex(ca.der)]["sources"] == []
    assert certs[sha256_hex(other.der)]["sources"] == ["first.pem", "second.cer"]
    assert [c.sha256 for c in rt.store.tenants.tenant_certificates(TENANT)] == [sha256_hex(ca.der)]
    open_now = rt.store.index.open_tenant_certificates(NOW, all_open=True)
    assert sorted(c.sha256 for c in open_now) == sorted([sha256_hex(ca.der), sha256_hex(other.der)])
    assert list(rt.store.iter_rows("certsources")) != []  # other's second name
    assert sorted(uploads_by_name(rt)) == ["first.pem", "second.cer"]


def test_a_further_source_removed_leaves_the_first(app_runtime) -> None:
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "first.pem", ca.pem)
    deliver(rt, "first.pem")
    put(rt, "second.pem", ca.pem)
    deliver(rt, "second.pem")
    put(rt, "second.pem", b"now something else\n")
    deliver(rt, "second.pem")
    (cert,) = certificates_by_sha(rt).values()
    assert cert["sources"] == ["first.pem"]
    assert list(rt.store.iter_rows("certsources")) == []
    assert [c.sha256 for c in rt.store.tenants.tenant_certificates(TENANT)] == [sha256_hex(ca.der)]


def test_certificates_past_the_inline_ones_are_listed_and_let_go(app_runtime, monkeypatch) -> None:
    """Small inline and chunk sizes stand in for 200 and 400 (which need hundreds of
    certificates): the same code paths, in a fraction of a second."""
    monkeypatch.setattr(upload_rows, "INLINE_CERTIFICATES", 2)
    monkeypatch.setattr(upload_rows, "CERTIFICATES_PER_ROW", 2)
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    devices = [samples.device_certificate(ca, f"{i:0128x}") for i in range(6)]
    shas = [sha256_hex(ca.der)] + [sha256_hex(d.der) for d in devices]
    etag = put(rt, "bundle.pem", ca.pem + b"".join(d.pem for d in devices))
    deliver(rt, "bundle.pem")
    upload = uploads_by_name(rt)["bundle.pem"]
    assert upload["certificates"] == shas  # 2 inline, then chunks 0000, 0001, 0002 in order
    (row,) = rt.store.uploads.upload_rows("bundle.pem")
    assert (row["etag"], row["certificate_rows"]) == (etag, 3)
    assert rt.store.uploads.certificates_of(row) == shas
    assert len(list(rt.store.iter_rows("uploadcerts"))) == 3
    assert set(certificates_by_sha(rt)) == set(shas)

    # New content under the name lets every one of them go, chunk rows included.
    put(rt, "bundle.pem", devices[0].pem)
    deliver(rt, "bundle.pem")
    assert uploads_by_name(rt)["bundle.pem"]["certificates"] == [shas[1]]
    # The devices go; the tenant CA stays watched (the inventory never forgets).
    assert sorted(certificates_by_sha(rt)) == sorted(shas[:2])
    assert list(rt.store.iter_rows("uploadcerts")) == []
    assert [c.sha256 for c in rt.store.tenants.tenant_certificates(TENANT)] == [shas[0]]
    assert len(rt.store.uploads.upload_rows("bundle.pem")) == 1


# --- refused files: their rows, failure rows and what stays ------------------------------


def test_a_refused_file_has_its_row_its_failure_row_and_its_result(app_runtime, caplog) -> None:
    rt = app_runtime
    etag = put(rt, "notes.txt", b"These are not certificates.\n")
    # 01:30 at UTC+2 is 23:30 UTC the day before: the failure is filed under that UTC day.
    local = timezone(timedelta(hours=2))
    at = datetime(2020, 7, 31, 1, 30, tzinfo=local)
    caplog.set_level(logging.INFO, logger="ca_watch")
    result = deliver(rt, "notes.txt", at)
    assert result is not None and result.error is not None
    assert said(caplog) == ["blob notes.txt: unreadable, 0 certificate(s), error not-a-certificate"]
    upload = uploads_by_name(rt)["notes.txt"]
    assert (upload["etag"], upload["status"], upload["error"]["code"], upload["format"]) == (
        etag,
        "unreadable",
        "not-a-certificate",
        None,
    )
    assert upload["error"]["message"] == result.error.message
    assert (upload["certificates"], upload["processed_at"]) == ([], "2020-07-30T23:30:00Z")
    (failure,) = rt.store.iter_rows("uploadfailures")
    assert (failure["PartitionKey"], failure["name"]) == ("2020-07-30", "notes.txt")
    expected = {
        "name": "notes.txt",
        "status": "unreadable",
        "error_code": "not-a-certificate",
        "processed_at": "2020-07-30T23:30:00Z",
    }
    assert {k: failure[k] for k in expected} == expected
    # Read back by the self-health check, whatever time zone asks, inclusive at both ends.
    failed = rt.store.uploads.failed_uploads
    moment = datetime(2020, 7, 30, 23, 30, tzinfo=UTC)
    assert [f["name"] for f in failed(at, at)] == ["notes.txt"]
    assert [f["name"] for f in failed(moment, moment + timedelta(days=1))] == ["notes.txt"]
    assert failed(moment + timedelta(seconds=1), moment + timedelta(hours=1)) == []
    assert failed(moment - timedelta(hours=1), moment - timedelta(seconds=1)) == []
    document, _ = result_document(rt, "notes.txt")
    assert document["etag"] == etag
    assert document["results"][0]["error"]["code"] == "not-a-certificate"


def test_failures_of_two_days_are_read_in_name_order(app_runtime) -> None:
    rt = app_runtime
    for name, at in (
        ("z-late.txt", datetime(2020, 7, 31, 0, 30, tzinfo=UTC)),
        ("a-early.txt", datetime(2020, 7, 30, 23, 30, tzinfo=UTC)),
        ("m-empty.cer", datetime(2020, 7, 31, 8, 0, tzinfo=UTC)),
        # Rows come back in key (name hash) order: c-two's hash sorts before b-one's.
        ("b-one.txt", datetime(2020, 7, 31, 1, 0, tzinfo=UTC)),
        ("c-two.txt", datetime(2020, 7, 31, 2, 0, tzinfo=UTC)),
    ):
        put(rt, name, b"" if name.endswith(".cer") else b"text\n")
        deliver(rt, name, at)
    failed = rt.store.uploads.failed_uploads(
        datetime(2020, 7, 30, 23, 0, tzinfo=UTC), datetime(2020, 7, 31, 8, 0, tzinfo=UTC)
    )
    assert [(f["name"], f["error_code"]) for f in failed] == [
        ("a-early.txt", "not-a-certificate"),
        ("b-one.txt", "not-a-certificate"),
        ("c-two.txt", "not-a-certificate"),
        ("m-empty.cer", "empty"),
        ("z-late.txt", "not-a-certificate"),
    ]


def test_an_empty_blob_is_recorded_empty_with_its_etag(app_runtime) -> None:
    rt = app_runtime
    etag = put(rt, "empty.cer", b"")
    deliver(rt, "empty.cer")
    upload = uploads_by_name(rt)["empty.cer"]
    assert (upload["etag"], upload["status"], upload["error"]["code"]) == (
        etag,
        "unreadable",
        "empty",
    )


def test_the_size_limit_admits_exactly_the_limit(app_runtime, monkeypatch) -> None:
    ca = samples.tenant_ca(TENANT)
    limit = len(ca.der)  # DER: one byte less read would be a truncated certificate
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(limit))
    handlers.reset_runtime()
    rt = handlers.runtime()
    put(rt, "exact.pem", ca.der)
    put(rt, "over.pem", ca.der + b"\n")
    put(rt, "b" * 1_030, ca.der + b"\n")  # its name is what is wrong with it
    for name in ("exact.pem", "over.pem", "b" * 1_030):
        deliver(rt, name)
    uploads = uploads_by_name(rt)
    assert uploads["b" * 1_030]["error"]["code"] == "bad-blob-name"
    assert (uploads["exact.pem"]["status"], uploads["exact.pem"]["error"]) == ("analyzed", None)
    assert uploads["exact.pem"]["format"] == "der"
    over = uploads["over.pem"]
    assert (over["status"], over["error"]["code"], over["certificates"]) == (
        "rejected",
        "too-large",
        [],
    )
    assert f"{limit + 1:,}" in over["error"]["message"]
    assert list(certificates_by_sha(rt)) == [sha256_hex(ca.der)]


def test_a_name_storage_cannot_list_is_refused_unread(app_runtime) -> None:
    rt = app_runtime
    name = "x" * 1_030  # Azurite keeps it; Azure would not
    etag = put(rt, name, samples.tenant_ca(TENANT).pem)
    deliver(rt, name)
    (upload,) = rt.store.report()["uploads"]
    assert (upload["etag"], upload["status"], upload["error"]["code"]) == (
        etag,
        "rejected",
        "bad-blob-name",
    )
    assert upload["error"]["message"] == blob_name_problem(name)
    assert upload["certificates"] == [] and rt.store.report()["certificates"] == []
    document, _ = result_document(rt, name)
    assert document["results"][0]["source"] == name


def test_a_blob_gone_before_delivery_records_nothing(app_runtime, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ca_watch")
    assert deliver(app_runtime, "never-there.pem") is None
    assert deliver(app_runtime, "x" * 1_030) is None  # refused names are looked up too
    assert app_runtime.store.report()["uploads"] == []
    assert said(caplog) == [
        "blob never-there.pem is gone before it was analysed; nothing to record",
        f"blob {'x' * 1_030} is gone before it was analysed; nothing to record",
    ]


def test_a_key_is_recorded_refused_and_its_blob_deleted(app_runtime) -> None:
    rt = app_runtime
    put(rt, "device.key", KEY_PEM)
    put(rt, "ca.pem", samples.tenant_ca(TENANT).pem)
    deliver(rt, "device.key")
    deliver(rt, "ca.pem")
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    assert [b.name for b in container.list_blobs(include=["versions"])] == ["ca.pem"]
    upload = uploads_by_name(rt)["device.key"]
    assert (upload["status"], upload["error"]["code"]) == ("rejected", "private-key-material")
    assert deliver(rt, "device.key") is None  # gone: nothing to record again


# --- the store facade --------------------------------------------------------------------


def test_an_acknowledgement_closes_the_alert_and_shows_in_the_report(app_runtime) -> None:
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "ca.pem", ca.pem)
    deliver(rt, "ca.pem")
    rt.store.acknowledge(TENANT, sha256_hex(ca.der), "ops@example.com", "rotated", NOW)
    assert rt.store.index.open_tenant_certificates(NOW, all_open=True) == []
    (cert,) = rt.store.report()["certificates"]
    assert cert["acknowledged"]["by"] == "ops@example.com"
    assert rt.store.table("acks").get_entity(TENANT, sha256_hex(ca.der))["note"] == "rotated"


def test_a_tenant_wide_acknowledgement_closes_every_ca_of_the_tenant(app_runtime) -> None:
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    other = samples.tenant_ca("0bb00000-1111-4222-8333-944445555666", key_seed=45)
    put(rt, "cas.pem", ca.pem + other.pem)
    deliver(rt, "cas.pem")
    assert len(rt.store.index.open_tenant_certificates(NOW, all_open=True)) == 2
    rt.store.acknowledge(TENANT, None, "ops@example.com", None, NOW)
    open_now = rt.store.index.open_tenant_certificates(NOW, all_open=True)
    assert [c.sha256 for c in open_now] == [sha256_hex(other.der)]  # another tenant's
    acknowledged = [c.acknowledged for c in rt.store.tenants.tenant_certificates(TENANT)]
    assert acknowledged == [True]


def test_a_listing_upload_resolves_the_tenants_it_names(app_runtime) -> None:
    """A registration listing names tenants' renewals: each such tenant is refreshed, so an
    old CA stays open while a target lacks its verified renewal, and closes once none does.
    One document lists two hubs, each naming another tenant's CAs."""
    from tests.registration_samples import HUB_ID, arm_entry

    second_hub = HUB_ID.replace("Fleet-Hub", "Second-Hub")
    other_tenant = "0bb00000-1111-4222-8333-944445555666"
    rt = app_runtime
    old = samples.tenant_ca(TENANT, datetime(2020, 7, 1, tzinfo=UTC), key_seed=1000)
    new = samples.tenant_ca(TENANT, datetime(2020, 8, 1, tzinfo=UTC), key_seed=1001)
    other = samples.tenant_ca(other_tenant, datetime(2020, 7, 1, tzinfo=UTC), key_seed=1002)
    for name, issued in (("old.cer", old), ("new.cer", new), ("other.cer", other)):
        put(rt, name, issued.der)
        deliver(rt, name)

    def listing(new_verified: bool) -> bytes:
        entries = [
            arm_entry(HUB_ID, "old", old, verified=True),
            arm_entry(HUB_ID, "new", new, verified=new_verified),
            arm_entry(second_hub, "other", other, verified=True),
        ]
        return json.dumps({"value": entries}).encode()

    def open_shas() -> set[str]:
        far = datetime(2100, 1, 1, tzinfo=UTC)
        return {c.sha256 for c in rt.store.index.open_tenant_certificates(far, all_open=True)}

    # No evidence and no issuer on record: the renewal is unauthenticated, the CA open.
    assert sha256_hex(old.der) in open_shas()
    put(rt, "hubs.json", listing(new_verified=False))
    deliver(rt, "hubs.json")
    certs = certificates_by_sha(rt)
    assert certs[sha256_hex(old.der)]["resolved_by"] is None
    assert certs[sha256_hex(old.der)]["renewal_pending"] == [HUB_ID.lower()]
    assert sha256_hex(old.der) in open_shas()
    assert [(r["target"], r["source"]) for r in certs[sha256_hex(other.der)]["registrations"]] == [
        (second_hub.lower(), "hubs.json")
    ]

    put(rt, "hubs.json", listing(new_verified=True))
    deliver(rt, "hubs.json", NOW + timedelta(hours=1))
    certs = certificates_by_sha(rt)
    assert certs[sha256_hex(old.der)]["resolved_by"] == sha256_hex(new.der)
    assert certs[sha256_hex(old.der)]["renewal_pending"] == []
    assert sha256_hex(old.der) not in open_shas()
    assert rt.store.table("tenantcas").get_entity(TENANT, sha256_hex(old.der))[
        "registration_evidence"
    ]
    assert uploads_by_name(rt)["hubs.json"]["format"] == "iot-hub-certificates"
    assert {t["target"] for t in rt.store.report()["targets"]} == {
        HUB_ID.lower(),
        second_hub.lower(),
    }


def test_find_tenant_ca_by_tenant_sha256_or_thumbprint(app_runtime) -> None:
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    device = samples.device_certificate(ca, "e" * 128)
    put(rt, "ca.pem", ca.pem + device.pem)
    deliver(rt, "ca.pem")
    find = rt.store.certificates.find_tenant_ca
    sha = sha256_hex(ca.der)
    sha1 = hashlib.sha1(ca.der, usedforsecurity=False).hexdigest()
    colons = ":".join(sha1[i : i + 2] for i in range(0, 40, 2))
    assert find(f"  {TENANT.upper()} ") == (TENANT, None)
    assert find(sha.upper()) == (TENANT, sha)
    assert find(colons.upper()) == (TENANT, sha)
    assert find(sha1) == (TENANT, sha)
    assert find(sha256_hex(device.der)) is None  # not a tenant CA
    assert find(hashlib.sha1(device.der, usedforsecurity=False).hexdigest()) is None
    assert find("0" * 64) is None and find("0" * 40) is None and find("not-a-ref") is None
    # A tenant id is 36 characters with four dashes: either alone is not one.
    assert find("0" * 36) is None and find("a-b-c-d-e") is None


def test_delete_all_drops_the_tables(app_runtime) -> None:
    rt = app_runtime
    put(rt, "ca.pem", samples.tenant_ca(TENANT).pem)
    deliver(rt, "ca.pem")
    rt.store.delete_all()
    rt.store.ensure_tables()
    assert rt.store.report()["uploads"] == [] and rt.store.report()["certificates"] == []
    assert list(rt.store.iter_rows("tenantcas")) == []


# --- what an operator sees in Application Insights ---------------------------------------


def test_each_delivery_reports_its_spans_and_counts(app_runtime, monkeypatch) -> None:
    """The OpenTelemetry SDK with in-memory readers in place of the Azure Monitor exporter
    (which needs Azure): the spans of one delivery and the uploads/certificates counters."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared.app import telemetry

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    monkeypatch.setattr(telemetry, "uploads_counter", meter.create_counter("ca_watch.uploads"))
    monkeypatch.setattr(
        telemetry, "certificates_counter", meter.create_counter("ca_watch.certificates")
    )
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(telemetry, "_tracer", tracing.get_tracer("test"))

    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "ca.pem", ca.pem + samples.device_certificate(ca, "f" * 128).pem)
    put(rt, "notes.txt", b"text\n")
    for name in ("ca.pem", "notes.txt", "ca.pem"):  # the last one a duplicate delivery
        deliver(rt, name)

    counted: dict[tuple[str, tuple[tuple[str, Any], ...]], int] = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    counted[(metric.name, tuple(sorted(point.attributes.items())))] = point.value
    assert counted == {
        ("ca_watch.uploads", (("status", "analyzed"),)): 1,
        ("ca_watch.uploads", (("status", "unreadable"),)): 1,
        ("ca_watch.certificates", (("verdict", "ok"),)): 2,
    }
    finished = [(s.name, dict(s.attributes or {})) for s in spans.get_finished_spans()]
    assert finished[:3] == [
        ("ca_watch.read", {"blob": "ca.pem"}),
        ("ca_watch.analyse", {"blob": "ca.pem"}),
        ("ca_watch.store", {"blob": "ca.pem", "certificates": 2}),
    ]
    assert [name for name, _ in finished].count("ca_watch.read") == 3


# --- text cut to fit a table property ----------------------------------------------------


def test_long_text_is_cut_with_a_marker_that_counts_it() -> None:
    from shared.storage.certificates import cut_text

    assert cut_text("abc", 3) == "abc"
    assert cut_text("abcd", 3) == "abc…[truncated: 4 characters in all]"
    assert cut_text("x" * 1_500, 1_024) == "x" * 1_024 + "…[truncated: 1,500 characters in all]"


def test_a_document_still_too_long_is_cut_shorter(app_runtime, monkeypatch) -> None:
    """A smaller document limit stands in for many long fields at once (30,000 characters
    of them; this one is 2,865 cut once): the second cut keeps 128 characters of each."""
    from shared.storage import certificates as certificate_rows
    from tests.test_table_limits import long_ou_tenant_ca

    monkeypatch.setattr(certificate_rows, "DOCUMENT_LIMIT", 2_000)
    rt = app_runtime
    ca = long_ou_tenant_ca(TENANT, 2_500)
    short = samples.tenant_ca("5b0b0000-1111-4222-8333-944445555666", key_seed=46)
    put(rt, "long.pem", ca.pem + short.pem)
    deliver(rt, "long.pem")
    certs = certificates_by_sha(rt)
    subject = certs[sha256_hex(ca.der)]["subject"]
    kept, marker = subject.split("…")
    assert len(kept) == 128 and marker.startswith("[truncated: ")
    assert "…" not in certs[sha256_hex(short.der)]["subject"]  # short enough: whole
    tenant_row = rt.store.table("tenantcas").get_entity(TENANT, sha256_hex(ca.der))
    kept, marker = tenant_row["subject"].split("…")
    assert len(kept) == 1_024 and marker == "[truncated: 2,595 characters in all]"
    document, _ = result_document(rt, "long.pem")
    assert "u" * 2_500 in document["results"][0]["certificates"][0]["subject"]


def test_a_row_over_a_table_limit_is_recorded_rejected_with_its_reason(
    app_runtime, monkeypatch
) -> None:
    from shared.storage import certificates as certificate_rows
    from tests.test_table_limits import long_ou_tenant_ca

    monkeypatch.setattr(certificate_rows, "TEXT_LIMIT", 10_000_000)  # the cut is off
    monkeypatch.setattr(certificate_rows, "DOCUMENT_LIMIT", 10_000_000)
    rt = app_runtime
    put(rt, "too-long.pem", long_ou_tenant_ca(TENANT, 70_000).pem)
    deliver(rt, "too-long.pem")
    (upload,) = rt.store.report()["uploads"]
    assert (upload["status"], upload["error"]["code"]) == ("rejected", "too-large-to-record")
    assert rt.store.report()["certificates"] == []
    assert upload["error"]["message"] == (
        "a value of this upload does not fit a table row (PropertyValueTooLarge); its "
        "certificates are in its result blob but not in the tables"
    )


# --- deleting key material ---------------------------------------------------------------


class VersionedContainer:
    """Stands in for an Azure container with blob versioning on (Azurite keeps no
    versions): lists the versions it holds and records which ones are deleted."""

    def __init__(self, versions: list[tuple[str, str, bool]], gone: set[str] = frozenset()):
        self.versions = versions  # (name, version id, is the current version)
        self.gone = gone  # version ids already deleted by someone else
        self.deleted: list[tuple[str, str]] = []

    def get_container_client(self, name: str) -> VersionedContainer:
        return self

    def list_blobs(self, name_starts_with: str | None = None, include: Any = None) -> list[Any]:
        from types import SimpleNamespace

        if "versions" not in (include or []):
            return [SimpleNamespace(name=n, version_id=None, is_current_version=None)
                    for n, _, current in self.versions if current]  # fmt: skip
        return [
            SimpleNamespace(name=n, version_id=v, is_current_version=current)
            for n, v, current in self.versions
            if n.startswith(name_starts_with or "")
        ]

    def get_blob_client(self, name: str, version_id: str | None = None) -> Any:
        from types import SimpleNamespace

        from azure.core.exceptions import ResourceNotFoundError

        def delete_blob() -> None:
            if version_id in self.gone:
                raise ResourceNotFoundError("gone")
            self.deleted.append((name, version_id))

        return SimpleNamespace(delete_blob=delete_blob)


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the app logged (Application Insights shows it to operators)."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("ca_watch")]


def test_a_key_blob_loses_every_earlier_version_and_nothing_else(app_runtime, caplog) -> None:
    from shared.app.pipeline import delete_every_copy

    caplog.set_level(logging.INFO, logger="ca_watch")
    rt = app_runtime
    etag = put(rt, "k.pem", KEY_PEM)
    blob = rt.blobs.get_blob_client(rt.settings.cert_container, "k.pem")
    blob.create_snapshot()
    service = VersionedContainer(
        [
            ("k.pem", "v1", False),
            ("k.pem", "v2", False),  # deleted meanwhile: the rest still go
            ("k.pem", "v3", False),
            ("k.pem", "v4", True),  # the current one, already deleted with its snapshots
            ("k.pem.bak", "v5", False),  # another blob's version
        ],
        gone={"v2"},
    )
    delete_every_copy(blob, etag, service)  # type: ignore[arg-type]
    assert service.deleted == [("k.pem", "v1"), ("k.pem", "v3")]
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    assert list(container.list_blobs(include=["snapshots"])) == []
    assert said(caplog) == ["blob k.pem held private key material: deleted with every version"]
    delete_every_copy(blob, etag, VersionedContainer([]))  # type: ignore[arg-type]


def test_a_key_blob_replaced_meanwhile_keeps_its_new_content(app_runtime, caplog) -> None:
    from shared.app.pipeline import delete_every_copy

    caplog.set_level(logging.INFO, logger="ca_watch")
    rt = app_runtime
    old_etag = put(rt, "k.pem", KEY_PEM)
    newer = samples.tenant_ca(TENANT).pem
    put(rt, "k.pem", newer)  # newer content: its own event judges it
    blob = rt.blobs.get_blob_client(rt.settings.cert_container, "k.pem")
    delete_every_copy(blob, old_etag, rt.blobs)
    assert blob.download_blob().readall() == newer
    assert said(caplog)[0] == "blob k.pem was replaced before its key material was deleted"


# --- the rows as Storage Explorer shows them, and writes that fail -----------------------


def test_certificate_and_tenant_rows_carry_their_columns(app_runtime) -> None:
    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "ca.pem", ca.pem)
    deliver(rt, "ca.pem")
    sha = sha256_hex(ca.der)
    sha1 = hashlib.sha1(ca.der, usedforsecurity=False).hexdigest().upper()
    row = rt.store.table("certificates").get_entity(sha[:2], sha)
    expected = {
        "verdict": "ok",
        "role": "tenant-ca",
        "tenant_id": TENANT,
        "not_before": "2019-04-27T07:42:26Z",
        "not_after": "2021-04-26T10:42:26Z",
        "mismatch": "none",
        "sha1_thumbprint": sha1,
        "sources": '["ca.pem"]',
        "first_seen": "2020-07-30T09:00:00Z",
        "last_seen": "2020-07-30T09:00:00Z",
    }
    assert {key: row.get(key) for key in expected} == expected
    assert json.loads(row["document"])["sha256_fingerprint"] == sha
    tenant_row = rt.store.table("tenantcas").get_entity(TENANT, sha)
    expected = {
        "sha1_thumbprint": sha1,
        "subject": f"C=US,ST=Washington,L=Redmond,O=Microsoft Corporation,"
        f"CN=Microsoft Azure Sphere {TENANT}",
        "not_before": "2019-04-27T07:42:26Z",
        "not_after": "2021-04-26T10:42:26Z",
        "verdict": "ok",
        "registration_evidence": False,
    }
    assert {key: tenant_row.get(key) for key in expected} == expected
    assert not tenant_row.get("resolved_by") and not tenant_row.get("renewal_pending")


def test_which_refused_writes_are_table_limits() -> None:
    from azure.core.exceptions import HttpResponseError

    from shared.storage.uploads import outgrew_table

    def refused(status: int, text: str, code: str | None = None) -> HttpResponseError:
        error = HttpResponseError(message=text)
        error.status_code, error.error_code = status, code
        return error

    assert outgrew_table(refused(413, "Request body too large"))
    assert outgrew_table(refused(400, "The property value is too large", "PropertyValueTooLarge"))
    assert outgrew_table(refused(400, "EntityTooLarge: the entity is larger than 1 MB"))
    assert outgrew_table(refused(400, "x", "RequestBodyTooLarge"))
    assert not outgrew_table(refused(503, "Server busy", "ServerBusy"))
    assert not outgrew_table(refused(400, "One of the request inputs is not valid", "InvalidInput"))


def test_a_refused_certificate_write_rejects_or_retries_the_upload(
    app_runtime, monkeypatch
) -> None:
    """Over a limit (413 with no code: Azure's answer to a request body too large), the
    upload is recorded rejected and says why; a transient error leaves it unrecorded, for
    the host to deliver again."""
    from azure.core.exceptions import HttpResponseError

    from shared.storage.certificates import CertificateStore

    rt = app_runtime
    put(rt, "a.pem", samples.tenant_ca(TENANT).pem)
    put(rt, "b.pem", samples.tenant_ca(TENANT).pem)
    answer = {"status": 413}

    def refuse(self, cert, name, now) -> None:
        error = HttpResponseError(message="refused")
        error.status_code = answer["status"]
        raise error

    monkeypatch.setattr(CertificateStore, "add_source", refuse)
    deliver(rt, "a.pem")
    (upload,) = rt.store.report()["uploads"]
    assert (upload["status"], upload["error"]["code"]) == ("rejected", "too-large-to-record")
    assert "(a table limit)" in upload["error"]["message"]
    answer["status"] = 503
    with pytest.raises(HttpResponseError):
        deliver(rt, "b.pem")
    assert list(uploads_by_name(rt)) == ["a.pem"]


def test_an_upload_whose_result_blob_fails_stays_pending(app_runtime) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    rt = app_runtime
    put(rt, "ca.pem", samples.tenant_ca(TENANT).pem)
    rt.blobs.delete_container(rt.settings.results_container)
    with pytest.raises(ResourceNotFoundError):
        deliver(rt, "ca.pem")
    assert rt.store.report()["uploads"] == []  # not recorded: the host delivers it again
    handlers.ensure_containers(rt)
    assert deliver(rt, "ca.pem") is not None
    assert [u["status"] for u in rt.store.report()["uploads"]] == ["analyzed"]


def test_the_store_itself_refuses_a_second_record_of_one_etag(app_runtime) -> None:
    """Two deliveries of one event that both passed the pipeline's check: the second
    record (which reads the rows itself) changes nothing."""
    rt = app_runtime
    etag = put(rt, "ca.pem", samples.tenant_ca(TENANT).pem)
    result = deliver(rt, "ca.pem")
    assert result is not None
    before = rt.store.report()
    later = NOW + timedelta(hours=1)
    assert rt.store.uploads.record_upload("ca.pem", f'"{etag}"', result, later) is False
    assert rt.store.report() == before


def test_an_upload_row_of_an_earlier_version_is_still_superseded(app_runtime) -> None:
    """Rows written before certificate lists were chunked have no ``certificate_rows``
    (and a refused upload's may have no list at all): new content still replaces them."""
    from shared.storage.keys import table_key, upload_partition

    rt = app_runtime
    ca = samples.azure_sphere_pca()  # not a tenant CA: those are never forgotten
    put(rt, "ca.pem", ca.pem)
    deliver(rt, "ca.pem")
    (row,) = rt.store.uploads.upload_rows("ca.pem")
    for key in ("certificate_rows", "processed_at"):
        del row[key]
    rt.store.table("uploads").upsert_entity(row, mode="replace")
    rt.store.table("uploads").upsert_entity(
        {
            "PartitionKey": upload_partition("ca.pem"),
            "RowKey": table_key("0x1"),
            "name": "ca.pem",
            "etag": "0x1",
            "status": "unreadable",
        }
    )
    put(rt, "ca.pem", b"no longer a certificate\n")
    deliver(rt, "ca.pem")
    (upload,) = rt.store.report()["uploads"]
    assert upload["error"]["code"] == "not-a-certificate"
    assert rt.store.report()["certificates"] == []


def test_an_over_size_blob_is_read_only_to_the_limit_plus_one(app_runtime, monkeypatch) -> None:
    """The point is the bound: whatever a blob's size, one ranged GET asks for at most
    ``MAX_UPLOAD_BYTES + 1`` bytes of it."""
    from azure.core.pipeline.transport import RequestsTransport

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    handlers.reset_runtime()
    rt = handlers.runtime()
    put(rt, "big.pem", b"-" * 50_000)
    ranges: list[str | None] = []
    original = RequestsTransport.send

    def watching(transport, request, **kwargs):
        if request.method == "GET" and "big.pem" in request.url and "comp=list" not in request.url:
            ranges.append(request.headers.get("x-ms-range"))
        return original(transport, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", watching)
    deliver(rt, "big.pem")
    assert ranges == ["bytes=0-1000"]
    error = uploads_by_name(rt)["big.pem"]["error"]
    assert error["code"] == "too-large"
    assert error["message"].startswith("50000 bytes is over the 1000-byte limit")  # its size


def test_a_second_source_whose_row_was_removed_meanwhile_makes_it_again(
    app_runtime, monkeypatch
) -> None:
    """The other race: a second upload finds the certificate row (so it is a further
    source), but a removal deletes the row before the second upload's MERGE lands."""
    from shared.storage.certificates import CertificateStore

    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "first.pem", ca.pem)
    deliver(rt, "first.pem")
    original = CertificateStore._add_further_source

    def removed_meanwhile(self, cert, name, now) -> None:
        rt.store.table("certificates").delete_entity(cert.sha256[:2], cert.sha256)
        original(self, cert, name, now)

    monkeypatch.setattr(CertificateStore, "_add_further_source", removed_meanwhile)
    put(rt, "second.pem", ca.pem)
    deliver(rt, "second.pem", NOW + timedelta(hours=1))
    (cert,) = rt.store.report()["certificates"]
    assert cert["sources"] == ["second.pem"]
    assert cert["first_seen"] == "2020-07-30T10:00:00Z"


def test_rows_are_in_the_tables_the_docs_name(app_runtime, azurite) -> None:
    """docs/deploy.md sends users to the `certificates` and `uploads` tables (no prefix)."""
    from azure.data.tables import TableServiceClient

    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "named.pem", ca.pem)
    deliver(rt, "named.pem")
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    uploads = service.get_table_client("uploads").list_entities(select=["name"])
    assert [row["name"] for row in uploads] == ["named.pem"]
    certificates = service.get_table_client("certificates").list_entities(select=["RowKey"])
    assert [row["RowKey"] for row in certificates] == [sha256_hex(ca.der)]


def test_a_limit_above_the_default_admits_a_larger_file(app_runtime, monkeypatch) -> None:
    """MAX_UPLOAD_BYTES raised past the reader's 1 MiB default: the analysis uses it too."""
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "2000000")
    handlers.reset_runtime()
    rt = handlers.runtime()
    ca = samples.tenant_ca(TENANT)
    put(rt, "padded.pem", ca.pem + b"\n" * 1_100_000)
    deliver(rt, "padded.pem")
    upload = uploads_by_name(rt)["padded.pem"]
    assert (upload["status"], upload["certificates"]) == ("analyzed", [sha256_hex(ca.der)])


@pytest.mark.parametrize(
    ("zone", "at", "since", "until"),
    [
        # UTC+14: 20:00 UTC on Jul 31 is Aug 1 there; the row and the read stay on Jul 31.
        ("Pacific/Kiritimati", "2020-07-31T20:00", "2020-07-31T19:00", "2020-07-31T21:00"),
        # UTC-12: 01:00 UTC on Aug 1 is still Jul 31 there; the read must reach Aug 1.
        ("Etc/GMT+12", "2020-08-01T01:00", "2020-07-31T23:00", "2020-08-01T02:00"),
    ],
)
def test_failures_are_filed_and_read_by_utc_day_in_any_host_zone(
    app_runtime, monkeypatch, zone: str, at: str, since: str, until: str
) -> None:
    """The self-health check reads the failures of the last UTC days; a host (or a local
    run) in another zone files and finds them on the same days."""
    import time

    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    rt = app_runtime
    put(rt, "notes.txt", b"text\n")
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        deliver(rt, "notes.txt", utc(at))
        failed = rt.store.uploads.failed_uploads(utc(since), utc(until))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert [(f["name"], f["PartitionKey"]) for f in failed] == [("notes.txt", at[:10])]


def test_a_row_recorded_again_over_a_stale_read_holds_only_the_new_analysis(
    app_runtime,
) -> None:
    """Two deliveries that both read the name's rows before either wrote: the upload row
    is replaced whole, so an error of the first does not stay beside the second's result."""
    rt = app_runtime
    etag = put(rt, "ca.pem", b"text\n")
    refused = deliver(rt, "ca.pem")
    assert refused is not None and refused.error is not None
    analysed = analyze_bytes("ca.pem", samples.tenant_ca(TENANT).pem, rt.rules, NOW)
    assert rt.store.uploads.record_upload("ca.pem", etag, analysed, NOW, previous=[]) is True
    (upload,) = rt.store.report()["uploads"]
    assert (upload["status"], upload["error"]) == ("analyzed", None)


def test_the_stored_document_is_compact_json_cut_only_past_the_limit(monkeypatch) -> None:
    """``DOCUMENT_LIMIT`` counts compact JSON (no spaces after separators): a document of
    exactly the limit is kept as it is; one character over, every long field is cut to 128."""
    from shared.alerts.rules import load_rules
    from shared.storage import certificates as certificate_rows
    from tests.test_table_limits import long_ou_tenant_ca

    ca = long_ou_tenant_ca(TENANT, 500)
    (cert,) = analyze_bytes("long.pem", ca.pem, load_rules(), NOW).certificates

    def compact(document: str) -> str:
        return json.dumps(json.loads(document), separators=(",", ":"))

    whole = certificate_rows.stored_document(cert)
    assert whole == compact(whole) and "u" * 500 in json.loads(whole)["subject"]
    monkeypatch.setattr(certificate_rows, "DOCUMENT_LIMIT", len(whole))
    assert certificate_rows.stored_document(cert) == whole
    monkeypatch.setattr(certificate_rows, "DOCUMENT_LIMIT", len(whole) - 1)
    shorter = certificate_rows.stored_document(cert)
    assert shorter == compact(shorter) and len(shorter) < len(whole)
    kept, marker = json.loads(shorter)["subject"].split("…")
    assert "u" * 500 not in kept and marker.startswith("[truncated: ")


def test_a_row_made_again_by_another_upload_meanwhile_is_left_to_it(
    app_runtime, monkeypatch
) -> None:
    """A further source's MERGE finds no row (a removal deleted it) and its create finds
    one (a third upload made it again): the upload is recorded, the row kept as made."""
    from azure.core.exceptions import ResourceNotFoundError

    rt = app_runtime
    ca = samples.tenant_ca(TENANT)
    put(rt, "first.pem", ca.pem)
    deliver(rt, "first.pem")
    client = rt.store.table("certificates")

    def deleted_and_made_again(entity: dict[str, Any], **_: Any) -> None:
        raise ResourceNotFoundError("The specified resource does not exist.")

    monkeypatch.setattr(client, "update_entity", deleted_and_made_again)
    put(rt, "second.pem", ca.pem)
    assert deliver(rt, "second.pem", NOW + timedelta(hours=1)) is not None
    assert uploads_by_name(rt)["second.pem"]["status"] == "analyzed"
    (cert,) = rt.store.report()["certificates"]
    assert sorted(cert["sources"]) == ["first.pem", "second.pem"]


def test_a_certificate_row_without_a_sources_list_still_loses_its_last_source(
    app_runtime,
) -> None:
    """A row with no ``sources`` property (an earlier version's, or edited by hand): its
    last upload's removal still deletes it (a tenant CA's would stay: see above)."""
    rt = app_runtime
    ca = samples.azure_sphere_pca()  # not a tenant CA: those are never forgotten
    put(rt, "ca.pem", ca.pem)
    deliver(rt, "ca.pem")
    sha = sha256_hex(ca.der)
    table = rt.store.table("certificates")
    row = dict(table.get_entity(sha[:2], sha))
    del row["sources"]
    table.upsert_entity(row, mode="replace")
    assert rt.store.certificates.remove_source(sha, "ca.pem") is None  # no tenant CA
    assert rt.store.report()["certificates"] == []


def test_a_removal_that_loses_every_race_names_its_certificate(app_runtime, monkeypatch) -> None:
    """Every ETag write refused (412) up to the retry limit: the error names the
    certificate, so the host's retry log says which one."""
    from azure.core.exceptions import ResourceModifiedError

    rt = app_runtime
    ca = samples.azure_sphere_pca()  # not a tenant CA: those are never forgotten
    put(rt, "ca.pem", ca.pem)
    deliver(rt, "ca.pem")
    sha = sha256_hex(ca.der)

    def lost(*_: Any, **__: Any) -> None:
        exc = ResourceModifiedError(
            "The condition specified using HTTP conditional header(s) is not met."
        )
        exc.status_code = 412
        raise exc

    monkeypatch.setattr(rt.store.table("certificates"), "delete_entity", lost)
    with pytest.raises(RuntimeError, match=rf"^certificate {sha}: too many concurrent updates$"):
        rt.store.certificates.remove_source(sha, "ca.pem")


def test_a_table_name_the_app_does_not_use_is_refused_at_once(azurite) -> None:
    """Every table the app writes is named in ``tables.TABLES`` (docs/deploy.md lists them);
    another name, a typo or another case, is a bug to see at once, not a table that Azure
    would quietly treat as the same (names are case-insensitive) or not find."""
    from azure.data.tables import TableServiceClient

    from shared.storage.tables import TABLES, Tables

    tables = Tables(TableServiceClient.from_connection_string(azurite.connection_string))
    assert [tables(name).table_name for name in TABLES] == list(TABLES)
    for name in ("UPLOADS", "upload", "XXuploadsXX", ""):
        with pytest.raises(ValueError, match=rf"^no table {name!r} in this app; its tables: "):
            tables(name)
    with pytest.raises(ValueError, match=r"^no table 'Uploads' in this app"):
        tables.delete_quietly("Uploads", "pk", "rk")
