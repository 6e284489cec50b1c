"""The blob function's work (adapter): one uploaded blob -> its result blob and table rows.

The size is checked from the blob's properties before any download, so an over-size blob
is refused without being read. A bad file is recorded (status and error code), never
raised: no poison-queue loop. Storage errors do raise, so the host retries the event.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.alerts.rules import Rules
from shared.analysis.reader import too_large
from shared.analysis.scan import FileResult, analyze_bytes, analyze_read_result, scan_document
from shared.app import telemetry
from shared.settings import Settings
from shared.storage.keys import normalize_etag
from shared.storage.pool import submit
from shared.storage.store import TableStore

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobServiceClient

log = logging.getLogger("ca_watch.pipeline")


def result_blob_name(name: str) -> str:
    return f"{name}.json"


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
    # The blob's properties and the name's upload rows are independent round trips.
    previous_rows = submit(store.uploads.upload_rows, name)
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        log.info("blob %s is gone before it was analysed; nothing to record", name)
        return None
    etag = normalize_etag(props.etag)
    # The download does not wait for the upload rows: a duplicate delivery (rare) costs
    # one wasted read, a new upload (the norm) one round trip less.
    with telemetry.span("ca_watch.read", blob=name, size=props.size):
        if props.size > settings.max_upload_bytes:
            read = too_large(props.size, settings.max_upload_bytes)
            data = None
        else:
            try:
                data = blob.download_blob(
                    etag=etag, match_condition=MatchConditions.IfNotModified
                ).readall()
            except (ResourceModifiedError, ResourceNotFoundError):
                # Replaced or deleted meanwhile: the newer content brings its own event.
                log.info("blob %s changed while being read; its next event will be processed", name)
                return None
    previous = previous_rows.result()
    if any(row["etag"] == etag for row in previous):
        log.info("blob %s (ETag %s) is already recorded; duplicate delivery ignored", name, etag)
        return None
    with telemetry.span("ca_watch.analyse", blob=name):
        if data is None:
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


def _json_content() -> object:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/json")
