"""Kill tests for the registration snapshots (shared/storage/registrations.py, issue 16) on a
real Azurite: a target first unreadable and later read, what an unreadable target is called,
two listings taken at the same moment, a listing written while another writer replaces
the same target's row (the ETag retry), enrollment groups kept with when and where they were
read, an upload naming a live target, and a row in the layout before groups and history.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient

from shared.alerts.registration import EnrollmentGroup, GroupSlot, TargetEntry
from shared.alerts.rules import load_rules
from shared.analysis.listings import Listing
from shared.analysis.listings import RegisteredCertificate as Registered
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.keys import iso, table_key
from shared.storage.registrations import (
    LIVE_TARGET,
    RECORDED,
    TARGET_PARTITION,
    RegistrationStore,
)
from shared.storage.store import TableStore

NOW = datetime(2020, 8, 4, 9, tzinfo=UTC)
HUB = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/iothubs/fleet-hub"


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    """A store on tables of its own (a fresh name prefix on the shared Azurite)."""
    service: TableServiceClient = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, load_rules(), prefix=f"r{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    yield store
    store.delete_all()


def listed(n: int, verified: bool = True) -> Registered:
    return Registered(f"ca-{n}", f"{n:040X}", f"{n:064x}", verified)


def listing(*certs: Registered) -> Listing:
    return Listing(HUB, "iot-hub", "Fleet-Hub", "iot-hub-certificates", certs)


def test_a_target_unreadable_from_the_start_is_named_and_later_read(store: TableStore) -> None:
    regs = store.registrations
    regs.add_thumbprint(f"{1:040X}", f"{1:064x}", "tenant-1")
    regs.record_target_error(HUB.upper(), "iot-hub", "Fleet-Hub", "forbidden", "403", NOW)
    (snap,) = regs.snapshots()
    # Never read: no snapshot to go by (the target is unknown, not empty) and no source.
    assert (snap.display_name, snap.entries, snap.seen_at, snap.source, snap.read_ok) == (
        "Fleet-Hub",
        (),
        None,
        "",
        False,
    )
    (row,) = regs.target_rows()
    assert (row["display_name"], row["error"]) == (
        "Fleet-Hub",
        {"code": "forbidden", "message": "403"},
    )
    (failure,) = store.iter_rows("uploadfailures")
    assert failure["name"] == "Fleet-Hub"
    # The first successful read: its snapshot replaces the error.
    later = NOW + timedelta(hours=1)
    assert regs.record_listing(listing(listed(1)), "live", later) == {"tenant-1"}
    (snap,) = regs.snapshots()
    assert snap.entries == (TargetEntry(f"{1:040X}", f"{1:064x}", True, "ca-1"),)
    assert (snap.seen_at, snap.error) == (later, None)


def test_of_two_listings_taken_at_the_same_moment_the_last_processed_stands(
    store: TableStore,
) -> None:
    regs = store.registrations
    regs.add_thumbprint(f"{2:040X}", f"{2:064x}", "tenant-2")
    regs.record_listing(listing(listed(1)), "upload", NOW)
    assert regs.record_listing(listing(listed(1), listed(2)), "live", NOW) == {"tenant-2"}
    (snap,) = regs.snapshots()
    assert [e.thumbprint for e in snap.entries] == [f"{1:040X}", f"{2:040X}"]
    assert snap.source == "live"


class _RacingTables:
    """The store's tables, except that the first write to ``regtargets`` is preceded by
    another writer's ``race`` (as when a live pull and an upload list the same target)."""

    def __init__(self, tables: Callable[[str], TableClient], race: Callable[[], None]) -> None:
        self._tables = tables
        self._race: Callable[[], None] | None = race

    def __call__(self, name: str) -> Any:
        client = self._tables(name)
        return _RacingClient(client, self) if name == "regtargets" else client

    def before_write(self) -> None:
        race, self._race = self._race, None
        if race is not None:
            race()


class _RacingClient:
    def __init__(self, client: TableClient, tables: _RacingTables) -> None:
        self._client, self._tables = client, tables

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._tables.before_write()
        return self._client.create_entity(*args, **kwargs)

    def update_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._tables.before_write()
        return self._client.update_entity(*args, **kwargs)


@pytest.mark.parametrize("first_listing", [False, True], ids=["create", "replace"])
def test_a_listing_written_while_another_writer_replaces_its_target_is_retried(
    store: TableStore, first_listing: bool
) -> None:
    regs = store.registrations
    regs.add_thumbprint(f"{3:040X}", f"{3:064x}", "tenant-3")
    if first_listing:
        regs.record_listing(listing(listed(1)), "live", NOW)
    other = NOW + timedelta(minutes=1)
    racing = RegistrationStore(
        _RacingTables(
            store.tables, lambda: regs.record_listing(listing(listed(2)), "upload", other)
        )  # type: ignore[arg-type]
    )
    later = NOW + timedelta(hours=1)
    assert racing.record_listing(listing(listed(3)), "live", later) == {"tenant-3"}
    (snap,) = regs.snapshots()
    assert [e.thumbprint for e in snap.entries] == [f"{3:040X}"]
    assert (snap.seen_at, snap.source) == (later, "live")


def test_an_unreadable_target_is_filed_under_its_utc_day_whatever_the_hosts_zone(
    store: TableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The self-health check reads the failures of the UTC day; a host (or a local run of the
    # pull) in another zone still files them there.
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: 20:00 UTC is tomorrow there
    time.tzset()
    try:
        late = datetime(2020, 8, 4, 20, tzinfo=UTC)
        store.registrations.record_target_error(HUB, "iot-hub", "Fleet-Hub", "gone", "404", late)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    (failure,) = store.iter_rows("uploadfailures")
    assert failure["PartitionKey"] == "2020-08-04"


def test_an_unnamed_certificate_keeps_its_empty_name_and_a_huge_listing_is_refused_by_name(
    store: TableStore,
) -> None:
    regs = store.registrations
    regs.record_listing(listing(Registered("", f"{1:040X}", f"{1:064x}", True)), "live", NOW)
    assert regs.snapshots()[0].entries[0].name == ""  # the report shows no name, not a made-up one
    huge = listing(*(Registered("n" * 2000, f"{n:040X}", None, True) for n in range(400)))
    # The blob trigger fails with this line in its log (the operator's only clue).
    with pytest.raises(ValueError, match=r"^a registration listing is too large to record$"):
        regs.record_listing(huge, "upload", NOW + timedelta(hours=1))


def test_a_listing_over_one_mebibyte_as_azure_counts_it_is_refused_by_name(
    store: TableStore,
) -> None:
    """Azure counts table strings as UTF-16 (2 bytes a character) against its 1 MiB entity
    limit; Azurite does not enforce it, so the store must. About 530,000 characters of
    entries are 1.06 MB there: refused here with the clear message, not by the service."""
    regs = store.registrations
    over = listing(*(Registered("n" * 2000, f"{n:040X}", None, True) for n in range(250)))
    with pytest.raises(ValueError, match=r"^a registration listing is too large to record$"):
        regs.record_listing(over, "upload", NOW)
    fits = listing(*(Registered("n" * 2000, f"{n:040X}", None, True) for n in range(200)))
    regs.record_listing(fits, "upload", NOW)  # ~425,000 characters: 0.85 MB as Azure counts
    assert len(regs.snapshots()[0].entries) == 200


def test_a_listing_that_loses_every_race_names_its_target(
    store: TableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write refused as already there (another writer's create each time) up to the
    retry limit: the error names the target, so the blob trigger's retry log says which."""
    from azure.core.exceptions import ResourceExistsError

    def lost(*_: Any, **__: Any) -> None:
        raise ResourceExistsError("The specified entity already exists.")

    monkeypatch.setattr(store.table("regtargets"), "create_entity", lost)
    with pytest.raises(
        RuntimeError, match=rf"^registration target {HUB}: too many concurrent updates$"
    ):
        store.registrations.record_listing(listing(listed(1)), "live", NOW)


def _groups(verified: bool | None) -> tuple[EnrollmentGroup, ...]:
    """A DPS's two enrollment groups: one by caReferences name, one disabled and inline."""
    return (
        EnrollmentGroup("fleet", True, (GroupSlot("primary", None, "ca-1"),)),
        EnrollmentGroup(
            "old-fleet",
            False,
            (GroupSlot("primary", f"{1:040X}", "", verified), GroupSlot("secondary", None)),
        ),
    )


def test_enrollment_groups_are_kept_with_when_and_where_they_were_read(
    store: TableStore,
) -> None:
    """A listing that read the target's enrollment groups keeps them, whole, with its time
    and source in the report's `targets`; a later certificate list (no groups read) keeps
    the groups last read and when they were read; a failed read shows the target unknown."""
    regs = store.registrations
    with_groups = Listing(HUB, "dps", "Fleet-DPS", "dps", (listed(1),), _groups(True))
    regs.record_listing(with_groups, "live", NOW)
    assert regs.snapshots()[0].groups == _groups(True)
    (row,) = regs.target_rows()
    assert (row["groups_seen_at"], row["groups_source"], row["state"]) == (
        iso(NOW),
        "live",
        "ok",
    )
    later = NOW + timedelta(hours=1)
    regs.record_listing(listing(listed(1), listed(2)), "hub.json", later)
    (snap,) = regs.snapshots()
    assert (snap.groups, len(snap.entries), snap.source) == (_groups(True), 2, "hub.json")
    (row,) = regs.target_rows()
    assert (row["seen_at"], row["groups_seen_at"], row["groups_source"]) == (
        iso(later),
        iso(NOW),
        "live",
    )
    regs.record_target_error(HUB, "dps", "Fleet-DPS", "forbidden", "403 from DPS", later)
    (row,) = regs.target_rows()
    assert (row["state"], row["error"]) == (
        "unknown",
        {"code": "forbidden", "message": "403 from DPS"},
    )
    # An IoT Central slot's flag, False, reads back False (not None: "the DPS list decides").
    regs.record_listing(Listing(HUB, "dps", "Fleet-DPS", "dps", (), _groups(False)), "live", later)
    assert regs.snapshots()[0].groups == _groups(False)


def test_an_uploaded_listing_of_a_live_target_changes_nothing_and_others_name_their_blob(
    store: TableStore,
) -> None:
    regs = store.registrations
    regs.add_thumbprint(f"{1:040X}", f"{1:064x}", "tenant-1")
    assert regs.record_uploaded_listing(listing(listed(1)), "hub.json", NOW, frozenset({HUB})) == (
        LIVE_TARGET,
        set(),
    )
    assert regs.snapshots() == []
    assert regs.record_uploaded_listing(
        listing(listed(1)), "uploads/hub.json", NOW, frozenset({HUB + "-other"})
    ) == (RECORDED, {"tenant-1"})
    (snap,) = regs.snapshots()
    assert (snap.source, snap.seen_at) == ("uploads/hub.json", NOW)


def test_a_snapshot_written_before_groups_and_history_reads_its_entries_as_its_history(
    store: TableStore,
) -> None:
    """A row an earlier release wrote (entries alone, a JSON list): what it listed is what
    the target is known to have listed, so dropping it later is lost trust (DESIGN §4)."""
    thumb = f"{1:040X}"
    store.table("regtargets").create_entity(
        {
            "PartitionKey": TARGET_PARTITION,
            "RowKey": table_key(HUB),
            "target": HUB,
            "kind": "iot-hub",
            "display_name": "Fleet-Hub",
            "seen_at": iso(NOW),
            "source": "live",
            "entries_0": json.dumps([[thumb, f"{1:064x}", True, "ca-1"]]),
        }
    )
    (snap,) = store.registrations.snapshots()
    assert (snap.entries, snap.groups, snap.history) == (
        (TargetEntry(thumb, f"{1:064x}", True, "ca-1"),),
        None,
        frozenset({thumb}),
    )


def test_a_target_remembers_every_ca_it_has_listed(store: TableStore) -> None:
    """The history behind "lost trust" (DESIGN §4): a CA the target listed once and no
    longer lists is still known to it, across every later listing."""
    regs = store.registrations
    regs.record_listing(listing(listed(1)), "live", NOW)
    regs.record_listing(listing(listed(2)), "live", NOW + timedelta(hours=1))
    regs.record_listing(listing(listed(3)), "live", NOW + timedelta(hours=2))
    (snap,) = regs.snapshots()
    assert [e.thumbprint for e in snap.entries] == [f"{3:040X}"]
    assert snap.history == {f"{n:040X}" for n in (1, 2, 3)}


def test_a_ca_listed_twice_is_one_entry_verified_if_either_is_and_named_first(
    store: TableStore,
) -> None:
    regs = store.registrations
    twice = listing(
        listed(1, verified=False),
        Registered("ca-1-verified", f"{1:040X}", f"{1:064x}", True),
        listed(2),
        Registered("ca-2-again", f"{2:040X}", f"{2:064x}", True),
        Registered("ca-2-unverified", f"{2:040X}", f"{2:064x}", False),
    )
    regs.record_listing(twice, "live", NOW)
    (snap,) = regs.snapshots()
    assert snap.entries == (
        TargetEntry(f"{1:040X}", f"{1:064x}", True, "ca-1-verified"),
        TargetEntry(f"{2:040X}", f"{2:064x}", True, "ca-2"),
    )


def test_the_same_groups_read_again_refresh_no_tenant_and_changed_ones_every_known_ca(
    store: TableStore,
) -> None:
    """A listing re-times only the tenants whose CAs it moves: the same enrollment groups
    read again move none; changed groups may move any CA the target has listed."""
    regs = store.registrations
    regs.add_thumbprint(f"{1:040X}", f"{1:064x}", "tenant-1")
    regs.add_thumbprint(f"{2:040X}", f"{2:064x}", "tenant-2")
    dps = Listing(HUB, "dps", "Fleet-DPS", "dps", (listed(1), listed(2)), _groups(True))
    assert regs.record_listing(dps, "live", NOW) == {"tenant-1", "tenant-2"}
    assert regs.record_listing(dps, "live", NOW + timedelta(hours=1)) == set()
    plain = listing(listed(1), listed(2))  # no groups read: the last ones stay
    assert regs.record_listing(plain, "live", NOW + timedelta(hours=2)) == set()
    regrouped = Listing(HUB, "dps", "Fleet-DPS", "dps", (listed(1), listed(2)), _groups(False))
    assert regs.record_listing(regrouped, "live", NOW + timedelta(hours=3)) == {
        "tenant-1",
        "tenant-2",
    }
