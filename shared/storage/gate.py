"""The gate: one row that says when the alert index next holds something to look at, so a
pass with nothing due reads one row instead of querying the index. Writers only ever
*lower* it (under ETag); the timer raises it after a pass only if nobody lowered it
meanwhile."""

from __future__ import annotations

from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.storage.keys import MAX_CONFLICT_RETRIES, iso, parse_iso, precondition_failed
from shared.storage.tables import Tables

NEVER = "9999-12-31T23:59:59Z"  # an index time later than any run
SCHEDULE_PARTITION = "schedule"  # rows about the index itself, beside its shards


class NextLookGate:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def next_look(self) -> tuple[datetime, str] | None:
        """(earliest next-look time, the row's ETag), or None when unknown."""
        try:
            row = self._tables("alertindex").get_entity(SCHEDULE_PARTITION, "next")
        except ResourceNotFoundError:
            return None
        return parse_iso(row["at"]), row.metadata["etag"]

    def lower_next_look(self, at: datetime) -> None:
        """Make sure the gate opens by ``at`` (a tenant CA was added or reopened)."""
        index = self._tables("alertindex")
        entity = {"PartitionKey": SCHEDULE_PARTITION, "RowKey": "next", "at": iso(at)}
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self.next_look()
            try:
                if current is None:
                    index.create_entity(entity)
                elif current[0] > at:
                    index.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=current[1],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue  # someone else moved it: look again
            except HttpResponseError as exc:
                if not precondition_failed(exc):
                    raise
        self.clear_next_look()  # contended: fall back to always reading the index

    def raise_next_look(self, at: datetime | None, seen: tuple[datetime, str] | None) -> None:
        """After a pass: the gate opens at ``at`` (None: never), unless it changed since the
        pass read it as ``seen`` (a writer lowered it: keep theirs)."""
        entity = {
            "PartitionKey": SCHEDULE_PARTITION,
            "RowKey": "next",
            "at": iso(at) if at else NEVER,
        }
        index = self._tables("alertindex")
        try:
            if seen is None:
                index.create_entity(entity)
            else:
                index.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=seen[1],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            pass
        except HttpResponseError as exc:
            if not precondition_failed(exc):
                raise

    def clear_next_look(self) -> None:
        self._tables.delete_quietly("alertindex", SCHEDULE_PARTITION, "next")
