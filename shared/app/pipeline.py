"""The blob function's work (adapter): one uploaded blob -> its result blob and table rows.

One ranged GET of at most ``MAX_UPLOAD_BYTES + 1`` bytes brings the content, the blob's
total size (``Content-Range``) and its ETag from the same response, so content and ETag
always belong together and nothing beyond the limit is ever read. A bad file is recorded
(status and error code), never raised: no poison-queue loop. Storage errors do raise, so
the host retries the event.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.alerts.rules import Rules
from shared.analysis.reader import too_large
from shared.analysis.scan import FileResult, analyze_bytes, analyze_read_result, scan_document
from shared.app import telemetry
from shared.settings import Settings
from shared.storage.keys import normalize_etag
from shared.storage.pool import run_all, submit
from shared.storage.store import TableStore

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobServiceClient

log = logging.getLogger("ca_watch.pipeline")


def result_blob_name(name: str) -> str:
    return f"{name}.json"


def read_blob(blob: BlobClient, limit: int) -> tuple[str, int, bytes] | None:
    """(ETag, total size, the first ``limit + 1`` bytes) in one ranged GET; None when the
    blob is gone. An empty blob answers 416 (no range of it exists): it is read as empty,
    and its ETag comes from a properties read, the one case that costs a second request."""
    try:
        download = blob.download_blob(offset=0, length=limit + 1)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code != 416:
            raise
        try:
            return normalize_etag(blob.get_blob_properties().etag), 0, b""
        except ResourceNotFoundError:
            return None
    data = download.readall()
    # "bytes 0-N/TOTAL": the SDK's properties.size is the length of the range, not the blob.
    total = int(str(download.properties.content_range).rsplit("/", 1)[1])
    return normalize_etag(download.properties.etag), total, data


def process_blob(
    blob: BlobClient,
    *,
    store: TableStore,
    results: BlobServiceClient,
    settings: Settings,
    rules: Rules,
    now: datetime,
) -> FileResult | None:
    """Analyse and record one blob. None when it was already recorded or is gone."""
    name = blob.blob_name
    # The content and the name's upload rows are independent round trips: side by side.
    previous_rows = submit(store.uploads.upload_rows, name)
    with telemetry.span("ca_watch.read", blob=name):
        fetched = read_blob(blob, settings.max_upload_bytes)
    if fetched is None:
        log.info("blob %s is gone before it was analysed; nothing to record", name)
        return None
    etag, size, data = fetched
    read = too_large(size, settings.max_upload_bytes) if size > settings.max_upload_bytes else None
    previous = previous_rows.result()
    if any(row["etag"] == etag for row in previous):
        log.info("blob %s (ETag %s) is already recorded; duplicate delivery ignored", name, etag)
        return None
    with telemetry.span("ca_watch.analyse", blob=name):
        if read is not None:
            result = analyze_read_result(name, read, rules, now)
        else:
            result = analyze_bytes(name, data, rules, now, settings.max_upload_bytes)
    with telemetry.span("ca_watch.store", blob=name, certificates=len(result.certificates)):
        document = scan_document([result])
        document["etag"] = etag
        result_written = submit(
            results.get_blob_client(settings.results_container, result_blob_name(name)).upload_blob,
            json.dumps(document, indent=2).encode("utf-8"),
            overwrite=True,
            content_settings=_json_content(),
        )
        if result.listing is not None and result.listing.listings:
            record_listings(store, name, result, now)
        recorded = store.uploads.record_upload(
            name, etag, result, now, previous=previous, before_commit=result_written
        )
    if recorded:
        telemetry.uploads_counter.add(1, {"status": str(result.status)})
        for cert in result.certificates:
            telemetry.certificates_counter.add(1, {"verdict": str(cert.classification.verdict)})
    log.info(
        "blob %s: %s, %d certificate(s)%s",
        name,
        result.status,
        len(result.certificates),
        f", error {result.error.code}" if result.error else "",
    )
    return result


def record_listings(store: TableStore, name: str, result: FileResult, now: datetime) -> None:
    """A registration listing replaces its targets' snapshots; the tenants whose CAs it
    names are refreshed (re-opened or resolved), as a certificate upload does. Before the
    upload row: a crash in between redoes it, and recording a snapshot twice is harmless."""
    assert result.listing is not None
    tenants: set[str] = set()
    for listing in result.listing.listings:
        tenants |= store.registrations.record_listing(listing, name, now)
    run_all(lambda t=tenant: store.tenants.refresh_tenant(t) for tenant in sorted(tenants))


def _json_content() -> object:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/json")
