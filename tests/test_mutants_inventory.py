"""Kill tests for what issue 21 added to the inventory's storage (shared/storage/uploads.py,
certificates.py, tenants.py) on a real Azurite, small and fast: an ignored listing filed by
UTC day and named to the operators, a retired upload audited and still whole, a tenant CA's
body and issuer kept for the renewal check (and a body too large for a property simply not
kept), an issuer arriving after the renewal authenticating it, a tenant CA that outlives its
blob, and a retired or revoked CA as the tenant's rows and notices show it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from shared.app import handlers
from shared.local import samples
from shared.local.runner import process_pending
from shared.storage.certificates import DER_LIMIT, stored_der
from shared.storage.uploads import IGNORED_LISTING_KIND

NOW = datetime(2020, 8, 10, 23, 30, tzinfo=UTC)
TENANT = "a11c1ea2-1111-4222-8333-944445555666"
HUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/hub-a"
OTHER_HUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/hub-b"
PCA = samples.azure_sphere_pca()
OLD = samples.tenant_ca(TENANT, datetime(2020, 7, 1, tzinfo=UTC), issuer=PCA, key_seed=4000)
NEW = samples.tenant_ca(TENANT, datetime(2020, 8, 1, tzinfo=UTC), issuer=PCA, key_seed=4001)


def sha(issued: samples.Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)
    process_pending(rt)


def tenant_row(rt: handlers.Runtime, issued: samples.Issued) -> dict[str, Any]:
    return rt.store.tenants.by_tenant()[TENANT][sha(issued)]


# --- uploads.py -------------------------------------------------------------------------


def test_an_ignored_listing_is_filed_by_its_utc_day_once_per_target(
    app_runtime, monkeypatch
) -> None:
    uploads = app_runtime.store.uploads
    # 23:30 UTC is the next day in UTC+2, and in the host's zone (UTC+14): the row is
    # filed under the UTC day, where the self-health check reads it.
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    try:
        uploads.record_ignored_listing("hubs.json", HUB, "stale-listing", local)
        uploads.record_ignored_listing("hubs.json", HUB, "live-target", local)  # the later
        uploads.record_ignored_listing("hubs.json", OTHER_HUB, "live-target", local)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    day = app_runtime.store.table("uploadfailures").query_entities(
        "PartitionKey eq @d", parameters={"d": "2020-08-10"}
    )
    rows = sorted((dict(r) for r in day), key=lambda r: r["target"])
    assert [
        {k: r[k] for k in ("name", "target", "kind", "status", "error_code", "processed_at")}
        for r in rows
    ] == [
        {
            "name": "hubs.json",
            "target": target,
            "kind": IGNORED_LISTING_KIND,
            "status": "ignored",
            "error_code": "live-target",
            "processed_at": "2020-08-10T23:30:00Z",
        }
        for target in (HUB, OTHER_HUB)
    ]
    assert IGNORED_LISTING_KIND == "ignored-listing"
    window = uploads.failed_uploads(NOW - timedelta(hours=24), NOW)
    assert len(window) == 2


def test_a_retired_upload_is_audited_on_its_rows_and_keeps_its_analysis(app_runtime) -> None:
    upload(app_runtime, {"junk.cer": NEW.der})
    uploads = app_runtime.store.uploads
    (before,) = uploads.upload_rows("junk.cer")
    assert uploads.retire("junk.cer", "ops", "a test upload", NOW) == 1
    assert uploads.retire("never-uploaded.cer", "ops", None, NOW) == 0
    (after,) = uploads.upload_rows("junk.cer")
    audit = {
        "retired_by": "ops",
        "retired_at": "2020-08-10T23:30:00Z",
        "retired_note": "a test upload",
    }
    assert dict(after) == {**before, **audit}  # merged into the row, not replacing it


# --- certificates.py --------------------------------------------------------------------


def test_a_tenant_ca_keeps_its_body_and_issuer_for_the_renewal_check(app_runtime) -> None:
    upload(app_runtime, {"t/old.cer": OLD.der})
    row = tenant_row(app_runtime, OLD)
    assert base64.b64decode(row["der"]) == OLD.der
    issuer = "C=US,ST=Washington,L=Redmond,O=Microsoft Corporation,CN=Microsoft Azure Sphere PCA01"
    assert row["issuer"] == issuer


def test_a_body_too_large_for_a_property_is_not_kept() -> None:
    fits = bytes(DER_LIMIT // 4 * 3)  # exactly DER_LIMIT characters of base64
    assert len(stored_der(fits)) == DER_LIMIT == 30_000
    assert base64.b64decode(stored_der(fits)) == fits
    assert stored_der(fits + b"x") == ""


def test_an_issuer_uploaded_after_the_renewal_authenticates_it(app_runtime) -> None:
    upload(app_runtime, {"t/old.cer": OLD.der, "t/new.cer": NEW.der})
    state = app_runtime.store.tenants.state(TENANT)
    assert state.is_open(sha(OLD))
    assert tenant_row(app_runtime, OLD)["renewal_check"] == "unauthenticated"
    upload(app_runtime, {"chain/pca.cer": PCA.der})  # `azsphere ca download-chain`
    assert not app_runtime.store.tenants.state(TENANT).is_open(sha(OLD))
    assert app_runtime.store.issuers.issuers() == [PCA.der]
    (notice,) = app_runtime.store.notices.pending()
    assert (notice.kind, notice.renewed, notice.basis) == (
        "resolved",
        sha(NEW),
        "authenticated-renewal",
    )


def test_a_tenant_ca_stays_on_record_when_its_blob_is_overwritten(app_runtime) -> None:
    upload(app_runtime, {"t/CAcertificate.cer": OLD.der})
    upload(app_runtime, {"t/CAcertificate.cer": PCA.der})  # another file under its name
    assert sha(OLD) in app_runtime.store.tenants.by_tenant()[TENANT]
    assert app_runtime.store.tenants.state(TENANT).is_open(sha(OLD))
