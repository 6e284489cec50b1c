"""Kill tests for the alert-side storage adapters (issue 16): the ledger, the alert index,
the gate, acknowledgements, registration snapshots and the report read model, each on a
real Azurite. They assert what an operator would notice: an alert sent once and never
twice, never dropped, a claim another run holds, an unclear send tried once more and then
never again, where the index says each certificate is next looked at, the report's fields.

Each ledger test gets a table of its own (a fresh name on the shared Azurite), so it needs
neither the app's environment nor the full set of tables.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from counting_proxy import counting_proxy

from shared.alerts.model import LedgerKey, LedgerStatus, TenantCertificate
from shared.alerts.registration import TargetEntry
from shared.alerts.rules import Rules, load_rules
from shared.analysis.listings import Listing
from shared.analysis.listings import RegisteredCertificate as Registered
from shared.analysis.scan import analyze_bytes
from shared.local import samples
from shared.local.azurite import Azurite
from shared.storage import uploads as uploads_module
from shared.storage.alert_index import (
    INDEX_PARTITIONS,
    index_entity,
    index_partition,
    watch_from,
)
from shared.storage.connections import azurite_connection_string, table_service
from shared.storage.gate import NEVER, NextLookGate
from shared.storage.keys import iso
from shared.storage.ledger import Ledger, partition_key, row_key
from shared.storage.store import TableStore

RULES = load_rules()
NOW = datetime(2020, 8, 4, 9, tzinfo=UTC)
AFFECTED_START = datetime(2020, 7, 1, tzinfo=UTC)  # inside the July 2020 incident window
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


@pytest.fixture
def store(service: TableServiceClient) -> Iterator[TableStore]:
    """A store on tables of its own (a fresh name prefix on the shared Azurite)."""
    store = TableStore(service, RULES, prefix=f"m{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    yield store
    store.delete_all()


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


def test_one_item_another_run_holds_does_not_hold_back_the_rest_of_the_stage(
    ledger_table: TableClient,
) -> None:
    keys = [key(n) for n in range(150)]
    assert fresh(ledger_table, [keys[0]]).claim([keys[0]], "run-b", NOW) == {keys[0]}
    late = fresh(ledger_table, [])  # read before run-b's claim: its first batch fails
    assert late.claim(keys, "run-a", NOW) == set(keys[1:])
    assert {r["claimed_by"] for r in rows(ledger_table)} == {"run-a", "run-b"}
    assert len(rows(ledger_table)) == 150


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
    last = fresh(ledger_table, [k])
    assert last.claim([k], "run-c", NOW + timedelta(minutes=15)) == {k}
    last.mark_sent([k], NOW + timedelta(minutes=15))
    stored = row(ledger_table, k)  # what an operator reading the ledger sees: done
    assert stored["status"] == "sent" and stored.get("next_attempt_at") is None


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
    # `other` sorts first in the stage's partition: a row not asked about is skipped.
    other, sent, failed, unknown, claimed = key(0), key(1), key(2), key(3), key(4)
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


def test_a_stage_of_many_items_costs_a_few_round_trips(
    azurite: Azurite, ledger_table: TableClient
) -> None:
    """What the table service receives (counted by a proxy in front of Azurite): one query
    per stage, and transactions of up to 100 rows, not a request per item."""
    keys = [key(n) for n in range(150)]
    with counting_proxy(azurite.table_port) as proxy:
        connection = azurite_connection_string(
            "127.0.0.1", azurite.blob_port, azurite.queue_port, proxy.port
        )
        service = TableServiceClient.from_connection_string(connection)
        ledger = Ledger(service.get_table_client(ledger_table.table_name))
        ledger.read_entries(keys)
        assert ledger.claim(keys, "run-a", NOW) == set(keys)
        ledger.mark_sent(keys[:90], NOW)
        ledger.mark_failed(keys[90:120], NOW, "HTTP 429")
        ledger.release(keys[120:])
        requests = [(r.method, r.status) for r in proxy.seen()]
        assert requests == [("GET", 200)] + [("POST", 202)] * 5  # claims 2, marks 2, release 1
        # The retry of the failed ones: rows read are taken over in one transaction too.
        proxy.reset()
        retry = Ledger(service.get_table_client(ledger_table.table_name))
        retry.read_entries(keys[90:120])
        assert retry.claim(keys[90:120], "run-b", NOW + timedelta(minutes=5)) == set(keys[90:120])
        assert [(r.method, r.status) for r in proxy.seen()] == [("GET", 200), ("POST", 202)]
    assert len(rows(ledger_table)) == 120
    assert {r["claimed_by"] for r in rows(ledger_table) if r["status"] == "claimed"} == {"run-b"}


def test_a_row_deleted_after_it_was_read_is_claimed_afresh(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_failed([k], NOW, "HTTP 429")
    reader = fresh(ledger_table, [k])
    first.release([k])  # gone (another run released it) before this run claims
    assert reader.claim([k], "run-b", NOW + timedelta(minutes=6)) == {k}
    assert row(ledger_table, k)["claimed_by"] == "run-b"


def test_a_takeover_writes_the_same_row_whether_or_not_it_was_read(
    ledger_table: TableClient,
) -> None:
    read, unread = key(1), key(2)
    first = fresh(ledger_table, [])
    first.claim([read, unread], "run-a", NOW)
    first.mark_failed([read, unread], NOW, "HTTP 429", retry_after=timedelta(minutes=7))
    retry_at = NOW + timedelta(minutes=7)
    assert fresh(ledger_table, [read]).claim([read], "run-b", retry_at) == {read}  # batch
    assert Ledger(ledger_table).claim([unread], "run-b", retry_at) == {unread}  # row by row

    def state(k: LedgerKey) -> dict[str, Any]:
        stored = row(ledger_table, k)
        return {n: v for n, v in stored.items() if n not in ("RowKey", "certificate")}

    assert state(read) == state(unread)
    assert state(unread)["error"] == "HTTP 429"  # the last error survives the takeover
    assert state(unread).get("next_attempt_at") is None and state(unread)["attempts"] == 1


def test_claims_won_row_by_row_can_be_released(ledger_table: TableClient) -> None:
    stale, contended, free = key(1), key(2), key(3)
    fresh(ledger_table, [stale]).claim([stale], "dead-run", NOW)
    other = fresh(ledger_table, [contended])
    other.claim([contended], "run-b", NOW + timedelta(minutes=5))
    later = NOW + timedelta(minutes=10)
    ledger = Ledger(ledger_table)  # read nothing: its batch fails, each row goes alone
    assert ledger.claim([stale, contended, free], "run-a", later) == {stale, free}
    ledger.release([stale, contended, free])  # cut from the message: the next run sends them
    assert [r["claimed_by"] for r in rows(ledger_table)] == ["run-b"]


def test_a_shorter_claim_timeout_takes_over_sooner(ledger_table: TableClient) -> None:
    k = key()
    fresh(ledger_table, [k]).claim([k], "dead-run", NOW)
    minute = timedelta(minutes=1)
    assert Ledger(ledger_table, claim_timeout=minute).claim([k], "b", NOW + minute / 2) == set()
    assert Ledger(ledger_table, claim_timeout=minute).claim([k], "b", NOW + minute) == {k}
    assert row(ledger_table, k)["claimed_by"] == "b"
    read = key(1)
    fresh(ledger_table, [read]).claim([read], "dead-run", NOW)
    reader = Ledger(ledger_table, claim_timeout=minute)  # read first: the batch path
    reader.read_entries([read])
    assert reader.claim([read], "c", NOW + minute / 2) == set()
    assert reader.claim([read], "c", NOW + minute) == {read}
    assert row(ledger_table, read)["claimed_by"] == "c"


def test_a_row_without_counts_is_taken_over_from_zero(ledger_table: TableClient) -> None:
    k = key()
    bare = {"PartitionKey": partition_key(k), "RowKey": row_key(k), "status": "claimed"}
    ledger_table.create_entity(bare)
    assert Ledger(ledger_table).claim([k], "run-a", NOW) == {k}  # a claim of no known age
    stored = row(ledger_table, k)
    assert (stored["attempts"], stored["unclear_sends"], stored["claimed_by"]) == (0, 1, "run-a")


class RivalBetweenReadAndWrite:
    """The real table, with ``rival`` (another run) acting right after this run's first
    read of a row and before its write: the race, made to happen every time."""

    def __init__(
        self, table: TableClient, rival: Callable[[], object], every_read: bool = False
    ) -> None:
        self._table = table
        self._rival: Callable[[], object] | None = rival
        self._every_read = every_read

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        current = self._table.get_entity(*args, **kwargs)
        if self._rival is not None:
            rival = self._rival
            if not self._every_read:
                self._rival = None
            rival()
        return current

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def test_a_takeover_lost_to_another_run_between_read_and_write_sends_nothing(
    ledger_table: TableClient,
) -> None:
    k = key()
    fresh(ledger_table, [k]).claim([k], "dead-run", NOW)
    later = NOW + timedelta(minutes=11)

    def rival() -> None:
        assert fresh(ledger_table, [k]).claim([k], "run-b", later) == {k}

    racing = Ledger(cast(TableClient, RivalBetweenReadAndWrite(ledger_table, rival)))
    assert racing.claim([k], "run-a", later) == set()
    assert row(ledger_table, k)["claimed_by"] == "run-b"


def test_a_row_that_keeps_changing_under_a_claim_is_given_up(ledger_table: TableClient) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_failed([k], NOW, "HTTP 429")
    retry_at = NOW + timedelta(minutes=5)
    touches: list[int] = []

    def rival() -> None:  # another writer changes the row (its ETag), every time
        touches.append(1)
        ledger_table.upsert_entity(
            {"PartitionKey": partition_key(k), "RowKey": row_key(k), "touched": len(touches)},
            mode=UpdateMode.MERGE,
        )

    table = RivalBetweenReadAndWrite(ledger_table, rival, every_read=True)
    assert Ledger(cast(TableClient, table)).claim([k], "run-b", retry_at) == set()
    assert len(touches) > 1 and row(ledger_table, k)["status"] == "failed"  # not ours


def test_a_row_released_between_read_and_write_is_claimed_afresh(
    ledger_table: TableClient,
) -> None:
    k = key()
    first = fresh(ledger_table, [k])
    first.claim([k], "run-a", NOW)
    first.mark_failed([k], NOW, "HTTP 429")
    retry_at = NOW + timedelta(minutes=5)

    def rival() -> None:  # claims it, then cuts it from its message
        other = fresh(ledger_table, [k])
        assert other.claim([k], "run-b", retry_at) == {k}
        other.release([k])

    racing = Ledger(cast(TableClient, RivalBetweenReadAndWrite(ledger_table, rival)))
    assert racing.claim([k], "run-c", retry_at) == {k}
    assert row(ledger_table, k)["claimed_by"] == "run-c"


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
    other = key(2)
    fresh(ledger_table, [other]).claim([other], "run-a", NOW)
    Ledger(ledger_table).mark_failed([other], NOW, "HTTP 429")
    assert (row(ledger_table, other)["status"], row(ledger_table, other)["attempts"]) == (
        "failed",
        1,
    )


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


# --- the alert index and its gate -------------------------------------------------------------


def tenant_ca(
    tenant_id: str, n: int, verdict: str = "affected", not_after: datetime | None = None
) -> TenantCertificate:
    return TenantCertificate(
        tenant_id=tenant_id,
        sha256=f"{n:064x}",
        sha1_thumbprint=f"{n:040X}",
        subject=f"C=US, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant_id}",
        not_before=AFFECTED_START + timedelta(minutes=n),
        not_after=not_after or AFFECTED_START + timedelta(days=730),
        verdict=verdict,
    )


def add_ca(store: TableStore, cert: TenantCertificate) -> None:
    """A tenant CA on record and refreshed (what the pipeline does after an upload)."""
    store.tenants.add(
        cert.tenant_id,
        cert.sha256,
        {
            "sha1_thumbprint": cert.sha1_thumbprint,
            "subject": cert.subject,
            "not_before": iso(cert.not_before),
            "not_after": iso(cert.not_after),
            "verdict": cert.verdict,
        },
    )
    store.tenants.refresh_tenant(cert.tenant_id)


def index_rows(store: TableStore) -> dict[str, str]:
    """RowKey -> PartitionKey of every alert-index row (not the schedule rows)."""
    return {
        r["RowKey"]: r["PartitionKey"]
        for r in store.iter_rows("alertindex")
        if r["PartitionKey"] in INDEX_PARTITIONS
    }


def test_a_tenant_ca_is_indexed_at_its_first_stage_with_its_facts(store: TableStore) -> None:
    cert = tenant_ca("tenant-a", 1)
    add_ca(store, cert)
    # Renewal available on Aug 5, 2020, the earliest deadline; the 14-day stage first.
    first = f"2020-07-22T00:00:00Z|{cert.sha256}"
    assert index_rows(store) == {first: index_partition("tenant-a")}
    (read,) = store.index.open_tenant_certificates(datetime(2020, 7, 22, tzinfo=UTC))
    assert read == TenantCertificate(**{**cert.__dict__, "index_keys": (first,)})
    assert store.index.open_tenant_certificates(datetime(2020, 7, 21, 23, 59, tzinfo=UTC)) == []
    assert store.index.tenant_rows("tenant-a") == {cert.sha256: [first]}
    assert store.index.tenant_rows("tenant-b") == {}
    # Nothing was due before: the gate opens exactly then.
    gate = store.gate.next_look()
    assert gate is not None and gate[0] == datetime(2020, 7, 22, tzinfo=UTC)
    add_ca(store, cert)  # the same again: the same single row
    assert list(index_rows(store)) == [first]


def test_watch_from_the_earliest_deadline_any_rule_gives() -> None:
    affected = tenant_ca("t", 1)
    fine = tenant_ca("t", 2, verdict="ok", not_after=datetime(2021, 1, 1, tzinfo=UTC))
    # Only rotation applies to a fine CA: 90 days before expiry, then 14 days' lead.
    assert watch_from(fine, RULES) == datetime(2021, 1, 1, tzinfo=UTC) - timedelta(days=104)
    assert watch_from(affected, RULES) == datetime(2020, 7, 22, tzinfo=UTC)
    # The 2020 incident alone (the retirement dates of Azure Sphere apply to every CA).
    incident_only = RULES.incidents[:1]
    no_rotation = Rules(**{**RULES.__dict__, "rotation": None, "incidents": incident_only})
    assert watch_from(fine, no_rotation) == fine.not_after  # nothing applies: its expiry
    assert watch_from(affected, no_rotation) == datetime(2020, 7, 22, tzinfo=UTC)
    rotation_only = Rules(**{**RULES.__dict__, "incidents": (), "stages": ()})
    assert watch_from(affected, rotation_only) == affected.not_after - timedelta(days=90)


def test_a_closed_tenant_ca_leaves_the_index(store: TableStore) -> None:
    old, other = tenant_ca("tenant-a", 1), tenant_ca("tenant-a", 2)
    add_ca(store, old)
    add_ca(store, other)
    assert len(index_rows(store)) == 2
    store.acknowledge("tenant-a", old.sha256, "alice", None, NOW)
    assert list(index_rows(store)) == [f"2020-07-22T00:00:00Z|{other.sha256}"]
    store.index.remove("tenant-a", store.index.tenant_rows("tenant-a")[other.sha256])
    assert index_rows(store) == {}


def test_a_reschedule_moves_rows_within_their_shard(store: TableStore) -> None:
    certs = [tenant_ca(f"tenant-{n}", n) for n in range(3)]
    for cert in certs:
        add_ca(store, cert)
    read = store.index.open_tenant_certificates(NOW)
    assert {c.sha256 for c in read} == {c.sha256 for c in certs}
    later = datetime(2020, 8, 5, tzinfo=UTC)
    by_sha = {c.sha256: c for c in read}
    store.index.reschedule(
        [
            (by_sha[certs[0].sha256], later),
            (by_sha[certs[1].sha256], None),  # nothing more to say: never, unless it changes
            (by_sha[certs[2].sha256], datetime(2020, 7, 22, tzinfo=UTC)),  # where it is
        ]
    )
    assert index_rows(store) == {
        f"2020-08-05T00:00:00Z|{certs[0].sha256}": index_partition("tenant-0"),
        f"{NEVER}|{certs[1].sha256}": index_partition("tenant-1"),
        f"2020-07-22T00:00:00Z|{certs[2].sha256}": index_partition("tenant-2"),
    }
    assert [c.sha256 for c in store.index.open_tenant_certificates(NOW)] == [certs[2].sha256]
    everyone = store.index.open_tenant_certificates(NOW, all_open=True)
    assert {c.sha256 for c in everyone} == {c.sha256 for c in certs}
    moved = next(c for c in everyone if c.sha256 == certs[0].sha256)
    assert moved.subject == certs[0].subject and moved.not_after == certs[0].not_after
    assert store.index.first_look_after(NOW) == later
    assert store.index.first_look_after(later) is None  # only "never" is left after it


def test_a_reschedule_of_many_rows_in_one_shard_moves_them_all(store: TableStore) -> None:
    certs = [tenant_ca("tenant-a", n) for n in range(60)]  # 120 operations in one shard
    store.table("alertindex").submit_transaction(
        [("upsert", index_entity(c, f"2020-07-22T00:00:00Z|{c.sha256}")) for c in certs]
    )
    read = store.index.open_tenant_certificates(NOW)
    assert len(read) == 60
    store.index.reschedule((c, datetime(2020, 8, 5, tzinfo=UTC)) for c in read)
    assert sorted(index_rows(store)) == sorted(f"2020-08-05T00:00:00Z|{c.sha256}" for c in certs)


def test_a_reschedule_never_puts_back_a_row_a_refresh_removed(store: TableStore) -> None:
    gone, kept = tenant_ca("tenant-a", 1), tenant_ca("tenant-a", 2)
    add_ca(store, gone)
    add_ca(store, kept)
    read = {c.sha256: c for c in store.index.open_tenant_certificates(NOW)}
    store.acknowledge("tenant-a", gone.sha256, "alice", None, NOW)  # while the pass ran
    later = datetime(2020, 8, 5, tzinfo=UTC)
    store.index.reschedule([(read[gone.sha256], later), (read[kept.sha256], later)])
    assert list(index_rows(store)) == [f"2020-08-05T00:00:00Z|{kept.sha256}"]
    store.index.reschedule([(read[gone.sha256], later)])  # alone in its batch: dropped too
    assert list(index_rows(store)) == [f"2020-08-05T00:00:00Z|{kept.sha256}"]


def test_the_gate_is_lowered_by_writers_and_raised_only_by_an_unchanged_pass(
    store: TableStore,
) -> None:
    gate = store.gate
    assert gate.next_look() is None
    aug5, aug1 = datetime(2020, 8, 5, tzinfo=UTC), datetime(2020, 8, 1, tzinfo=UTC)
    gate.lower_next_look(aug5)
    seen = gate.next_look()
    assert seen is not None and seen[0] == aug5
    gate.lower_next_look(datetime(2020, 9, 1, tzinfo=UTC))  # later: the gate stays put
    assert gate.next_look() == seen
    gate.lower_next_look(aug1)
    lowered = gate.next_look()
    assert lowered is not None and lowered[0] == aug1
    gate.raise_next_look(datetime(2020, 9, 1, tzinfo=UTC), seen)  # stale: keeps aug1
    assert gate.next_look() == lowered
    gate.raise_next_look(datetime(2020, 9, 1, tzinfo=UTC), lowered)
    raised = gate.next_look()
    assert raised is not None and raised[0] == datetime(2020, 9, 1, tzinfo=UTC)
    gate.raise_next_look(None, raised)  # nothing left to look at
    never = gate.next_look()
    assert never is not None and iso(never[0]) == NEVER
    gate.clear_next_look()
    assert gate.next_look() is None
    gate.clear_next_look()  # already gone: quiet
    gate.raise_next_look(aug5, None)  # a first pass creates it
    assert (gate.next_look() or (None,))[0] == aug5
    gate.raise_next_look(aug1, None)  # a writer created it meanwhile: theirs stands
    assert (gate.next_look() or (None,))[0] == aug5


def test_a_gate_on_storage_that_fails_raises_rather_than_pass_quietly(
    service: TableServiceClient,
) -> None:
    """A storage error that is no lost race (here: every write answers 500 Internal Server
    Error; a missing table is no longer one, tables are made on demand) reaches the caller
    (the host retries the upload or the pass), instead of being taken for a race."""
    store = TableStore(service, RULES, prefix=f"failing{uuid.uuid4().hex[:8]}")
    real = store.tables

    class Failing:
        def __getattr__(self, name: str) -> Any:
            def fail(*_args: Any, **_kwargs: Any) -> None:
                error = HttpResponseError("Internal Server Error")
                error.status_code = 500
                raise error

            return fail

    def tables(name: str) -> Any:
        return Failing() if name == "alertindex" else real(name)

    gate = NextLookGate(tables)  # type: ignore[arg-type]
    with pytest.raises(HttpResponseError):
        gate.lower_next_look(NOW)
    with pytest.raises(HttpResponseError):
        gate.raise_next_look(NOW, None)


# --- acknowledgements -----------------------------------------------------------------------


def test_acknowledgements_by_ca_and_by_tenant(store: TableStore) -> None:
    until = NOW + timedelta(days=3)
    store.acks.record("tenant-a", ["ab" * 32], "alice", "registered by hand", NOW, until=until)
    # A tenant's acknowledgement: one row per CA on record then, never a "*" for later ones.
    done = store.acks.record(
        "tenant-b", ["cd" * 32, "ef" * 32], "bob", None, NOW + timedelta(hours=1), scope="tenant"
    )
    assert done == ["cd" * 32, "ef" * 32]
    of_a = store.acks.of_tenant("tenant-a")
    assert list(of_a) == ["ab" * 32]
    assert of_a["ab" * 32].to_json() == {
        "by": "alice",
        "at": "2020-08-04T09:00:00Z",
        "note": "registered by hand",
        "until": "2020-08-07T09:00:00Z",
        "scope": "certificate",
    }
    of_b = store.acks.of_tenant("tenant-b")
    assert sorted(of_b) == ["cd" * 32, "ef" * 32] and of_b["cd" * 32].note is None
    assert of_b["cd" * 32].at == NOW + timedelta(hours=1) and of_b["cd" * 32].by == "bob"
    assert of_b["cd" * 32].scope == "tenant"
    assert store.acks.of_tenant("tenant-c") == {}
    everyone = store.acks.by_tenant()
    assert everyone == {"tenant-a": of_a, "tenant-b": of_b}
    assert store.acks.withdraw("tenant-b", ["ef" * 32, "00" * 32]) == ["ef" * 32]
    assert list(store.acks.of_tenant("tenant-b")) == ["cd" * 32]
    assert store.acks.withdraw("tenant-b", None) == ["cd" * 32]
    assert store.acks.of_tenant("tenant-b") == {}


def test_an_acknowledgement_is_in_force_until_its_end_and_a_legacy_one_only_for_older_cas(
    store: TableStore,
) -> None:
    from shared.storage.acks import Acknowledgement

    ack = Acknowledgement("alice", NOW, None, NOW + timedelta(days=1))
    assert ack.covers(NOW - timedelta(days=400), NOW + timedelta(hours=23))
    assert not ack.covers(NOW - timedelta(days=400), NOW + timedelta(days=1))
    legacy = Acknowledgement.from_row({"RowKey": "*", "by": "bob", "at": "2020-08-04T09:00:00Z"})
    assert legacy.scope == "legacy-tenant"
    assert legacy.covers(NOW - timedelta(days=1), NOW)
    assert legacy.covers(NOW, NOW)  # issued at the very moment of the ack: covered
    assert not legacy.covers(NOW + timedelta(days=1), NOW)  # issued after the ack
    # A per-CA row of an earlier version names no scope: it is a certificate's.
    older = Acknowledgement.from_row(
        {"RowKey": "ab" * 32, "by": "bob", "at": "2020-08-04T09:00:00Z"}
    )
    assert older.scope == "certificate" and older.to_json()["scope"] == "certificate"


# --- registration snapshots ---------------------------------------------------------------------

HUB = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/iothubs/fleet-hub"
DPS = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/provisioningservices/dps"


def listed(n: int, verified: bool = True, body: bool = True, name: str = "") -> Registered:
    sha256 = f"{n:064x}" if body else None
    return Registered(name or f"ca-{n}", f"{n:040X}", sha256, verified)


def listing(*certs: Registered, target: str = HUB, name: str = "Fleet-Hub") -> Listing:
    return Listing(target, "iot-hub", name, "iot-hub-certificates", certs)


def test_a_listing_becomes_its_targets_snapshot(store: TableStore) -> None:
    regs = store.registrations
    regs.add_thumbprint(f"{1:040x}", f"{1:064x}", "tenant-1")  # any spelling: upper-cased
    regs.add_thumbprint(f"{2:040X}", f"{2:064x}", "tenant-2")
    assert regs.record_listing(listing(listed(1), listed(3, body=False)), "live", NOW) == {
        "tenant-1"
    }
    (snap,) = regs.snapshots()
    assert (snap.target, snap.kind, snap.display_name) == (HUB, "iot-hub", "Fleet-Hub")
    assert (snap.seen_at, snap.source, snap.error) == (NOW, "live", None)
    assert snap.entries == (
        TargetEntry(f"{1:040X}", f"{1:064x}", True, "ca-1"),
        TargetEntry(f"{3:040X}", None, True, "ca-3"),
    )
    assert regs.target_rows() == [
        {
            "target": HUB,
            "kind": "iot-hub",
            "display_name": "Fleet-Hub",
            "seen_at": "2020-08-04T09:00:00Z",
            "source": "live",
            "format": "iot-hub-certificates",
            "groups_seen_at": None,
            "groups_source": None,
            "state": "ok",
            "certificates": 2,
            "error": None,
        }
    ]
    # Replaced: tenant 1's CA now unverified, tenant 2's added; tenant 3 is nobody's.
    later = NOW + timedelta(hours=1)
    replacement = listing(listed(1, verified=False), listed(2), listed(3, body=False))
    assert regs.record_listing(replacement, "upload", later) == {"tenant-1", "tenant-2"}
    (snap,) = regs.snapshots()
    assert [(e.thumbprint, e.verified) for e in snap.entries] == [
        (f"{1:040X}", False),
        (f"{2:040X}", True),
        (f"{3:040X}", True),
    ]
    assert (snap.seen_at, snap.source) == (later, "upload")
    # The same again changes nothing and concerns nobody.
    assert regs.record_listing(replacement, "upload", later) == set()
    # An older listing processed late does not replace the newer one.
    assert regs.record_listing(listing(listed(4)), "live", NOW) == set()
    (snap,) = regs.snapshots()
    assert len(snap.entries) == 3 and snap.seen_at == later


def test_an_empty_listing_forgets_every_certificate(store: TableStore) -> None:
    regs = store.registrations
    regs.add_thumbprint(f"{1:040X}", f"{1:064x}", "tenant-1")
    regs.record_listing(listing(listed(1)), "live", NOW)
    assert regs.record_listing(listing(), "live", NOW + timedelta(hours=1)) == {"tenant-1"}
    (snap,) = regs.snapshots()
    assert snap.entries == () and regs.target_rows()[0]["certificates"] == 0


def test_a_large_listing_is_kept_whole_and_a_huge_one_refused(store: TableStore) -> None:
    regs = store.registrations
    big = listing(*(listed(n, name="n" * 200) for n in range(160)))  # > 30,000 characters
    regs.record_listing(big, "live", NOW)
    (snap,) = regs.snapshots()
    assert len(snap.entries) == 160 and snap.entries[-1] == TargetEntry(
        f"{159:040X}", f"{159:064x}", True, "n" * 200
    )
    huge = listing(*(listed(n, name="n" * 2000) for n in range(400)))  # ~830 KB
    with pytest.raises(ValueError, match="too large to record"):
        regs.record_listing(huge, "live", NOW + timedelta(hours=1))
    assert len(regs.snapshots()[0].entries) == 160  # the last good snapshot stands


def test_a_target_that_cannot_be_read_keeps_its_snapshot_until_a_live_read(
    store: TableStore,
) -> None:
    regs = store.registrations
    never_read = "/subscriptions/s/resourcegroups/rg/providers/microsoft.devices/iothubs/a-hub"
    regs.record_target_error(never_read.upper(), "iot-hub", "", "not-found", "404", NOW)
    regs.record_listing(listing(listed(1)), "live", NOW)
    regs.record_target_error(HUB.upper(), "iot-hub", "Fleet-Hub", "forbidden", "403 <b>", NOW)
    first, second = regs.snapshots()  # by target
    assert first.target == never_read and first.display_name == never_read
    assert (first.seen_at, first.entries, first.error) == (None, (), ("not-found", "404"))
    assert second.target == HUB and len(second.entries) == 1
    assert second.error == ("forbidden", "403 <b>")
    rows = regs.target_rows()
    assert [r["target"] for r in rows] == [never_read, HUB]
    assert rows[0]["certificates"] == 0 and rows[0]["seen_at"] is None
    assert rows[1]["error"] == {"code": "forbidden", "message": "403 <b>"}
    failures = {r["RowKey"]: r for r in store.iter_rows("uploadfailures")}
    hub_failure = failures[f"target|{HUB.replace('/', '%2F')}"]
    assert hub_failure["PartitionKey"] == "2020-08-04"
    assert {k: hub_failure[k] for k in ("name", "target", "kind", "status")} == {
        "name": "Fleet-Hub",
        "target": HUB,
        "kind": "registration-target",
        "status": "unreadable-target",
    }
    assert (hub_failure["error_code"], hub_failure["error_message"]) == ("forbidden", "403 <b>")
    assert hub_failure["processed_at"] == "2020-08-04T09:00:00Z"
    # An uploaded listing is not a live read: the error stays on record.
    regs.record_listing(listing(listed(1)), "upload", NOW + timedelta(hours=1))
    assert regs.snapshots()[1].error == ("forbidden", "403 <b>")
    regs.record_listing(listing(listed(1)), "live", NOW + timedelta(hours=2))
    assert regs.snapshots()[1].error is None and regs.target_rows()[1]["error"] is None


# --- the report read model ------------------------------------------------------------------------

T_OLD = "5eed0001-1111-4222-8333-944445555666"
T_ACKED = "aeed0002-1111-4222-8333-944445555666"  # sorts after "XX~XX" too


def record(store: TableStore, name: str, data: bytes, at: datetime) -> None:
    result = analyze_bytes(name, data, RULES, at)
    assert store.uploads.record_upload(result.source, f"etag-{name}", result, at)


def test_the_report_joins_what_the_tables_hold(
    store: TableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Store an upload's certificates past the first in rows of their own, one a row.
    monkeypatch.setattr(uploads_module, "INLINE_CERTIFICATES", 1)
    monkeypatch.setattr(uploads_module, "CERTIFICATES_PER_ROW", 1)
    day1, day2 = datetime(2020, 7, 30, tzinfo=UTC), datetime(2020, 7, 31, tzinfo=UTC)
    old = samples.tenant_ca(T_OLD, AFFECTED_START, key_seed=11)
    new = samples.tenant_ca(T_OLD, datetime(2020, 8, 1, tzinfo=UTC), key_seed=12)
    acked = samples.tenant_ca(T_ACKED, AFFECTED_START, key_seed=13)
    acked_device = samples.device_certificate(acked, key_seed=14)
    pca = samples.azure_sphere_pca()
    record(store, "b.pem", samples.pem(old.der) + samples.pem(pca.der), day1)
    record(store, "a.cer", old.der, day2)
    record(store, "new.cer", new.der, day2)
    record(store, "acked.pem", samples.pem(acked.der) + samples.pem(acked_device.der), day1)
    record(store, "bad.cer", b"junk", day1)
    sha = {c: hashlib.sha256(c.der).hexdigest() for c in (old, new, acked, acked_device, pca)}
    hub = listing(
        Registered("old-ca", sha1_of(old), sha[old], True),
        Registered("new-ca", sha1_of(new), None, False),
    )
    store.registrations.record_listing(hub, "live", day2)
    dps = listing(*hub.certificates, target=DPS, name="Fleet-DPS")
    store.registrations.record_listing(dps, "live", day2)
    store.tenants.refresh_tenant(T_OLD)
    store.acknowledge(T_ACKED, None, "bob", None, day2)  # every CA of the tenant
    store.acknowledge(T_OLD, sha[new], "alice", "registered by hand", day2)

    report = store.report()
    assert report["schema"] == "ca-watch/report/v1"
    certificates = {c["sha256_fingerprint"]: c for c in report["certificates"]}
    # By tenant, oldest first; what belongs to no tenant last.
    assert [c["sha256_fingerprint"] for c in report["certificates"]] == [
        sha[old],
        sha[new],
        sha[acked],
        sha[acked_device],
        sha[pca],
    ]
    first = certificates[sha[old]]
    assert first["sources"] == ["a.cer", "b.pem"]
    assert (first["first_seen"], first["last_seen"]) == (iso(day1), iso(day2))
    # Renewed, but the renewal is not verified in the hub yet: pending there, so not
    # resolved (the refresh before the listing had resolved it by today's rule).
    assert first["resolved_by"] is None and sorted(first["renewal_pending"]) == [HUB, DPS]
    assert first["acknowledged"] is None
    assert len(first["registrations"]) == 2  # the hub's and the DPS's, by target
    assert first["registrations"][0] == {
        "target": HUB,
        "kind": "iot-hub",
        "display_name": "Fleet-Hub",
        "name": "old-ca",
        "verified": True,
        "seen_at": iso(day2),
        "source": "live",
    }
    renewed = certificates[sha[new]]
    assert renewed["acknowledged"] == {
        "by": "alice",
        "at": iso(day2),
        "note": "registered by hand",
        "until": None,
        "scope": "certificate",
    }
    assert renewed["registrations"][0]["verified"] is False
    assert renewed["registrations"][0]["name"] == "new-ca"
    assert certificates[sha[acked]]["acknowledged"] == {
        "by": "bob",
        "at": iso(day2),
        "note": None,
        "until": None,
        "scope": "tenant",
    }
    assert certificates[sha[acked]]["renewal_pending"] == []
    # A device certificate is no tenant CA: the tenant's acknowledgement is not about it.
    device = certificates[sha[acked_device]]
    assert device["acknowledged"] is None and "renewal_pending" not in device
    assert certificates[sha[pca]]["sources"] == ["b.pem"]
    assert certificates[sha[pca]]["registrations"] == []

    assert [t["target"] for t in report["targets"]] == [HUB, DPS]
    uploads = {u["name"]: u for u in report["uploads"]}
    assert [u["name"] for u in report["uploads"]] == sorted(uploads)
    assert uploads["b.pem"] == {
        "name": "b.pem",
        "etag": "etag-b.pem",
        "status": "analyzed",
        "error": None,
        "format": "pem",
        "certificates": [sha[old], sha[pca]],
        "processed_at": iso(day1),
        "listing_outcomes": [],
        "retired": None,
    }
    assert uploads["acked.pem"]["certificates"] == [sha[acked], sha[acked_device]]
    assert uploads["bad.cer"]["error"] == {
        "code": "not-a-certificate",
        "message": "base64 text that does not decode to DER",
    }
    assert uploads["bad.cer"]["status"] == "unreadable" and uploads["bad.cer"]["format"] is None
    assert uploads["bad.cer"]["certificates"] == []


def sha1_of(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der).hexdigest().upper()  # noqa: S324 - a thumbprint


def test_a_transactions_worth_of_sent_rows_does_not_hold_back_the_rest(
    ledger_table: TableClient,
) -> None:
    """A stage of 150 items of which the first 100 (one transaction's worth) are already
    sent: the other 50 are still claimed."""
    keys = [key(n) for n in range(150)]
    first = fresh(ledger_table, keys)
    first.claim(keys[:100], "run-a", NOW)
    first.mark_sent(keys[:100], NOW)
    later = fresh(ledger_table, keys)
    assert later.claim(keys, "run-b", NOW + timedelta(days=1)) == set(keys[100:])
