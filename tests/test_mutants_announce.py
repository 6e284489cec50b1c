"""Kill tests for announcing resolutions, acks and retirements (shared/app/announce.py,
issue 21: "Every resolution is announced") on a real Azurite, through the alert pass: each
notice once per channel, grouped by the recipients its tenant is routed to, never sent in a
plan, kept pending until every channel has it; a failed or unclear send is retried by a later
pass on that channel alone; a claim held by another run, or won by one in a race, is not
sent twice. Channels are real: the outbox on disk, and Teams on a loopback receiver
(tests/test_channel_teams.py).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_channel_teams import Receiver, Reply, receiver  # noqa: F401 - the fixture
from test_mutants_notices import EVIDENCE, NEW, OLD  # one live target's evidence

from shared.alerts.model import LedgerEntry, LedgerKey
from shared.alerts.notice_message import Notice
from shared.alerts.rules import load_rules
from shared.app.alert_pass import run_alerts
from shared.app.announce import announce
from shared.app.delivery import PassState
from shared.app.report_writer import SentStage, sent_stages
from shared.channels import Channel
from shared.channels.outbox import OutboxChannel
from shared.channels.smtp import SmtpChannel
from shared.channels.teams import TeamsChannel
from shared.local.azurite import Azurite
from shared.settings import Settings
from shared.storage.connections import table_service
from shared.storage.ledger import Ledger
from shared.storage.store import TableStore

RULES = load_rules()
NOW = datetime(2020, 8, 10, 9, tzinfo=UTC)
TENANT_A = "a11c1ea2-1111-4222-8333-944445555666"
TENANT_B = "b22c1ea2-1111-4222-8333-944445555666"
OTHER_OLD = f"{3:064x}"  # tenant B's CA


@pytest.fixture
def store(azurite: Azurite) -> Iterator[TableStore]:
    """The app's store on tables of its own (a fresh name prefix on the shared Azurite)."""
    service = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, RULES, prefix=f"a{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    yield store
    store.delete_all()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        alert_outbox_dir=str(tmp_path / "outbox"),
        alert_email_to=("ops@example.com",),
        alert_email_routes={TENANT_B: ("b-team@example.com",)},
    )


def resolved(tenant: str = TENANT_A, at: datetime = NOW - timedelta(hours=1)) -> Notice:
    return Notice(
        tenant,
        OLD if tenant == TENANT_A else OTHER_OLD,
        "resolved",
        NEW,
        at,
        subject=f"CN=Microsoft Azure Sphere {tenant}",
        renewed=NEW,
        renewed_thumbprint="AB" * 20,
        basis="registration",
        evidence=EVIDENCE,
    )


def acked(tenant: str = TENANT_A) -> Notice:
    return Notice(tenant, OLD, "acknowledged", "2020-08-10T07:00:00Z", NOW, by="ops")


def outbox(settings: Settings) -> OutboxChannel:
    return OutboxChannel(settings.alert_outbox_dir, clock=lambda: NOW)


def written(settings: Settings) -> list[dict[str, Any]]:
    """The notices the outbox holds, oldest first (not the self-health messages)."""
    files = sorted(Path(settings.alert_outbox_dir).glob("*.json"))
    messages = [json.loads(f.read_text()) for f in files]
    return [m for m in messages if "CA Rotation Watch: notice: " in m["subject"]]


def run(
    store: TableStore,
    settings: Settings,
    channels: dict[str, Channel] | None,
    now: datetime = NOW,
    **options: Any,
) -> dict[str, Any]:
    return run_alerts(
        store=store, settings=settings, rules=RULES, now=now, channels=channels, **options
    )


def test_no_notice_pending_announces_nothing(store: TableStore, settings: Settings) -> None:
    document = run(store, settings, {"outbox": outbox(settings)})
    assert document["notices"] == [] and document["messages"] == []
    assert written(settings) == []


def test_a_notice_is_sent_once_with_its_evidence_and_then_let_go(
    store: TableStore, settings: Settings
) -> None:
    notice = resolved()
    store.notices.add(notice)
    first = run(store, settings, {"outbox": outbox(settings)})
    assert first["notices"] == [
        {
            "tenant_id": TENANT_A,
            "certificate": OLD,
            "kind": "resolved",
            "renewed": NEW,
            "basis": "registration",
            "evidence": list(EVIDENCE),
            "by": None,
            "channels": {"outbox": "sent"},
        }
    ]
    (message,) = written(settings)
    assert first["messages"] == [
        {
            "channel": "outbox",
            "recipients": ["ops@example.com"],
            "subject": message["subject"],
            "items": 1,
            "omitted": 0,
            "provider_id": f"{message['id']}.json",
            "error": None,
            "outcome": "sent",
            "notices": 1,
        }
    ]
    assert f"resolved: tenant {TENANT_A}" in message["subject"]
    assert "Fleet-Hub" in message["text"] and "live read at 2020-08-10T09:00:00Z" in message["text"]
    assert message["recipients"] == ["ops@example.com"]
    assert store.notices.pending() == []  # let go: every channel has it
    assert run(store, settings, {"outbox": outbox(settings)})["notices"] == []
    assert len(written(settings)) == 1


def test_the_ledger_names_the_tenant_and_the_run_that_sent_a_notice(
    store: TableStore, settings: Settings
) -> None:
    """The fleet report lists what was sent to each tenant from the ledger, and the ledger
    row names the pass (the run_id of its alerts/v1 document) that claimed it."""
    store.notices.add(resolved())
    document = run(store, settings, {"outbox": outbox(settings)}, run_id="pass-0810")
    assert sent_stages(store) == [SentStage(TENANT_A, OLD, "notice/resolved", NEW, "outbox", NOW)]
    (row,) = store.table("ledger").list_entities()
    assert row["claimed_by"] == document["run_id"] == "pass-0810"


def test_an_email_channel_without_recipients_says_which_setting_to_fix(
    store: TableStore, settings: Settings
) -> None:
    store.notices.add(resolved())
    nobody = dataclasses.replace(settings, alert_email_to=(), alert_email_routes={})
    # Nothing listens on port 1: a send that got that far would fail otherwise.
    smtp = SmtpChannel("127.0.0.1", 1, sender="ca-watch@example.com")
    document = run(store, nobody, {"smtp": smtp})
    assert document["notices"][0]["channels"] == {"smtp": "failed"}
    (message,) = document["messages"]
    assert message["error"] == "smtp: no recipients (set ALERT_EMAIL_TO)"


def test_a_plan_sends_nothing_and_keeps_the_notice(store: TableStore, settings: Settings) -> None:
    store.notices.add(acked())
    plan = run(store, settings, {"outbox": outbox(settings)}, dry_run=True)
    (entry,) = plan["notices"]
    assert entry["channels"] == {"outbox": "planned"} and entry["by"] == "ops"
    assert plan["messages"] == [] and written(settings) == []
    # A plan without channels (`ca-watch alerts plan`) names the configured ones.
    assert run(store, settings, None, dry_run=True)["notices"] == [entry]
    assert store.notices.pending() == [acked()]
    assert list(store.table("ledger").list_entities()) == []  # nothing claimed


def test_notices_are_grouped_by_the_recipients_of_their_tenant(
    store: TableStore,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
) -> None:
    for notice in (resolved(TENANT_A), acked(TENANT_A), resolved(TENANT_B)):
        store.notices.add(notice)
    channels: dict[str, Channel] = {
        "outbox": outbox(settings),
        "teams": TeamsChannel(receiver.url),
    }
    document = run(store, settings, channels)
    assert [n["channels"] for n in document["notices"]] == [{"outbox": "sent", "teams": "sent"}] * 3
    mail = sorted((m["recipients"], m["notices"]) for m in document["messages"][:2])
    assert mail == [(["b-team@example.com"], 1), (["ops@example.com"], 2)]
    # Teams names nobody: one card for all three.
    (card,) = [m for m in document["messages"] if m["channel"] == "teams"]
    assert (card["recipients"], card["items"], card["notices"]) == ([], 3, 3)
    assert len(receiver.cards) == 1
    assert store.notices.pending() == []


def test_a_failed_channel_keeps_the_notice_for_that_channel_alone(
    store: TableStore,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
) -> None:
    store.notices.add(resolved())
    receiver.replies = [Reply(400, "bad card")]  # refused: nothing posted
    channels: dict[str, Channel] = {
        "outbox": outbox(settings),
        "teams": TeamsChannel(receiver.url, max_attempts=1),
    }
    first = run(store, settings, channels)
    (entry,) = first["notices"]
    assert entry["channels"] == {"outbox": "sent", "teams": "failed"}
    (teams,) = [m for m in first["messages"] if m["channel"] == "teams"]
    assert teams["outcome"] == "failed" and "HTTP 400" in teams["error"]
    assert store.notices.pending() == [resolved()]  # not every channel has it
    # A day later (a refusal waits a day): Teams alone, the outbox is not written again.
    later = run(store, settings, channels, NOW + timedelta(days=1, hours=1))
    (entry,) = later["notices"]
    assert entry["channels"] == {"outbox": "sent", "teams": "sent"}
    assert [m["channel"] for m in later["messages"]] == ["teams"]
    assert len(written(settings)) == 1 and len(receiver.cards) == 1
    assert store.notices.pending() == []


def test_an_unclear_send_shows_as_failed_and_is_not_sent_again_at_once(
    store: TableStore,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
) -> None:
    store.notices.add(resolved())
    receiver.replies = [Reply(500, "backend down")]  # the card may have been posted
    channels: dict[str, Channel] = {"teams": TeamsChannel(receiver.url)}
    first = run(store, settings, channels)
    (entry,) = first["notices"]
    assert entry["channels"] == {"teams": "failed"}  # not confirmed
    assert [m["outcome"] for m in first["messages"]] == ["unknown"]
    soon = run(store, settings, channels, NOW + timedelta(minutes=1))
    assert soon["notices"][0]["channels"] == {"teams": "already-sent"}  # backing off
    assert soon["messages"] == [] and receiver.requests == 1


def test_a_channel_with_a_setup_problem_is_not_claimed_and_sends_once_fixed(
    store: TableStore,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
) -> None:
    store.notices.add(resolved())
    unresolved = TeamsChannel("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/s/t)")
    # Teams first: the channel after it is still sent.
    document = run(store, settings, {"teams": unresolved, "outbox": outbox(settings)})
    (entry,) = document["notices"]
    assert entry["channels"] == {"teams": "planned", "outbox": "sent"}
    # (the self-health message, which says what to fix, is not a notice's)
    assert [m["channel"] for m in document["messages"] if "notices" in m] == ["outbox"]
    assert store.notices.pending() == [resolved()]
    fixed = run(store, settings, {"outbox": outbox(settings), "teams": TeamsChannel(receiver.url)})
    assert fixed["notices"][0]["channels"] == {"outbox": "sent", "teams": "sent"}
    assert len(receiver.cards) == 1 and len(written(settings)) == 1


def test_a_claim_another_run_holds_is_left_to_it_until_it_goes_stale(
    store: TableStore, settings: Settings
) -> None:
    notice = resolved()
    store.notices.add(notice)
    other = Ledger(store.table("ledger"))
    key = LedgerKey(TENANT_A, OLD, "notice/resolved", NEW, "outbox")
    assert other.claim([key], "another-run", NOW - timedelta(minutes=2)) == {key}
    held = run(store, settings, {"outbox": outbox(settings)})
    assert held["notices"][0]["channels"] == {"outbox": "already-sent"}
    assert written(settings) == [] and store.notices.pending() == [notice]
    # The other run died: ten minutes after its claim, this one takes over and sends.
    later = run(store, settings, {"outbox": outbox(settings)}, NOW + timedelta(minutes=9))
    assert later["notices"][0]["channels"] == {"outbox": "sent"}
    assert len(written(settings)) == 1


def test_a_notice_a_deployed_version_sent_is_not_sent_again(
    store: TableStore, settings: Settings
) -> None:
    """The ledger key of a notice is (tenant, CA, "notice/<kind>", ref, channel): a notice
    sent before an update, whose row was not yet let go, is not sent again after it."""
    store.notices.add(resolved())
    ledger = Ledger(store.table("ledger"))
    key = LedgerKey(TENANT_A, OLD, "notice/resolved", NEW, "outbox")
    ledger.claim([key], "before-the-update", NOW - timedelta(hours=2))
    ledger.mark_sent([key], NOW - timedelta(hours=2))
    document = run(store, settings, {"outbox": outbox(settings)})
    assert document["notices"][0]["channels"] == {"outbox": "sent"}
    assert document["messages"] == [] and written(settings) == []
    assert store.notices.pending() == []


def test_the_ledgers_own_claim_timeout_decides_a_takeover(
    store: TableStore, settings: Settings
) -> None:
    store.notices.add(resolved())
    key = LedgerKey(TENANT_A, OLD, "notice/resolved", NEW, "outbox")
    Ledger(store.table("ledger")).claim([key], "dead-run", NOW - timedelta(minutes=3))
    quick = Ledger(store.table("ledger"), claim_timeout=timedelta(minutes=2))
    state = PassState(quick, settings, NOW, "this-run", 1, {}, [], [])
    (entry,) = announce(state, store, ["outbox"], {"outbox": outbox(settings)}, False)
    assert entry["channels"] == {"outbox": "sent"}


class _RaceLostLedger(Ledger):
    """A ledger whose read comes just before another run claims every key it read."""

    def read_entries(self, keys: Iterable[LedgerKey]) -> dict[LedgerKey, LedgerEntry]:
        keys = list(keys)
        seen = super().read_entries(keys)
        Ledger(self.table).claim(keys, "the-faster-run", NOW)
        return seen


def test_a_claim_lost_in_a_race_is_not_sent(store: TableStore, settings: Settings) -> None:
    store.notices.add(resolved())
    state = PassState(_RaceLostLedger(store.table("ledger")), settings, NOW, "slow", 1, {}, [], [])
    (entry,) = announce(state, store, ["outbox"], {"outbox": outbox(settings)}, False)
    assert entry["channels"] == {"outbox": "already-sent"}
    assert written(settings) == [] and state.messages == []
    assert store.notices.pending() == [resolved()]


def test_a_pass_out_of_time_claims_but_does_not_send(store: TableStore, settings: Settings) -> None:
    store.notices.add(resolved())
    document = run(store, settings, {"outbox": outbox(settings)}, pass_budget=0.5)
    assert document["notices"][0]["channels"] == {"outbox": "planned"}
    assert document["messages"] == [] and written(settings) == []
    assert store.notices.pending() == [resolved()]
    # Its claim goes stale and a later pass sends.
    later = run(store, settings, {"outbox": outbox(settings)}, NOW + timedelta(minutes=11))
    assert later["notices"][0]["channels"] == {"outbox": "sent"}
