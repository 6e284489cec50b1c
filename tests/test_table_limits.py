"""Table property limits (an entity property holds at most 64 KB, an entity 1 MB) against a
real Azurite, which enforces both: whatever grows with the number of certificates, uploads
or the length of a certificate's text is stored so no single property can pass the limit,
and the report still returns all of it."""

from __future__ import annotations

import hashlib
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta

from azure.core.pipeline.transport import RequestsTransport
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from shared.app import handlers
from shared.local import samples
from shared.local.runner import blob_trigger_argument, process_pending, registered_function
from shared.storage import certificates as certificate_rows

NOW = datetime(2020, 7, 30, 9, 0, tzinfo=UTC)


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def long_ou_tenant_ca(tenant_id: str, ou_length: int) -> samples.Issued:
    """A tenant CA whose subject carries an OU of ``ou_length`` characters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # far over X.520's upper bound, on purpose
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Microsoft Corporation"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * ou_length, _validate=False),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Microsoft Azure Sphere {tenant_id}"),
        ])  # fmt: skip
    pca = samples.azure_sphere_pca()
    key = samples._key(2)
    start = datetime(2020, 7, 1, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(pca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(pca.key, hashes.SHA256())
    )
    return samples.Issued(certificate, key)


def test_upload_of_600_certificates_is_fully_recorded_and_superseded(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    tenant = samples.tenant_ca("600c0000-1111-4222-8333-944445555666")
    devices = [samples.device_certificate(tenant, f"{i:0128x}") for i in range(600)]
    upload(app_runtime, {"fleet/bundle.pem": b"".join(d.pem for d in devices)})
    assert process_pending(app_runtime) == (1, 0)

    report = app_runtime.store.report()
    (row,) = report["uploads"]
    assert (row["status"], row["error"]) == ("analyzed", None)
    expected = {sha256_hex(d.der) for d in devices}
    assert len(row["certificates"]) == 600 and set(row["certificates"]) == expected
    listed = {c["sha256_fingerprint"]: c for c in report["certificates"]}
    assert set(listed) == expected
    assert all(c["sources"] == ["fleet/bundle.pem"] for c in listed.values())

    # New content under the same name removes every certificate the old one brought.
    upload(app_runtime, {"fleet/bundle.pem": tenant.pem})
    assert process_pending(app_runtime) == (1, 0)
    report = app_runtime.store.report()
    (row,) = report["uploads"]
    assert row["certificates"] == [sha256_hex(tenant.der)]
    assert [c["sha256_fingerprint"] for c in report["certificates"]] == [sha256_hex(tenant.der)]


def test_one_certificate_under_300_long_names_lists_every_source(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    cert = samples.tenant_ca("300a0000-1111-4222-8333-944445555666")
    # 1,000-character names: the result blob name (<name>.json) still fits Azure's 1,024.
    names = [f"site-{i:03d}/" + "p" * 987 + ".pem" for i in range(300)]
    assert all(len(name) == 1000 for name in names)
    upload(app_runtime, dict.fromkeys(names, cert.pem))
    assert process_pending(app_runtime, workers=8) == (300, 0)

    report = app_runtime.store.report()
    assert len(report["uploads"]) == 300
    assert all(u["status"] == "analyzed" for u in report["uploads"])
    (row,) = report["certificates"]
    assert row["sources"] == sorted(names)

    # Replacing one upload's content drops exactly that source, nothing else.
    other = samples.tenant_ca("300b0000-1111-4222-8333-944445555666", key_seed=41)
    upload(app_runtime, {names[0]: other.pem})
    assert process_pending(app_runtime) == (1, 0)
    listed = {c["sha256_fingerprint"]: c for c in app_runtime.store.report()["certificates"]}
    assert listed[sha256_hex(cert.der)]["sources"] == sorted(names[1:])
    assert listed[sha256_hex(other.der)]["sources"] == [names[0]]


def test_a_60000_character_ou_is_recorded_with_its_text_cut_and_marked(app_runtime) -> None:
    handlers.use_clock(lambda: NOW)
    tenant_id = "60000000-1111-4222-8333-944445555666"
    cert = long_ou_tenant_ca(tenant_id, 60_000)
    upload(app_runtime, {"long-ou.pem": cert.pem})
    assert process_pending(app_runtime) == (1, 0)

    report = app_runtime.store.report()
    (row,) = report["uploads"]
    assert (row["status"], row["error"]) == ("analyzed", None)
    (listed,) = report["certificates"]
    assert listed["sha256_fingerprint"] == sha256_hex(cert.der)
    assert listed["azure_sphere"] == {"role": "tenant-ca", "tenant_id": tenant_id}
    assert listed["verdict"] == "affected"
    assert "[truncated" in listed["subject"] and len(listed["subject"]) < 5_000
    assert listed["sources"] == ["long-ou.pem"]
    # The tenant CA is tracked for alerts too (its index row holds the cut subject).
    index_rows = list(app_runtime.store.iter_rows("alertindex"))
    assert any(r.get("sha256") == sha256_hex(cert.der) for r in index_rows)
    # The result blob keeps the whole text: blobs have no property limit.
    result = app_runtime.blobs.get_blob_client(
        app_runtime.settings.results_container, "long-ou.pem.json"
    )
    document = json.loads(result.download_blob().readall())
    assert "u" * 60_000 in document["results"][0]["certificates"][0]["subject"]


def test_a_write_that_still_fails_on_size_is_recorded_as_rejected(app_runtime, monkeypatch) -> None:
    """Should a property outgrow the table anyway (a limit set wrong, a field not foreseen),
    the upload is recorded as rejected with its own code and a failure row, so the
    self-health check reports it: it never stays unrecorded."""
    handlers.use_clock(lambda: NOW)
    monkeypatch.setattr(certificate_rows, "TEXT_LIMIT", 10_000_000)  # the cut is off
    cert = long_ou_tenant_ca(str(uuid.uuid4()), 60_000)
    upload(app_runtime, {"too-long.pem": cert.pem})
    assert process_pending(app_runtime) == (1, 0)
    (row,) = app_runtime.store.report()["uploads"]
    assert (row["status"], row["error"]["code"]) == ("rejected", "too-large-to-record")
    assert row["name"] == "too-long.pem"
    failures = app_runtime.store.uploads.failed_uploads(NOW - timedelta(hours=1), NOW)
    assert [(f["name"], f["error_code"]) for f in failures] == [
        ("too-long.pem", "too-large-to-record")
    ]


def test_an_ordinary_certificate_costs_no_request_for_its_sources(app_runtime, monkeypatch) -> None:
    """The first source stays on the certificate row: one new certificate in one upload is
    the uploads read, the download (one ranged GET), the listing of the name's versions (a
    key hidden in an unrecorded version is swept, issue 23), the result blob, the
    certificate row and the upload row, and nothing else."""
    handlers.use_clock(lambda: NOW)
    tenant = samples.tenant_ca("0dd00000-1111-4222-8333-944445555666")
    upload(app_runtime, {"one.pem": samples.device_certificate(tenant).pem})
    analyze = registered_function("analyze_upload")
    blob = blob_trigger_argument(app_runtime.settings.cert_container, "one.pem")
    sent: list[str] = []
    original = RequestsTransport.send

    def counting(transport, request, **kwargs):
        sent.append(f"{request.method} {request.url.split('?')[0].rsplit('/', 1)[-1][:30]}")
        return original(transport, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counting)
    analyze(blob)
    assert len(sent) == 6, sent


def test_a_source_added_while_another_is_removed_is_kept(app_runtime, monkeypatch) -> None:
    """The race the ETag guards: a removal reads the certificate row and finds no further
    source, then another upload adds one before the removal deletes the row. The addition
    changes the row's ETag, so the removal retries, sees the new source and keeps the row."""
    handlers.use_clock(lambda: NOW)
    cert = samples.azure_sphere_pca(seed=5)  # a tenant CA's row would stay anyway
    upload(app_runtime, {"first.pem": cert.pem})
    assert process_pending(app_runtime) == (1, 0)
    analysed = app_runtime.store.report()["certificates"][0]
    assert analysed["sources"] == ["first.pem"]

    from shared.analysis.scan import analyze_bytes

    store = app_runtime.store.certificates
    (incoming,) = analyze_bytes("second.pem", cert.pem, app_runtime.rules, NOW).certificates
    original = type(store)._has_further_sources
    raced = {"done": False}

    def add_in_between(self, sha: str) -> bool:
        answer = original(self, sha)
        if not raced["done"]:  # the other upload lands after the look, before the write
            raced["done"] = True
            self.add_source(incoming, "second.pem", NOW)
        return answer

    monkeypatch.setattr(type(store), "_has_further_sources", add_in_between)
    store.remove_source(incoming.sha256, "first.pem")
    (row,) = app_runtime.store.report()["certificates"]
    assert row["sources"] == ["second.pem"]
