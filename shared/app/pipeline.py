"""The blob function's work (adapter): one uploaded blob -> its result blob and table rows.

One ranged GET of at most ``MAX_UPLOAD_BYTES + 1`` bytes brings the content, the blob's
total size (``Content-Range``) and its ETag from the same response, so content and ETag
always belong together and nothing beyond the limit is ever read. A bad file is recorded
(status and error code), never raised: no poison-queue loop. Storage errors do raise, so
the host retries the event.

A name the storage service or the local runner cannot use (control characters, over
1,024 characters) is refused as ``bad-blob-name`` (its content read only for the key
check); the result blob's name is derived so it always fits. A blob holding private key
material is deleted, with its snapshots and every version, once its refusal is recorded:
only the record stays. Every event also inspects the name's earlier versions that no row
records (content replaced before the function ran) and deletes those holding a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

from shared.alerts.rules import Rules
from shared.analysis.json_text import json_bytes
from shared.analysis.keys import key_material
from shared.analysis.reader import (
    ErrorCode,
    ReadError,
    ReadResult,
    read_certificates,
    too_large,
)
from shared.analysis.scan import FileResult, analyze_bytes, analyze_read_result, scan_document
from shared.app import telemetry
from shared.settings import Settings
from shared.storage.keys import normalize_etag
from shared.storage.pool import run_all, submit
from shared.storage.registrations import RECORDED
from shared.storage.store import TableStore

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobProperties, BlobServiceClient

log = logging.getLogger("ca_watch.pipeline")


MAX_BLOB_NAME = 1_024  # characters Azure allows in a blob name
_RESULT_SUFFIX = ".json"
HASHED_RESULTS = "hashed-names/"  # results of names that cannot carry the suffix
_KEY_IN_LARGE = (
    "the file is over MAX_UPLOAD_BYTES and its start holds a private key; it was not "
    "stored. Upload the certificates only"
)


def blob_name_problem(name: str) -> str | None:
    """Why the storage service or the runner cannot use ``name``, or None. Azurite answers
    500 to every listing of a container holding a name with a character XML 1.0 cannot
    carry (control characters, U+FFFE/U+FFFF, lone surrogates); Azure caps names at 1,024."""
    if len(name) > MAX_BLOB_NAME:
        return f"the name is {len(name):,} characters, over the {MAX_BLOB_NAME:,} allowed"
    for ch in name:
        point = ord(ch)
        if point < 0x20 or point == 0x7F or 0xD800 <= point <= 0xDFFF or point in (0xFFFE, 0xFFFF):
            return f"the name holds the character U+{point:04X}, which storage listings refuse"
    return None


def holds_private_key(data: bytes, *, whole: bool = True) -> bool:
    """Whether ``data`` holds private key material: the key check, and for a whole file
    the reader too (it refuses a PKCS#12 it cannot read to its end). ``whole`` is False
    for the start of a file over the size limit."""
    if key_material(data, whole=whole) is not None:
        return True
    if not whole:
        return False
    read = read_certificates(data, max_bytes=max(len(data), 1))
    return read.error is not None and read.error.code is ErrorCode.PRIVATE_KEY_MATERIAL


def result_blob_name(name: str) -> str:
    """``<name>.json`` next to the upload; a name that is too long for the suffix, or that
    storage cannot use, gets a hash of itself instead (the document names the upload).
    A name under the hashed prefix is hashed too, so no upload can be named after another
    upload's hashed result and overwrite it."""
    if (
        len(name) + len(_RESULT_SUFFIX) <= MAX_BLOB_NAME
        and not name.startswith(HASHED_RESULTS)
        and blob_name_problem(name) is None
    ):
        return f"{name}{_RESULT_SUFFIX}"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{HASHED_RESULTS}{digest}{_RESULT_SUFFIX}"


@dataclass(frozen=True)
class FetchedBlob:
    etag: str
    size: int  # the whole blob's
    data: bytes  # at most the first limit + 1 bytes
    # As the storage service stamped it: when an uploaded listing's evidence was made.
    last_modified: datetime


def read_blob(blob: BlobClient, limit: int) -> FetchedBlob | None:
    """ETag, total size and the first ``limit + 1`` bytes in one ranged GET; None when the
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
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        return FetchedBlob(normalize_etag(props.etag), 0, b"", props.last_modified)
    data = download.readall()
    # "bytes 0-N/TOTAL": the SDK's properties.size is the length of the range, not the blob.
    total = int(str(download.properties.content_range).rsplit("/", 1)[1])
    props = download.properties
    return FetchedBlob(normalize_etag(props.etag), total, data, props.last_modified)


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
    # The content, the name's upload rows and its versions are independent round trips.
    previous_rows = submit(store.uploads.upload_rows, name)
    versions = submit(list_earlier_versions, blob, results)
    name_problem = blob_name_problem(name)
    read: ReadResult | None = None
    with telemetry.span("ca_watch.read", blob=name):
        # Read whatever the name or size: the key check runs before any early return.
        fetched = read_blob(blob, settings.max_upload_bytes)
    previous = previous_rows.result()
    sweep_unrecorded_versions(blob, versions.result(), previous, results, settings)
    if fetched is None:
        log.info("blob %s is gone before it was analysed; nothing to record", name)
        return None
    etag, size, data = fetched.etag, fetched.size, fetched.data
    whole = size <= settings.max_upload_bytes
    if name_problem is not None or not whole:  # refused unread, but for the key check
        read = (
            ReadResult(error=ReadError(ErrorCode.BAD_BLOB_NAME, name_problem))
            if name_problem is not None
            else too_large(size, settings.max_upload_bytes)
        )
        if (key := key_material(data, whole=whole)) is not None:
            message = key.message if whole else _KEY_IN_LARGE
            read = ReadResult(error=ReadError(ErrorCode.PRIVATE_KEY_MATERIAL, message))
    if any(row["etag"] == etag for row in previous):
        recorded_key = any(_holds_key(row) for row in previous if row["etag"] == etag)
        # A row an older release wrote may not call a key a key: the check runs again.
        if recorded_key or holds_private_key(data, whole=whole):
            delete_every_copy(blob, etag, results)  # a deletion cut short: finish it
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
            json_bytes(document, may_hold_floats=False),
            overwrite=True,
            content_settings=_json_content(),
        )
        outcomes: list[dict[str, str]] = []
        if result.listing is not None and result.listing.listings:
            outcomes = record_listings(store, name, result, fetched.last_modified, settings, now)
        recorded = store.uploads.record_upload(
            name,
            etag,
            result,
            now,
            previous=previous,
            before_commit=result_written,
            extra={"listing_outcomes": json.dumps(outcomes)} if outcomes else None,
        )
        if result.listing is not None and result.listing.sphere_entries:
            mark_revoked(store, result)
    if result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL:
        delete_every_copy(blob, etag, results)  # after the record: the refusal is kept
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


def record_listings(
    store: TableStore,
    name: str,
    result: FileResult,
    last_modified: datetime,
    settings: Settings,
    now: datetime,
) -> list[dict[str, str]]:
    """A registration listing replaces its targets' snapshots, unless the app reads that
    target live (``live-target``) or a newer snapshot is on record (``stale-listing``);
    the tenants whose CAs it names are refreshed (re-opened or resolved), as a certificate
    upload does. Before the upload row: a crash in between redoes it, and recording a
    snapshot twice is harmless. Returns each target's outcome."""
    assert result.listing is not None
    live = settings.live_targets
    tenants: set[str] = set()
    outcomes = []
    for listing in result.listing.listings:
        outcome, touched = store.registrations.record_uploaded_listing(
            listing, name, last_modified, live
        )
        tenants |= touched
        outcomes.append({"target": listing.target, "outcome": outcome})
        if outcome != RECORDED:
            log.warning("blob %s: listing of %s is a %s", name, listing.target, outcome)
            store.uploads.record_ignored_listing(name, listing.target, outcome, now)
    run_all(lambda t=tenant: store.tenants.refresh_tenant(t) for tenant in sorted(tenants))
    return outcomes


def mark_revoked(store: TableStore, result: FileResult) -> None:
    """A tenant CA list marks some CAs revoked (or expired): such a CA never counts as a
    renewal (DESIGN §4). Recorded on the tenant CA's row, then its tenant is refreshed."""
    assert result.listing is not None
    revoked = {entry.thumbprint for entry in result.listing.sphere_entries if entry.never_a_renewal}
    tenants = set()
    for cert in result.certificates:
        tenant = cert.classification.tenant_id
        if cert.facts.sha1_thumbprint in revoked and tenant:
            store.tenants.add(tenant, cert.sha256, {"revoked": True})
            tenants.add(tenant)
    run_all(lambda t=tenant: store.tenants.refresh_tenant(t) for tenant in sorted(tenants))


def _holds_key(row: dict[str, object]) -> bool:
    return row.get("error_code") == str(ErrorCode.PRIVATE_KEY_MATERIAL)


def list_earlier_versions(blob: BlobClient, service: BlobServiceClient) -> list[BlobProperties]:
    """The name's versions other than its current one: none where versioning is off. A
    listing the service refuses (Azurite answers 500 to listings of a container holding a
    name XML cannot carry) is logged and skipped, unretried: the next event looks again."""
    container = service.get_container_client(blob.container_name)
    listed = container.list_blobs(
        name_starts_with=blob.blob_name, include=["versions"], retry_total=0
    )
    try:
        return [
            item
            for item in listed
            if item.name == blob.blob_name and item.version_id and not item.is_current_version
        ]
    except HttpResponseError as exc:
        log.warning("blob %s: its versions could not be listed (%s)", blob.blob_name, exc.reason)
        return []


def sweep_unrecorded_versions(
    blob: BlobClient,
    versions: list[BlobProperties],
    previous: list[dict[str, object]],
    service: BlobServiceClient,
    settings: Settings,
) -> None:
    """Inspect each earlier version whose ETag no upload row records (content replaced
    before the function ran, so no event ever brought it) and delete those holding key
    material. Versions already recorded were judged when they were current."""
    recorded = {row["etag"] for row in previous}
    container = service.get_container_client(blob.container_name)
    for item in versions:
        if normalize_etag(item.etag) in recorded:
            continue
        version = container.get_blob_client(item.name, version_id=item.version_id)
        fetched = read_blob(version, settings.max_upload_bytes)
        if fetched is None:
            continue
        whole = fetched.size <= settings.max_upload_bytes
        if holds_private_key(fetched.data, whole=whole):
            with contextlib.suppress(ResourceNotFoundError):
                version.delete_blob()
            log.warning(
                "blob %s: an earlier version, never processed, held private key material: deleted",
                blob.blob_name,
            )


def delete_every_copy(blob: BlobClient, etag: str, service: BlobServiceClient) -> None:
    """Delete a blob that holds private key material, its snapshots and every earlier
    version, so no copy stays downloadable. (Soft delete, where the account enables it,
    keeps deleted data for its retention period: docs/deploy.md says how to purge it.)"""
    try:
        blob.delete_blob(
            delete_snapshots="include", etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except ResourceNotFoundError:
        pass  # already gone
    except ResourceModifiedError:
        # Newer content under the name: it brings its own event and is judged on its own.
        log.info("blob %s was replaced before its key material was deleted", blob.blob_name)
    container = service.get_container_client(blob.container_name)
    for item in container.list_blobs(name_starts_with=blob.blob_name, include=["versions"]):
        if item.name == blob.blob_name and item.version_id and not item.is_current_version:
            with contextlib.suppress(ResourceNotFoundError):
                container.get_blob_client(item.name, version_id=item.version_id).delete_blob()
    log.warning("blob %s held private key material: deleted with every version", blob.blob_name)


def _json_content() -> object:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/json")
