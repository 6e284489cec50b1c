"""Kill tests for the alert-side storage adapters (issue 16): the ledger, the alert index,
the gate, acknowledgements, registration snapshots and the report read model, each on a
real Azurite. They assert what an operator would notice: an alert sent once and never
twice, never dropped, a claim another run holds, an unclear send tried once more and then
never again, where the index says each certificate is next looked at, the report's fields.

Each ledger test gets a table of its own (a fresh name on the shared Azurite), so it needs
neither the app's environment nor the full set of tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from shared.alerts.model import LedgerKey, LedgerStatus
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.ledger import Ledger, partition_key, row_key

NOW = datetime(2020, 8, 4, 9, tzinfo=UTC)
DEADLINE = "azure-sphere-2020-07/activation"


@pytest.fixture
def service(azurite: Azurite) -> TableServiceClient:
    return table_service({"CertStorage": azurite.connection_string})


@pytest.fixture
def ledger_table(service: TableServiceClient) -> Iterator[TableClient]:
    name = f"ledger{uuid.uuid4().hex[:16]}"
    table = service.create_table(name)
    yield table
    service.delete_table(name)


def key(n: int = 0, stage: str = "14d", channel: str = "outbox", tenant: str = "t") -> LedgerKey:
    return LedgerKey(tenant, f"{n:064x}", DEADLINE, stage, channel)


def row(table: TableClient, k: LedgerKey) -> dict[str, Any]:
    return dict(table.get_entity(partition_key(k), row_key(k)))


def rows(table: TableClient) -> list[dict[str, Any]]:
    return [dict(r) for r in table.list_entities()]


def fresh(table: TableClient, keys: list[LedgerKey]) -> Ledger:
    """A new run's ledger that has read ``keys`` (what the alert pass does first)."""
    ledger = Ledger(table)
    ledger.read_entries(keys)
    return ledger


# --- the ledger: claims ------------------------------------------------------------------------


def test_a_claim_records_who_claimed_what_and_when(ledger_table: TableClient) -> None:
    k = LedgerKey("tenant-1", "ab" * 32, DEADLINE, "overdue@2020-08-19", "teams")
    ledger = fresh(ledger_table, [k])
    assert ledger.claim([k, k], "run-a", NOW) == {k}  # the same key twice: one row
    stored = row(ledger_table, k)
    assert stored["PartitionKey"] == "teams|azure-sphere-2020-07%2Factivation|overdue@2020-08-19"
    assert stored["RowKey"] == "ab" * 32
    assert {name: stored[name] for name in ("tenant_id", "certificate", "deadline_id")} == {
        "tenant_id": "tenant-1",
        "certificate": "ab" * 32,
        "deadline_id": DEADLINE,
    }
    assert (stored["stage_key"], stored["channel"]) == ("overdue@2020-08-19", "teams")
    assert (stored["status"], stored["claimed_by"]) == ("claimed", "run-a")
    assert stored["claimed_at"] == "2020-08-04T09:00:00Z"
    assert stored["attempts"] == 0 and stored["unclear_sends"] == 0
    for absent in ("sent_at", "next_attempt_at", "provider_id", "error"):
        assert stored.get(absent) is None
    entry = ledger.entry(k)
    assert entry is not None and entry.status is LedgerStatus.CLAIMED
    assert entry.claimed_at == NOW and entry.unclear_sends == 0 and not entry.possible_repeat


def test_a_live_claim_of_another_run_is_not_taken(ledger_table: TableClient) -> None:
    mine, theirs = key(1), key(2)
    other = fresh(ledger_table, [theirs])
    assert other.claim([theirs], "run-b", NOW) == {theirs}
    # Read before the other run claimed: the batch create fails, the rows go one by one.
    late = fresh(ledger_table, [])
    assert late.claim([mine, theirs], "run-a", NOW + timedelta(minutes=1)) == {mine}
    assert row(ledger_table, theirs)["claimed_by"] == "run-b"
    assert row(ledger_table, mine)["claimed_by"] == "run-a"
    # Read after: the claim is seen fresh and not even tried.
    seen = fresh(ledger_table, [theirs])
    assert seen.claim([theirs], "run-c", NOW + timedelta(minutes=9)) == set()
    assert row(ledger_table, theirs)["claimed_by"] == "run-b"


def test_a_stale_claim_is_taken_over_once_as_a_possible_repeat(ledger_table: TableClient) -> None:
    k = key()
    fresh(ledger_table, [k]).claim([k], "dead-run", NOW)
    later = NOW + timedelta(minutes=10)  # the claim timeout, to the second
    seen = fresh(ledger_table, [k])
    assert seen.claim([k], "run-b", later) == {k}
    stored = row(ledger_table, k)
    assert (stored["claimed_by"], stored["claimed_at"]) == ("run-b", "2020-08-04T09:10:00Z")
    assert stored["unclear_sends"] == 1  # the dead run may have sent it
    entry = seen.entry(k)
    assert entry is not None and entry.possible_repeat
    # That run dies too: a second takeover would make a third post possible. Never.
    assert fresh(ledger_table, [k]).claim([k], "run-c", later + timedelta(hours=1)) == set()
    assert Ledger(ledger_table).claim([k], "run-d", later + timedelta(hours=1)) == set()
    assert row(ledger_table, k)["claimed_by"] == "run-b"


def test_a_stale_claim_not_read_first_is_taken_over_row_by_row(ledger_table: TableClient) -> None:
    k = key()
    fresh(ledger_table, [k]).claim([k], "dead-run", NOW)
    unread = Ledger(ledger_table)
    assert unread.claim([k], "run-b", NOW + timedelta(minutes=11)) == {k}
    stored = row(ledger_table, k)
    assert stored["claimed_by"] == "run-b" and stored["unclear_sends"] == 1
    assert unread.entry(k) is not None and unread.entry(k).possible_repeat  # type: ignore[union-attr]


def test_a_row_changed_since_it_was_read_is_not_taken(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_failed([k], NOW, "HTTP 429")
    retry_at = NOW + timedelta(minutes=6)
    slow = fresh(ledger_table, [k])  # reads the failed row, then stalls
    quick = fresh(ledger_table, [k])
    assert quick.claim([k], "run-b", retry_at) == {k}
    assert slow.claim([k], "run-c", retry_at) == set()  # its ETag is stale: look again
    assert row(ledger_table, k)["claimed_by"] == "run-b"


def test_a_retry_keeps_the_attempts_and_the_last_error(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_failed([k], NOW, "HTTP 429")
    assert fresh(ledger_table, [k]).claim([k], "run-b", NOW + timedelta(minutes=4)) == set()
    retry = fresh(ledger_table, [k])
    assert retry.claim([k], "run-b", NOW + timedelta(minutes=5)) == {k}
    stored = row(ledger_table, k)
    assert (stored["status"], stored["claimed_by"]) == ("claimed", "run-b")
    assert (stored["attempts"], stored["error"]) == (1, "HTTP 429")
    assert stored.get("next_attempt_at") is None
    retry.mark_failed([k], NOW + timedelta(minutes=5), "HTTP 429 again")
    stored = row(ledger_table, k)
    assert stored["attempts"] == 2  # backoff grows: 5 min, then 10
    assert stored["next_attempt_at"] == "2020-08-04T09:15:00Z"


def test_a_retry_not_read_first_keeps_the_counts_the_row_holds(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_unknown([k], NOW, "read timed out")
    unread = Ledger(ledger_table)
    assert unread.claim([k], "run-b", NOW + timedelta(minutes=5)) == {k}
    stored = row(ledger_table, k)
    assert (stored["attempts"], stored["unclear_sends"]) == (1, 1)
    unread.mark_failed([k], NOW + timedelta(minutes=5), "HTTP 429")
    assert row(ledger_table, k)["attempts"] == 2


def test_a_sent_row_is_never_claimed_again(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_sent([k], NOW + timedelta(seconds=3), provider_id="msg-1")
    stored = row(ledger_table, k)
    assert (stored["status"], stored["sent_at"]) == ("sent", "2020-08-04T09:00:03Z")
    assert stored["provider_id"] == "msg-1" and stored["claimed_by"] == "run-a"
    entry = first.entry(k)
    assert entry is not None and entry.status is LedgerStatus.SENT
    assert entry.sent_at == NOW + timedelta(seconds=3)
    a_year_later = NOW + timedelta(days=365)
    assert fresh(ledger_table, [k]).claim([k], "run-b", a_year_later) == set()
    assert Ledger(ledger_table).claim([k], "run-c", a_year_later) == set()
    assert row(ledger_table, k)["status"] == "sent"


def test_read_entries_returns_the_rows_asked_for_with_their_state(
    ledger_table: TableClient,
) -> None:
    sent, failed, unknown, claimed, other = key(1), key(2), key(3), key(4), key(5)
    first = fresh(ledger_table, [])
    assert first.claim([sent, failed, unknown, claimed, other], "run-a", NOW) == {
        sent,
        failed,
        unknown,
        claimed,
        other,
    }
    first.mark_sent([sent], NOW)
    first.mark_failed([failed], NOW, "HTTP 429")
    first.mark_unknown([unknown], NOW, "timed out")
    never = key(6)
    entries = Ledger(ledger_table).read_entries([sent, failed, unknown, claimed, never])
    assert set(entries) == {sent, failed, unknown, claimed}  # not `other`, not `never`
    assert entries[sent].status is LedgerStatus.SENT and entries[sent].sent_at == NOW
    assert entries[failed].status is LedgerStatus.FAILED
    assert (entries[failed].attempts, entries[failed].error) == (1, "HTTP 429")
    assert entries[failed].next_attempt_at == NOW + timedelta(minutes=5)
    assert entries[unknown].status is LedgerStatus.UNKNOWN
    assert entries[unknown].unclear_sends == 1 and entries[unknown].error == "timed out"
    assert entries[claimed].status is LedgerStatus.CLAIMED
    assert entries[claimed].claimed_at == NOW and entries[claimed].attempts == 0


def test_a_row_written_without_counts_reads_as_a_claim_with_none(
    ledger_table: TableClient,
) -> None:
    k = key()
    ledger_table.create_entity({"PartitionKey": partition_key(k), "RowKey": row_key(k)})
    entry = Ledger(ledger_table).read_entries([k])[k]
    assert entry.status is LedgerStatus.CLAIMED and entry.claimed_at is None
    assert (entry.attempts, entry.unclear_sends, entry.error) == (0, 0, None)
    assert entry.sent_at is None and entry.next_attempt_at is None


def test_a_claim_of_many_items_of_one_stage_gets_them_all(ledger_table: TableClient) -> None:
    keys = [key(n) for n in range(150)]  # more than one transaction's 100 operations
    ledger = fresh(ledger_table, keys)
    assert ledger.claim(keys, "run-a", NOW) == set(keys)
    assert len(rows(ledger_table)) == 150
    ledger.mark_sent(keys, NOW)
    assert {r["status"] for r in rows(ledger_table)} == {"sent"}
    assert fresh(ledger_table, keys).claim(keys, "run-b", NOW + timedelta(days=1)) == set()


def test_a_row_deleted_after_it_was_read_is_claimed_afresh(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_failed([k], NOW, "HTTP 429")
    reader = fresh(ledger_table, [k])
    first.release([k])  # gone (another run released it) before this run claims
    assert reader.claim([k], "run-b", NOW + timedelta(minutes=6)) == {k}
    assert row(ledger_table, k)["claimed_by"] == "run-b"


# --- the ledger: outcomes ------------------------------------------------------------------------


def test_a_failed_send_backs_off_and_keeps_the_error_short(ledger_table: TableClient) -> None:
    k = key()
    ledger = fresh(ledger_table, [k])
    ledger.claim([k], "run-a", NOW)
    ledger.mark_failed([k, k], NOW, "x" * 1500)
    stored = row(ledger_table, k)
    assert (stored["status"], stored["attempts"]) == ("failed", 1)
    assert stored["error"] == "x" * 1000
    assert stored["next_attempt_at"] == "2020-08-04T09:05:00Z"
    entry = ledger.entry(k)
    assert entry is not None and entry.status is LedgerStatus.FAILED and entry.attempts == 1


@pytest.mark.parametrize(
    ("retryable", "retry_after", "expected"),
    [
        (False, None, timedelta(hours=24)),  # a refused recipient: a human must look, daily
        (True, timedelta(minutes=30), timedelta(minutes=30)),  # the peer's Retry-After
        (True, timedelta(minutes=1), timedelta(minutes=5)),  # never sooner than the backoff
        (True, timedelta(days=3), timedelta(hours=24)),  # a huge Retry-After: a day at most
    ],
)
def test_a_failed_send_is_retried_when_the_peer_and_the_backoff_allow(
    ledger_table: TableClient, retryable: bool, retry_after: timedelta | None, expected: timedelta
) -> None:
    k = key()
    ledger = fresh(ledger_table, [k])
    ledger.claim([k], "run-a", NOW)
    ledger.mark_failed([k], NOW, "HTTP 400", retryable=retryable, retry_after=retry_after)
    entry = Ledger(ledger_table).read_entries([k])[k]
    assert entry.next_attempt_at == NOW + expected
    assert fresh(ledger_table, [k]).claim([k], "b", NOW + expected - timedelta(seconds=1)) == set()
    assert fresh(ledger_table, [k]).claim([k], "c", NOW + expected) == {k}


def test_an_unknown_outcome_is_tried_once_more_then_never(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_unknown([k, k], NOW, "y" * 1200)
    stored = row(ledger_table, k)
    assert (stored["status"], stored["attempts"], stored["unclear_sends"]) == ("unknown", 1, 1)
    assert stored["error"] == "y" * 1000
    assert stored["next_attempt_at"] == "2020-08-04T09:05:00Z"
    entry = first.entry(k)
    assert entry is not None and entry.status is LedgerStatus.UNKNOWN and entry.possible_repeat

    retry = fresh(ledger_table, [k])
    assert retry.claim([k], "run-b", NOW + timedelta(minutes=5)) == {k}
    retry.mark_unknown([k], NOW + timedelta(minutes=5), "timed out again")
    stored = row(ledger_table, k)
    assert (stored["attempts"], stored["unclear_sends"]) == (2, 2)
    assert stored.get("next_attempt_at") is None  # it may have arrived twice: no third post
    for later in (timedelta(hours=1), timedelta(days=30)):
        assert fresh(ledger_table, [k]).claim([k], "run-c", NOW + later) == set()
        assert Ledger(ledger_table).claim([k], "run-d", NOW + later) == set()


def test_outcomes_of_keys_never_read_still_count(ledger_table: TableClient) -> None:
    k = key()
    fresh(ledger_table, [k]).claim([k], "run-a", NOW)
    blind = Ledger(ledger_table)  # e.g. a run that crashed between claim and mark
    blind.mark_unknown([k], NOW, "timed out")
    assert row(ledger_table, k)["unclear_sends"] == 1 and row(ledger_table, k)["attempts"] == 1
    assert row(ledger_table, k)["claimed_by"] == "run-a"  # merged, not replaced


def test_entry_is_none_for_a_key_this_run_never_saw(ledger_table: TableClient) -> None:
    assert Ledger(ledger_table).entry(key()) is None


# --- the ledger: releasing items cut from a message -------------------------------------------


def test_released_claims_are_deleted_and_planned_afresh(ledger_table: TableClient) -> None:
    keys = [key(n) for n in range(120)]
    kept = key(999)
    ledger = fresh(ledger_table, [])
    ledger.claim([*keys, kept], "run-a", NOW)
    ledger.release([*keys, keys[0]])
    assert [r["RowKey"] for r in rows(ledger_table)] == [row_key(kept)]
    assert ledger.entry(keys[0]) is None
    assert fresh(ledger_table, keys).claim(keys, "run-b", NOW) == set(keys)


def test_a_released_row_another_run_took_over_is_left_alone(ledger_table: TableClient) -> None:
    mine, taken = key(1), key(2)
    ledger = fresh(ledger_table, [])
    ledger.claim([mine, taken], "run-a", NOW)
    # Our claim on `taken` went stale and another run took it over before we released it.
    later = NOW + timedelta(minutes=11)
    assert fresh(ledger_table, [taken]).claim([taken], "run-b", later) == {taken}
    ledger.release([mine, taken])
    assert [r["RowKey"] for r in rows(ledger_table)] == [row_key(taken)]
    assert row(ledger_table, taken)["claimed_by"] == "run-b"
    ledger.release([key(3)])  # never claimed: nothing to do, no error


def test_a_release_of_a_row_already_gone_is_quiet(ledger_table: TableClient) -> None:
    gone, mine = key(1), key(2)
    ledger = fresh(ledger_table, [])
    ledger.claim([gone, mine], "run-a", NOW)
    ledger_table.delete_entity(partition_key(gone), row_key(gone))
    ledger.release([gone, mine])
    assert rows(ledger_table) == []
    with pytest.raises(ResourceNotFoundError):
        row(ledger_table, mine)
