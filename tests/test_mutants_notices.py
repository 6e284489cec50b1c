"""Kill tests for the notices owed (shared/storage/notices.py, issue 21: "Every resolution
is announced") on a real Azurite: a notice comes back exactly as it was written (every
field, the empty ones too), in the order it happened, at most a pass's worth at a time,
once however often it is written, and gone once done. Rows a deployed version wrote (the
layout the module documents) are still read, and a damaged evidence list loses only itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from shared.alerts.notice_message import Notice
from shared.alerts.rules import load_rules
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.notices import MAX_NOTICES_PER_PASS, notice_entity, notice_key
from shared.storage.store import TableStore

AT = datetime(2020, 8, 10, 9, 30, 5, tzinfo=UTC)
TENANT = "a11c1ea2-1111-4222-8333-944445555666"
OLD = f"{1:064x}"
NEW = f"{2:064x}"
EVIDENCE = (
    {
        "target": "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/iothubs/h",
        "display_name": "Fleet-Hub",
        "kind": "iot-hub",
        "renewed": "verified",
        "source": "live",
        "seen_at": "2020-08-10T09:00:00Z",
    },
)


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    """A store on tables of its own (a fresh name prefix on the shared Azurite)."""
    service: TableServiceClient = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, load_rules(), prefix=f"n{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    yield store
    store.delete_all()


def resolved(**changes: object) -> Notice:
    fields: dict[str, object] = {
        "tenant_id": TENANT,
        "certificate": OLD,
        "kind": "resolved",
        "ref": NEW,
        "at": AT,
        "subject": f"CN=Microsoft Azure Sphere {TENANT}",
        "renewed": NEW,
        "renewed_thumbprint": "AB" * 20,
        "by": None,
        "until": None,
        "basis": "registration",
        "evidence": EVIDENCE,
    }
    return Notice(**{**fields, **changes})  # type: ignore[arg-type]


def test_every_field_of_a_notice_comes_back_as_written(store: TableStore) -> None:
    full = resolved(by="ops", until=AT + timedelta(days=30, seconds=7))
    store.notices.add(full)
    assert store.notices.pending() == [full]


def test_empty_and_absent_fields_come_back_empty_not_invented(store: TableStore) -> None:
    # An ack of a whole tenant: no ref text, no subject, no renewal, no end date, no evidence.
    bare = Notice(TENANT, OLD, "acknowledged", "", AT)
    store.notices.add(bare)
    (back,) = store.notices.pending()
    assert back == bare
    assert (back.ref, back.subject, back.until, back.evidence) == ("", "", None, ())


def test_a_notice_written_again_is_one_row_holding_the_last_write(store: TableStore) -> None:
    # Two refreshes at once announce the same event; the second write replaces the first
    # whole, so a field the second leaves empty is not kept from the first.
    store.notices.add(resolved(by="ops", until=AT + timedelta(days=1)))
    again = resolved()
    store.notices.add(again)
    assert store.notices.pending() == [again]


def test_notices_come_in_the_order_they_happened(store: TableStore) -> None:
    later = resolved(certificate=f"{0:064x}", at=AT + timedelta(hours=1))
    other_tenant = resolved(tenant_id="0" + TENANT[1:], certificate=f"{9:064x}")
    first_ca = resolved(certificate=f"{3:064x}", ref="r")
    second_ca = resolved(certificate=f"{4:064x}", ref="r")
    for notice in (later, second_ca, first_ca, other_tenant):
        store.notices.add(notice)
    # by time, then tenant, then the CA (the row key) within a tenant
    assert store.notices.pending() == [other_tenant, first_ca, second_ca, later]


def test_a_pass_takes_at_most_its_limit_and_the_rest_stay_pending(store: TableStore) -> None:
    notices = [resolved(ref=f"r{n:03}", at=AT + timedelta(minutes=n)) for n in range(5)]
    for notice in notices:
        store.notices.add(notice)
    assert store.notices.pending(limit=2) == notices[:2]
    assert store.notices.pending(limit=1) == notices[:1]
    assert store.notices.pending(limit=5) == notices
    store.notices.done(notices[0])
    assert store.notices.pending(limit=2) == notices[1:3]


def test_a_backlog_drains_two_hundred_a_pass(store: TableStore) -> None:
    assert MAX_NOTICES_PER_PASS == 200
    table = store.table("notices")
    rows = [
        notice_entity(resolved(ref=f"r{n:03}", at=AT + timedelta(seconds=n))) for n in range(201)
    ]
    for start in range(0, len(rows), 100):  # one partition: batches of 100 are one request
        table.submit_transaction([("upsert", row) for row in rows[start : start + 100]])
    first = store.notices.pending()
    assert len(first) == 200 and first[-1].ref == "r199"
    for notice in first:
        store.notices.done(notice)
    assert [n.ref for n in store.notices.pending()] == ["r200"]


def test_done_removes_only_that_notice_and_twice_is_harmless(store: TableStore) -> None:
    one, two = resolved(ref="one"), resolved(ref="two", at=AT + timedelta(seconds=1))
    store.notices.add(one)
    store.notices.add(two)
    store.notices.done(one)
    store.notices.done(one)  # a second pass that lost the race finds it gone
    assert store.notices.pending() == [two]


def test_a_reference_with_characters_a_row_key_refuses_is_stored(store: TableStore) -> None:
    odd = resolved(ref="2020/08/10#1?x\\y\x01")
    store.notices.add(odd)
    assert store.notices.pending() == [odd]
    store.notices.done(odd)
    assert store.notices.pending() == []


def test_the_row_layout_a_deployed_version_wrote_is_read(store: TableStore) -> None:
    """PK "pending", RK "<tenant>|<sha256>|<kind>|<ref>" (the module's documented layout):
    notices still owed when the app is updated are sent by the new version."""
    table = store.table("notices")
    table.create_entity(
        {
            "PartitionKey": "pending",
            "RowKey": f"{TENANT}|{OLD}|retired|2020-08-10T09:30:05Z",
            "tenant_id": TENANT,
            "certificate": OLD,
            "kind": "retired",
            "ref": "2020-08-10T09:30:05Z",
            "at": "2020-08-10T09:30:05Z",
            "by": "ops",
        }
    )
    retired = Notice(TENANT, OLD, "retired", "2020-08-10T09:30:05Z", AT, by="ops")
    assert store.notices.pending() == [retired]
    assert notice_key(retired) == f"{TENANT}|{OLD}|retired|2020-08-10T09:30:05Z"
    store.notices.done(retired)
    assert list(table.list_entities()) == []


def test_a_row_without_ref_subject_or_evidence_reads_as_empty(store: TableStore) -> None:
    table = store.table("notices")
    table.create_entity(
        {"PartitionKey": "pending", "RowKey": "x", "tenant_id": TENANT, "certificate": OLD}
        | {"kind": "ack-withdrawn", "at": "2020-08-10T09:30:05Z"}
    )
    (back,) = store.notices.pending()
    assert (back.ref, back.subject, back.evidence, back.until) == ("", "", (), None)


def test_damaged_evidence_loses_only_the_evidence(store: TableStore) -> None:
    row = notice_entity(resolved()) | {"evidence": "[{not json"}
    store.table("notices").create_entity(row)
    (back,) = store.notices.pending()
    assert back == resolved(evidence=())
