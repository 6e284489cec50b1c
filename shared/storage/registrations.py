"""Registration evidence (DESIGN §3, §4): the last listing of each target.

``regtargets``: PK = "target", RK = the target id (key-encoded): one row per hub, DPS or
manifest target holding its whole snapshot (entries as JSON), so replacing a snapshot is
one conditional write (ETag) and a newer listing always wins over an older one, whatever
order they are processed in. Targets are few (tens), so resolution reads them all in one
query. ``thumbtenants``: PK = SHA-1 thumbprint, RK = SHA-256, ``tenant_id``: which tenant
a listed thumbprint belongs to, so a listing re-times only the tenants it concerns.

Writes then reads: a listing writes its snapshot before it looks up tenants, and a tenant
CA writes its thumbprint row before its tenant is refreshed, so a listing and a
certificate processed at the same moment always meet in one of the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.alerts.registration import EnrollmentGroup, GroupSlot, TargetEntry, TargetSnapshot
from shared.analysis.listings import Listing
from shared.storage.keys import MAX_CONFLICT_RETRIES, iso, parse_iso, precondition_failed, table_key
from shared.storage.pool import submit
from shared.storage.tables import Tables

TARGET_PARTITION = "target"
TARGET_FAILURE_KIND = "registration-target"  # its rows in ``uploadfailures``
_CHUNK = 30_000  # characters per string property (the limit is 32K UTF-16 units)
_MAX_CHUNKS = 16  # 16 x 60 KB as Azure counts UTF-16: under the 1 MiB an entity holds


MAX_HISTORY = 600  # thumbprints a target remembers (40 characters each, in the chunks)
RECORDED, STALE_LISTING, LIVE_TARGET = "recorded", "stale-listing", "live-target"


def _groups_json(groups: tuple[EnrollmentGroup, ...] | None) -> list[Any] | None:
    if groups is None:
        return None
    return [
        [g.group_id, g.enabled, [[s.slot, s.thumbprint, s.name, s.verified] for s in g.slots]]
        for g in groups
    ]


def _groups_of(value: Any) -> tuple[EnrollmentGroup, ...] | None:
    if value is None:
        return None
    return tuple(
        EnrollmentGroup(group_id, bool(enabled), tuple(GroupSlot(*slot) for slot in slots))
        for group_id, enabled, slots in value
    )


def _body_json(
    entries: Iterable[TargetEntry],
    groups: tuple[EnrollmentGroup, ...] | None,
    history: Iterable[str],
) -> str:
    return json.dumps(
        {
            "entries": [[e.thumbprint, e.sha256, e.verified, e.name] for e in entries],
            "groups": _groups_json(groups),
            "history": sorted(history)[-MAX_HISTORY:],
        },
        separators=(",", ":"),
    )


def _chunks(text: str) -> dict[str, str]:
    parts = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    if len(parts) > _MAX_CHUNKS:
        raise ValueError("a registration listing is too large to record")
    return {f"entries_{n}": part for n, part in enumerate(parts)}


def _body_of(row: dict[str, Any]) -> dict[str, Any]:
    text = "".join(row.get(f"entries_{n}") or "" for n in range(_MAX_CHUNKS))
    body = json.loads(text) if text else []
    if isinstance(body, list):  # the layout before groups and history: entries alone
        return {"entries": body, "groups": None, "history": [e[0] for e in body]}
    return body


def snapshot_of(row: dict[str, Any]) -> TargetSnapshot:
    code = row.get("error_code")
    body = _body_of(row)
    return TargetSnapshot(
        target=row["target"],
        kind=row["kind"],
        display_name=row.get("display_name") or row["target"],
        seen_at=parse_iso(row["seen_at"]) if row.get("seen_at") else None,
        source=row.get("source") or "",
        entries=tuple(
            TargetEntry(thumb, sha, bool(verified), name or "")
            for thumb, sha, verified, name in body["entries"]
        ),
        error=(code, row.get("error_message") or "") if code else None,
        groups=_groups_of(body.get("groups")),
        history=frozenset(body.get("history") or ()),
        read_ok=bool(row.get("seen_at")),
    )


def _entries_of_listing(listing: Listing) -> tuple[TargetEntry, ...]:
    """One entry per certificate: listed twice (unverified, then verified), verified wins."""
    found: dict[tuple[str, str | None], TargetEntry] = {}
    for c in listing.certificates:
        key = (c.thumbprint, c.sha256)
        if key not in found or (c.verified and not found[key].verified):
            found[key] = TargetEntry(c.thumbprint, c.sha256, c.verified, c.name)
    return tuple(found.values())


class RegistrationStore:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    # --- writes ----------------------------------------------------------------------

    def record_listing(self, listing: Listing, source: str, made_at: datetime) -> set[str]:
        """Make ``listing`` the snapshot of its target, unless a newer one is on record.
        ``made_at`` is when the evidence was made: a live read's time, or the blob's
        Last-Modified as the storage service stamped it, never an injected clock.
        Returns the tenants whose resolution may change."""
        return self.record(listing, source, made_at)[1]

    def record_uploaded_listing(
        self, listing: Listing, blob_name: str, last_modified: datetime, live: frozenset[str]
    ) -> tuple[str, set[str]]:
        """An uploaded listing: ``live-target`` (changes nothing) for a target the app reads
        live, ``stale-listing`` when a newer snapshot is on record, else ``recorded``."""
        if listing.target.lower() in live:
            return LIVE_TARGET, set()
        return self.record(listing, blob_name, last_modified)

    def record(self, listing: Listing, source: str, made_at: datetime) -> tuple[str, set[str]]:
        table = self._tables("regtargets")
        key = table_key(listing.target)
        for _ in range(MAX_CONFLICT_RETRIES):
            row = self._row(listing.target)
            old = snapshot_of(dict(row)) if row is not None else None
            if row is not None and row.get("seen_at") and parse_iso(row["seen_at"]) > made_at:
                return STALE_LISTING, set()  # an older listing processed late
            # A snapshot replaces the target's whole: what it lists now (an IoT Central app
            # with every slot empty lists nothing). Groups a listing did not read (a plain
            # certificate list) stay as last read: the stricter answer.
            entries = _entries_of_listing(listing)
            groups = listing.groups if listing.groups is not None else (old and old.groups)
            history = set(old.history if old else ()) | {e.thumbprint for e in entries}
            before = {(e.thumbprint, e.sha256, e.verified) for e in (old.entries if old else ())}
            entity = {
                "PartitionKey": TARGET_PARTITION,
                "RowKey": key,
                "target": listing.target,
                "kind": listing.kind,
                "display_name": listing.display_name,
                "format": listing.format,
                "seen_at": iso(made_at),
                "source": source,
                "count": len(entries),
                "error_code": None,
                "error_message": None,
                **_chunks(_body_json(entries, groups, history)),
            }
            if groups is not None and listing.groups is not None:
                entity["groups_seen_at"] = iso(made_at)
                entity["groups_source"] = source
            elif row is not None and row.get("groups_seen_at"):
                entity["groups_seen_at"] = row["groups_seen_at"]
                entity["groups_source"] = row.get("groups_source")
            if row is not None and source != "live":
                # a failed live read stays on record until a live read succeeds
                entity["error_code"] = row.get("error_code")
                entity["error_message"] = row.get("error_message")
            try:
                if row is None:
                    table.create_entity(entity)
                else:
                    table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except ResourceExistsError:
                continue
            except (ResourceModifiedError, HttpResponseError) as exc:
                if not precondition_failed(exc):
                    raise
                continue
            after = {(e.thumbprint, e.sha256, e.verified) for e in entries}
            changed = {thumb for thumb, _, _ in before ^ after}
            if groups != (old.groups if old else None):
                changed |= history  # a group change may move any CA the target knows
            return RECORDED, self.tenants_of(changed)
        raise RuntimeError(f"registration target {listing.target}: too many concurrent updates")

    def record_target_error(
        self, target: str, kind: str, display_name: str, code: str, message: str, now: datetime
    ) -> None:
        """A target that could not be read: its last good snapshot stays in force."""
        entity = {
            "PartitionKey": TARGET_PARTITION,
            "RowKey": table_key(target.lower()),
            "target": target.lower(),
            "kind": kind,
            "display_name": display_name,
            "error_code": code,
            "error_message": message,
            "error_at": iso(now),
        }
        self._tables("regtargets").upsert_entity(entity, mode=UpdateMode.MERGE)
        # Beside the day's failed uploads, so the timer's self-health check (which reads
        # that day's rows anyway) names the target without another query.
        self._tables("uploadfailures").upsert_entity(
            {
                "PartitionKey": now.astimezone(UTC).date().isoformat(),
                "RowKey": f"target|{table_key(target.lower())}",
                "name": display_name,
                "target": target.lower(),
                "kind": TARGET_FAILURE_KIND,
                "status": "unreadable-target",
                "error_code": code,
                "error_message": message,
                "processed_at": iso(now),
            },
            mode=UpdateMode.REPLACE,
        )

    def add_thumbprint(self, sha1: str, sha256: str, tenant_id: str) -> None:
        """Remember which tenant a tenant CA's thumbprint belongs to (before its tenant is
        refreshed; see the module note)."""
        self._tables("thumbtenants").upsert_entity(
            {"PartitionKey": sha1.upper(), "RowKey": sha256, "tenant_id": tenant_id},
            mode=UpdateMode.REPLACE,
        )

    # --- reads -----------------------------------------------------------------------

    def tenants_of(self, thumbprints: Iterable[str]) -> set[str]:
        """The tenants owning these SHA-1 thumbprints (one partition read each, side by side)."""

        def owners(thumb: str) -> list[str]:
            return [
                row["tenant_id"]
                for row in self._tables("thumbtenants").query_entities(
                    "PartitionKey eq @pk", parameters={"pk": thumb}, select=["tenant_id"]
                )
            ]

        pages = [submit(owners, thumb) for thumb in sorted(set(thumbprints))]
        return {tenant for page in pages for tenant in page.result()}

    def snapshots(self) -> list[TargetSnapshot]:
        """Every target's snapshot (one query; targets are few). Targets that were never
        read successfully have no entries."""
        rows = self._tables("regtargets").query_entities(
            "PartitionKey eq @pk", parameters={"pk": TARGET_PARTITION}
        )
        return sorted((snapshot_of(dict(row)) for row in rows), key=lambda s: s.target)

    def target_rows(self) -> list[dict[str, Any]]:
        """The report's ``targets`` (DESIGN §3)."""
        out = []
        for row in self._tables("regtargets").query_entities(
            "PartitionKey eq @pk", parameters={"pk": TARGET_PARTITION}
        ):
            out.append(
                {
                    "target": row["target"],
                    "kind": row["kind"],
                    "display_name": row.get("display_name") or row["target"],
                    "seen_at": row.get("seen_at"),
                    "source": row.get("source"),
                    "format": row.get("format"),
                    "groups_seen_at": row.get("groups_seen_at"),
                    "groups_source": row.get("groups_source"),
                    "state": "unknown" if row.get("error_code") else "ok",
                    "certificates": row.get("count") or 0,
                    "error": (
                        {"code": row["error_code"], "message": row.get("error_message") or ""}
                        if row.get("error_code")
                        else None
                    ),
                }
            )
        return sorted(out, key=lambda t: t["target"])

    def _row(self, target: str) -> Any:
        try:
            return self._tables("regtargets").get_entity(TARGET_PARTITION, table_key(target))
        except ResourceNotFoundError:
            return None
