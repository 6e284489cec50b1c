"""The alert pass end to end on a real Azurite: store -> planner -> ledger -> channels.

One Azurite per module (so each xdist worker has its own, on free ports); the tables are
dropped and recreated before each test. Channels are real: the outbox on disk, Teams
against an HTTP receiver on loopback, SMTP against aiosmtpd.
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shared.alerts.model import LedgerKey, TenantCertificate
from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes
from shared.app import handlers
from shared.app.alert_pass import FAILING_ATTEMPTS, run_alerts
from shared.channels.outbox import OutboxChannel
from shared.channels.teams import TeamsChannel
from shared.local import samples
from shared.local.alerts_cmd import add_alert_commands
from shared.local.azurite import Azurite
from shared.local.common import UsageError
from shared.local.silence_cmd import add_silence_commands
from shared.settings import APP_SETTING_NAMES, Settings
from shared.storage.alert_index import (
    INDEX_PARTITIONS,
    LEGACY_OPEN_PARTITION,
    index_partition,
    watch_from,
)
from shared.storage.connections import table_service
from shared.storage.keys import iso
from shared.storage.ledger import Ledger
from shared.storage.store import TableStore

RULES = load_rules()
INCIDENT = "azure-sphere-2020-07"
RENEWAL = f"{INCIDENT}/renewal-available"
ACTIVATION = f"{INCIDENT}/activation"
AFFECTED_START = datetime(2020, 7, 1, tzinfo=UTC)  # inside the 2020 incident window
T_AUG4 = datetime(2020, 8, 4, 9, tzinfo=UTC)
T_AUG18 = datetime(2020, 8, 18, 1, tzinfo=UTC)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def env(azurite: Azurite, outbox_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the function app reads: this Azurite, the outbox channel only."""
    for name in APP_SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CertStorage", azurite.connection_string)
    monkeypatch.setenv("ALERT_CHANNELS", "outbox")
    monkeypatch.setenv("ALERT_OUTBOX_DIR", str(outbox_dir))
    handlers.reset_runtime()
    yield
    handlers.reset_runtime()
    handlers.use_clock(None)


def new_store(azurite: Azurite) -> TableStore:
    return TableStore(table_service({"CertStorage": azurite.connection_string}), RULES)


@pytest.fixture
def store(env: None, azurite: Azurite) -> TableStore:
    store = new_store(azurite)
    store.delete_all()
    store.ensure_tables()
    return store


@pytest.fixture
def settings(outbox_dir: Path) -> Settings:
    return Settings(alert_channels=("outbox",), alert_outbox_dir=str(outbox_dir))


# --- helpers -------------------------------------------------------------------------------


def tenant() -> str:
    return str(uuid.uuid4())


def record_ca(
    store: TableStore, tenant_id: str, not_before: datetime = AFFECTED_START, name: str = ""
) -> str:
    """Upload-and-record a tenant CA the way the blob function does; its SHA-256."""
    issued = samples.tenant_ca(tenant_id, not_before)
    now = max(not_before, AFFECTED_START) + timedelta(days=1)
    result = analyze_bytes(name or f"{tenant_id}-{not_before:%Y%m%d}.cer", issued.der, RULES, now)
    assert store.uploads.record_upload(result.source, uuid.uuid4().hex, result, now)
    return result.certificates[0].sha256


def record_issuer(store: TableStore) -> None:
    """Record the issuer of every sample tenant CA, as an uploaded chain file would."""
    pca = samples.azure_sphere_pca()
    result = analyze_bytes("chain/pca.cer", pca.der, RULES, AFFECTED_START)
    assert store.uploads.record_upload(result.source, uuid.uuid4().hex, result, AFFECTED_START)


def run(store: TableStore, settings: Settings, now: datetime, **kwargs: Any) -> dict[str, Any]:
    return run_alerts(store=store, settings=settings, rules=RULES, now=now, **kwargs)


def outbox(directory: Path) -> list[dict[str, Any]]:
    if not directory.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def alert_records(directory: Path) -> list[dict[str, Any]]:
    return [
        r
        for r in outbox(directory)
        if "operator alert" not in r["subject"] and ": notice:" not in r["subject"]
    ]


def outcomes(document: dict[str, Any], channel: str = "outbox") -> dict[tuple, str]:
    return {
        (i["tenant_id"], i["deadline"], i["stage_key"]): i["channels"][channel]
        for i in document["items"]
    }


def ledger_rows(store: TableStore) -> list[dict[str, Any]]:
    return list(store.iter_rows("ledger"))


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ca-watch")
    commands = parser.add_subparsers(dest="command")
    add_alert_commands(commands)
    add_silence_commands(commands)
    args = parser.parse_args(argv)
    return int(args.handler(args))


# --- DESIGN §4, stage by stage --------------------------------------------------------------


def test_design_example_stage_by_stage(
    store: TableStore, settings: Settings, outbox_dir: Path
) -> None:
    affected = tenant()
    fine = tenant()
    record_ca(store, affected)
    record_ca(store, fine, datetime(2019, 4, 27, 7, 42, tzinfo=UTC))  # expires 2021: quiet

    first = run(store, settings, T_AUG4)
    assert first["schema"] == "ca-watch/alerts/v1" and first["now"] == "2020-08-04T09:00:00Z"
    assert outcomes(first) == {
        (affected, RENEWAL, "1d"): "sent",
        (affected, ACTIVATION, "14d"): "sent",
    }
    (message,) = outbox(outbox_dir)
    assert message["item_count"] == 2 and message["omitted_count"] == 0
    assert f"Tenant {affected}" in message["text"] and fine not in message["text"]
    # Microsoft's date is information; the operator's own deadline has its time left.
    assert "- Renewed tenant CA available from 2020-08-05 (information)" in message["text"]
    assert (
        "* Register the renewed tenant CA before it activates: by 2020-08-18 00:00 UTC, "
        "13 days left" in message["text"]
    )
    assert "azsphere ca list" in message["text"]

    again = run(store, settings, T_AUG4)
    # The index moved the certificate to its next stage (Aug 5, 00:00): the same run
    # again reads nothing, while a plan still lists both as sent.
    assert outcomes(again) == {} and again["messages"] == [] and len(outbox(outbox_dir)) == 1
    plan = run(store, settings, T_AUG4, dry_run=True)
    assert set(outcomes(plan).values()) == {"already-sent"} and len(outcomes(plan)) == 2

    # The activation day: 0d; the renewal milestone is past and says nothing more.
    assert outcomes(run(store, settings, T_AUG18)) == {(affected, ACTIVATION, "0d"): "sent"}
    # Overdue: the Aug 19 reminder, nothing new within the week, then the Aug 26 one.
    overdue = run(store, settings, datetime(2020, 8, 20, tzinfo=UTC))
    assert outcomes(overdue) == {(affected, ACTIVATION, "overdue@2020-08-19"): "sent"}
    assert overdue["items"][0]["stage"] == "overdue"
    later = run(store, settings, datetime(2020, 8, 25, 12, tzinfo=UTC))
    assert outcomes(later) == {} and later["messages"] == []  # next look: Aug 26
    next_week = run(store, settings, datetime(2020, 8, 26, 1, tzinfo=UTC))
    assert outcomes(next_week) == {(affected, ACTIVATION, "overdue@2020-08-26"): "sent"}

    records = outbox(outbox_dir)
    assert [r["item_count"] for r in records] == [2, 1, 1, 1]
    assert all(fine not in r["text"] for r in records)
    assert {r["status"] for r in ledger_rows(store)} == {"sent"} and len(ledger_rows(store)) == 5


def concurrent_runs(
    azurite: Azurite, settings: Settings, outbox_dir: Path, at: datetime, count: int
) -> list[dict[str, Any]]:
    """``count`` timer runs released at the same instant, each with its own clients."""
    barrier = threading.Barrier(count)
    documents: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    def one_run() -> None:
        own_store = new_store(azurite)
        channels = {"outbox": OutboxChannel(outbox_dir, clock=lambda: at)}
        try:
            barrier.wait(10)
            documents.append(run(own_store, settings, at, channels=channels))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(documents) == count
    return documents


def test_two_runs_at_once_send_each_key_once(
    azurite: Azurite, store: TableStore, settings: Settings, outbox_dir: Path
) -> None:
    tenants = [tenant() for _ in range(6)]
    for t in tenants:
        record_ca(store, t)
    for moment, due_per_tenant in ((T_AUG4, 2), (T_AUG18, 1)):
        documents = concurrent_runs(azurite, settings, outbox_dir, moment, 4)
        seen = [outcomes(d) for d in documents]
        keys = set().union(*seen)
        assert len(keys) == 6 * due_per_tenant
        for key in keys:
            # A run that reads the alert index after the sender moved that certificate's
            # row on to its next look does not list the item at all (None): it is no
            # longer due for that run. That is not a second send, and it happens.
            states = [s.get(key) for s in seen]
            assert states.count("sent") == 1, (key, states)
            assert set(states) <= {"sent", "already-sent", None}, (key, states)
    expected_items = 6 * 2 + 6 * 1  # Aug 4: two deadlines per tenant; Aug 18: activation
    assert sum(r["item_count"] for r in outbox(outbox_dir)) == expected_items
    rows = ledger_rows(store)
    assert len(rows) == expected_items and {r["status"] for r in rows} == {"sent"}


# --- failures and retries ---------------------------------------------------------------------


class Webhook:
    """A Teams Workflows stand-in on loopback that answers the scripted statuses."""

    def __init__(self, statuses: list[int], default: int = 202) -> None:
        self.statuses, self.default = statuses, default
        self.requests: list[dict[str, Any]] = []
        self.sizes: list[int] = []  # bytes on the wire, what Teams' 28 KB limit applies to
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                webhook.requests.append(json.loads(raw))
                webhook.sizes.append(len(raw))
                status = webhook.statuses.pop(0) if webhook.statuses else webhook.default
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,))
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/x?sig=secret"

    def channel(self) -> TeamsChannel:
        return TeamsChannel(self.url, max_attempts=1, sleep=lambda _: None, timeout=5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook([])
    yield hook
    hook.close()


def test_failed_send_is_retried_after_backoff_and_never_doubled(
    store: TableStore, settings: Settings, webhook: Webhook
) -> None:
    webhook.statuses[:] = [429]  # not posted for sure: retried on the ledger's backoff
    affected = tenant()
    record_ca(store, affected)
    teams = {"teams": webhook.channel()}

    first = run(store, settings, T_AUG4, channels=teams)
    assert set(outcomes(first, "teams").values()) == {"failed"}
    assert "429" in first["messages"][0]["error"] and "secret" not in first["messages"][0]["error"]
    rows = ledger_rows(store)
    assert {(r["status"], r["attempts"]) for r in rows} == {("failed", 1)}
    assert {r["next_attempt_at"] for r in rows} == {iso(T_AUG4 + timedelta(minutes=5))}

    waiting = run(store, settings, T_AUG4 + timedelta(minutes=1), channels=teams)
    assert outcomes(waiting, "teams") == {}  # rescheduled to its backoff: not even read
    assert waiting["messages"] == [] and len(webhook.requests) == 1  # backing off: no send

    retry = run(store, settings, T_AUG4 + timedelta(minutes=6), channels=teams)
    assert set(outcomes(retry, "teams").values()) == {"sent"}
    assert len(webhook.requests) == 2
    card = webhook.requests[1]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert affected.replace("-", "\\\\-") in json.dumps(card)  # Markdown-escaped dashes

    done = run(store, settings, T_AUG4 + timedelta(minutes=30), channels=teams)
    assert outcomes(done, "teams") == {}  # sent: nothing to look at before the next stage
    assert len(webhook.requests) == 2
    assert {r["status"] for r in ledger_rows(store)} == {"sent"}


def test_one_channel_failing_does_not_stop_another(
    store: TableStore, settings: Settings, webhook: Webhook, outbox_dir: Path
) -> None:
    webhook.default = 400  # not retryable: recorded as failed with a long backoff
    record_ca(store, tenant())
    channels = {
        "teams": webhook.channel(),
        "outbox": OutboxChannel(outbox_dir, clock=lambda: T_AUG4),
    }
    document = run(store, settings, T_AUG4, channels=channels)
    assert {i["channels"]["teams"] for i in document["items"]} == {"failed"}
    assert {i["channels"]["outbox"] for i in document["items"]} == {"sent"}
    assert len(outbox(outbox_dir)) == 1
    failed = [r for r in ledger_rows(store) if r["channel"] == "teams"]
    assert {r["next_attempt_at"] for r in failed} == {iso(T_AUG4 + timedelta(hours=24))}


def test_stale_claim_is_taken_over_live_claim_is_not(store: TableStore) -> None:
    key = LedgerKey("t", "ab" * 32, ACTIVATION, "14d", "outbox")
    crashed = Ledger(store.table("ledger"))
    crashed.read_entries([key])
    assert crashed.claim([key], "run-a", T_AUG4) == {key}  # and then the host died

    early = Ledger(store.table("ledger"))
    early.read_entries([key])
    assert early.claim([key], "run-b", T_AUG4 + timedelta(minutes=5)) == set()
    late = Ledger(store.table("ledger"))
    assert late.claim([key], "run-c", T_AUG4 + timedelta(minutes=11)) == {key}  # unread: per row
    (row,) = ledger_rows(store)
    assert row["claimed_by"] == "run-c" and row["status"] == "claimed"


def test_items_cut_by_the_teams_size_limit_go_in_the_next_run(
    store: TableStore, settings: Settings, webhook: Webhook, outbox_dir: Path
) -> None:
    for n in range(30):
        index_row(store, tenant(), f"{n:064x}")
    due = 30 * 2
    channels = {"teams": webhook.channel(), "outbox": OutboxChannel(outbox_dir)}
    first = run(store, settings, T_AUG4, channels=channels)
    teams_message = next(m for m in first["messages"] if m["channel"] == "teams")
    listed, omitted = teams_message["items"], teams_message["omitted"]
    assert 0 < listed < due and listed + omitted == due
    card = json.dumps(webhook.requests[0])
    assert f"{omitted} alerts" in card and "folded" in card and webhook.sizes[0] < 28_000
    states = [i["channels"]["teams"] for i in first["items"]]
    assert states.count("sent") == listed and states.count("planned") == omitted
    teams_rows = [r for r in ledger_rows(store) if r["channel"] == "teams"]
    assert len(teams_rows) == listed  # the cut items were released: no row left behind
    # Mail-sized channels are not cut at 28 KB: the outbox got everything at once.
    (record,) = outbox(outbox_dir)
    assert record["item_count"] == due and record["omitted_count"] == 0

    for _ in range(10):
        states = [
            i["channels"]["teams"] for i in run(store, settings, T_AUG4, channels=channels)["items"]
        ]
        if "planned" not in states:
            break
    sent_per_card = [  # one Container per tenant; one coloured line per deadline in it
        sum(
            1
            for b in r["attachments"][0]["content"]["body"]
            if b["type"] == "Container"
            for line in b["items"]
            if "color" in line
        )
        for r in webhook.requests
    ]
    assert sum(sent_per_card) == due  # each item in exactly one card
    teams_rows = [r for r in ledger_rows(store) if r["channel"] == "teams"]
    assert len(teams_rows) == due and {r["status"] for r in teams_rows} == {"sent"}
    assert len(outbox(outbox_dir)) == 1


def index_row(
    store: TableStore, tenant_id: str, sha: str, subject: str | None = None, ok: bool = False
) -> str:
    """A tenant CA written straight into tenantcas and indexed (bulk and hostile cases)."""
    cert = TenantCertificate(
        tenant_id=tenant_id,
        sha256=sha,
        sha1_thumbprint=sha[:40].upper(),
        subject=subject or f"C=US, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant_id}",
        not_before=AFFECTED_START,
        not_after=AFFECTED_START + timedelta(days=730),
        verdict="ok" if ok else "affected",
    )
    store.table("tenantcas").upsert_entity(
        {
            "PartitionKey": tenant_id,
            "RowKey": sha,
            "sha1_thumbprint": cert.sha1_thumbprint,
            "subject": cert.subject,
            "not_before": iso(cert.not_before),
            "not_after": iso(cert.not_after),
            "verdict": cert.verdict,
        }
    )
    store.tenants.refresh_tenant(tenant_id)
    assert any(
        r["sha256"] == sha
        for r in store.table("alertindex").query_entities(
            "PartitionKey eq @pk", parameters={"pk": index_partition(tenant_id)}
        )
    ), watch_from(cert, RULES)
    return sha


# --- resolution ---------------------------------------------------------------------------------


def test_renewed_ca_on_record_stops_that_tenants_alerts(
    store: TableStore, settings: Settings, outbox_dir: Path
) -> None:
    renewed, waiting = tenant(), tenant()
    old = record_ca(store, renewed)
    record_ca(store, waiting)
    assert {i["tenant_id"] for i in run(store, settings, T_AUG4)["items"]} == {renewed, waiting}

    # With the issuer on record (`azsphere ca download-chain`), the renewal is authenticated.
    record_issuer(store)
    new = record_ca(store, renewed, datetime(2020, 8, 5, tzinfo=UTC))
    document = run(store, settings, T_AUG18)
    assert {i["tenant_id"] for i in document["items"]} == {waiting}
    assert renewed not in alert_records(outbox_dir)[-1]["text"]
    resolved = {c["sha256_fingerprint"]: c["resolved_by"] for c in store.report()["certificates"]}
    assert resolved[old] == new


def test_ack_stops_alerts_and_unknown_reference_is_a_usage_error(
    store: TableStore, settings: Settings, outbox_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acked, other = tenant(), tenant()
    sha = record_ca(store, acked)
    record_ca(store, other)
    thumbprint = next(
        c["sha1_thumbprint"]
        for c in store.report()["certificates"]
        if c["sha256_fingerprint"] == sha
    )
    assert cli(["ack", thumbprint, "--by", "alice", "--note", "registered by hand"]) == 0
    assert f"tenant {acked}" in capsys.readouterr().out

    document = run(store, settings, T_AUG4)
    assert {i["tenant_id"] for i in document["items"]} == {other}
    (ack,) = [
        c["acknowledged"] for c in store.report()["certificates"] if c["sha256_fingerprint"] == sha
    ]
    assert ack["by"] == "alice" and ack["note"] == "registered by hand"

    assert cli(["ack", other, "--by", "bob"]) == 0  # a tenant id: every CA of the tenant
    assert run(store, settings, T_AUG18)["items"] == []
    with pytest.raises(UsageError, match="no tenant CA on record"):
        cli(["ack", "00" * 20, "--by", "alice"])
    with pytest.raises(UsageError, match="no tenant CA on record"):
        cli(["ack", tenant(), "--by", "alice"])


# --- channels end to end -------------------------------------------------------------------------


class LoopbackController(Controller):
    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def mail_relay() -> Iterator[tuple[Mailbox, int]]:
    """A loopback SMTP relay: its mailbox and port."""
    mailbox = Mailbox()
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def smtp_settings(port: int, **values: Any) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        alert_email_from="ca-watch@example.com",
        **values,
    )


def test_smtp_end_to_end_with_per_tenant_routing(
    store: TableStore, mail_relay: tuple[Mailbox, int]
) -> None:
    routed, default = tenant(), tenant()
    record_ca(store, routed)
    record_ca(store, default)
    mailbox, port = mail_relay
    settings = smtp_settings(
        port,
        alert_channels=("smtp",),
        alert_email_to=("ops@example.com",),
        alert_email_routes={routed: ("tenant-owner@example.com",)},
    )
    document = run(store, settings, T_AUG4)  # channels built from the settings
    assert {i["channels"]["smtp"] for i in document["items"]} == {"sent"}
    by_rcpt = {tuple(rcpts): body for rcpts, body in mailbox.messages}
    assert set(by_rcpt) == {("tenant-owner@example.com",), ("ops@example.com",)}
    assert routed in by_rcpt[("tenant-owner@example.com",)]
    assert default not in by_rcpt[("tenant-owner@example.com",)]
    assert default in by_rcpt[("ops@example.com",)]
    assert "text/html" in by_rcpt[("ops@example.com",)]

    assert run(store, settings, T_AUG4)["messages"] == []
    assert len(mailbox.messages) == 2


def test_an_email_channel_without_recipient_raises_an_operator_alert(
    store: TableStore, outbox_dir: Path, mail_relay: tuple[Mailbox, int]
) -> None:
    routed, stray = tenant(), tenant()
    record_ca(store, routed)
    record_ca(store, stray)
    mailbox, port = mail_relay
    settings = smtp_settings(
        port,
        alert_channels=("smtp", "outbox"),
        alert_outbox_dir=str(outbox_dir),
        alert_email_routes={routed: ("owner@example.com",)},
    )  # no ALERT_EMAIL_TO: the stray tenant has no recipient
    document = run(store, settings, T_AUG4)
    problems = {p["problem"]: p for p in document["self_health"]}
    problem = problems["channel-recipients/smtp"]
    assert "no recipient" in problem["summary"] and "ALERT_EMAIL_TO" in problem["summary"]
    assert problem["channels"] == {"outbox": "sent"}  # told where it can be read
    assert [rcpts for rcpts, _ in mailbox.messages] == [["owner@example.com"]]


def test_alerts_run_warns_when_a_channel_has_no_recipient(
    store: TableStore, outbox_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_ca(store, tenant())
    assert cli(["alerts", "run", "--now", "2020-08-04T09:00:00Z", "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: channel outbox has no recipient" in captured.err
    assert "empty To:" in captured.err and "ALERT_EMAIL_TO" in captured.err
    assert json.loads(captured.out)["schema"] == "ca-watch/alerts/v1"  # stdout stays JSON


def test_injection_in_subject_is_escaped_in_every_form(
    store: TableStore, settings: Settings, outbox_dir: Path
) -> None:
    hostile_tenant = tenant()
    hostile = (
        "C=US, O=Microsoft Corporation, OU=<script>alert(1)</script> **bold** "
        f"[click](https://evil.example) ${{injected}}, CN=Microsoft Azure Sphere {hostile_tenant}"
    )
    index_row(store, hostile_tenant, "cd" * 32, subject=hostile)
    run(store, settings, T_AUG4)
    (record,) = outbox(outbox_dir)
    assert "<script>" not in record["html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in record["html"]
    card = json.dumps(record["teams_payload"], ensure_ascii=False)
    assert "${injected}" not in card and "<script>" not in card
    assert "\\\\*\\\\*bold\\\\*\\\\*" in card  # Markdown escaped (JSON doubles the backslash)
    assert "\\\\[click\\\\]" in card


# --- self-health ----------------------------------------------------------------------------------


def test_failing_uploads_raise_one_operator_alert_per_day(
    store: TableStore, settings: Settings, outbox_dir: Path
) -> None:
    recorded = datetime(2020, 8, 4, 1, tzinfo=UTC)
    bad = analyze_bytes("uploads/<b>bad</b>.cer", b"this is not a certificate", RULES, recorded)
    assert str(bad.status) == "unreadable"
    store.uploads.record_upload(bad.source, "etag-1", bad, recorded)

    def operator_alerts() -> list[dict[str, Any]]:
        return [r for r in outbox(outbox_dir) if "operator alert" in r["subject"]]

    first = run(store, settings, datetime(2020, 8, 4, 2, tzinfo=UTC))
    assert first["self_health"] == [
        {
            "problem": "uploads-failing",
            "summary": "1 upload(s) failed analysis in the last 24 hours",
            "channels": {"outbox": "sent"},
        }
    ]
    (alert,) = operator_alerts()
    assert "uploads/<b>bad</b>.cer" in alert["text"] and "<b>bad" not in alert["html"]
    run(store, settings, datetime(2020, 8, 4, 10, tzinfo=UTC))
    assert len(operator_alerts()) == 1  # once per day
    run(store, settings, datetime(2020, 8, 5, 0, 30, tzinfo=UTC))
    assert len(operator_alerts()) == 2  # a new day, still within 24 h of the failure
    quiet = run(store, settings, datetime(2020, 8, 6, 2, tzinfo=UTC))
    assert quiet["self_health"] == [] and len(operator_alerts()) == 2


def test_channel_failing_repeatedly_raises_one_operator_alert(
    store: TableStore, settings: Settings, webhook: Webhook, outbox_dir: Path
) -> None:
    webhook.default = 429  # a definite failure each time (a 5xx is unclear: tried twice)
    record_ca(store, tenant())
    channels = {"teams": webhook.channel(), "outbox": OutboxChannel(outbox_dir)}
    moments = [T_AUG4 + timedelta(minutes=m) for m in (0, 6, 17, 18, 60)]
    documents = [run(store, settings, at, channels=channels) for at in moments]
    # At 18 min the failing item is backing off, so that pass does not read it.
    assert [len(d["self_health"]) for d in documents] == [0, 0, 1, 0, 1]
    assert documents[2]["self_health"][0]["channels"] == {"outbox": "sent"}
    assert documents[4]["self_health"][0]["channels"] == {"outbox": "already-sent"}
    operator = [r for r in outbox(outbox_dir) if "operator alert" in r["subject"]]
    assert len(operator) == 1 and "teams" in operator[0]["subject"]
    # Attempts at 0, 6 and 17 min; 18 min is backing off; 60 min retries (a 4th failure)
    # and still raises no second operator alert that day.
    attempts = {r["attempts"] for r in ledger_rows(store) if r["channel"] == "teams"}
    assert attempts == {FAILING_ATTEMPTS + 1}
    assert len(webhook.requests) == FAILING_ATTEMPTS + 1
    assert len(alert_records(outbox_dir)) == 1  # the outbox got the alert itself once


# --- the CLI: alerts run (the registered timer function) and alerts plan -----------------------


def test_alerts_plan_claims_nothing_and_run_uses_the_timer_function(
    store: TableStore, outbox_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    affected = tenant()
    record_ca(store, affected)
    at = "2020-08-04T09:00:00Z"

    assert cli(["alerts", "plan", "--now", at, "--json"]) == 1  # items due: action needed
    plan = json.loads(capsys.readouterr().out)
    assert plan["schema"] == "ca-watch/alerts/v1" and plan["dry_run"] is True
    assert {i["channels"]["outbox"] for i in plan["items"]} == {"planned"}
    assert ledger_rows(store) == [] and outbox(outbox_dir) == []

    assert cli(["alerts", "run", "--now", at, "--json"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["now"] == at and {i["channels"]["outbox"] for i in ran["items"]} == {"sent"}
    assert handlers.last_alert_result == ran
    assert len(outbox(outbox_dir)) == 1 and outbox(outbox_dir)[0]["written_at"].startswith(
        "2020-08-04T09:00:00"
    )  # the injected clock reached the channel

    assert cli(["alerts", "plan", "--now", at]) == 0  # all already sent: nothing due
    summary = capsys.readouterr().out
    assert "alerts plan at 2020-08-04T09:00:00Z: 2 item(s) due" in summary
    assert "outbox=already-sent" in summary


def test_alerts_run_exits_1_when_a_send_fails(
    store: TableStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record_ca(store, tenant())
    monkeypatch.setenv("ALERT_CHANNELS", "teams")
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "https://127.0.0.1:9/closed")  # nothing listens
    handlers.reset_runtime()
    assert cli(["alerts", "run", "--now", "2020-08-04T09:00:00Z"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert {r["status"] for r in ledger_rows(store)} == {"failed"}


# --- the alert index's schedule: steady passes read only what has become due ---------------


def index_keys(store: TableStore) -> list[str]:
    return sorted(
        row["RowKey"]
        for row in store.iter_rows("alertindex")
        if row["PartitionKey"] in INDEX_PARTITIONS
    )


def test_a_pass_moves_each_certificate_to_its_next_stage(
    store: TableStore, settings: Settings
) -> None:
    sha = record_ca(store, tenant())
    run(store, settings, T_AUG4)
    # Sent 1d (renewal, Aug 5) and 14d (activation, Aug 18): next look at renewal's 0d.
    assert index_keys(store) == [f"2020-08-05T00:00:00Z|{sha}"]
    assert store.index.open_tenant_certificates(T_AUG4 + timedelta(hours=14)) == []
    (cert,) = store.index.open_tenant_certificates(datetime(2020, 8, 5, tzinfo=UTC))
    assert cert.sha256 == sha
    # After the Aug 26 reminder the next look is a week later, to the second.
    run(store, settings, datetime(2020, 8, 26, 1, tzinfo=UTC))
    assert index_keys(store) == [f"2020-09-02T00:00:00Z|{sha}"]


def test_a_certificate_under_two_keys_is_read_once_and_healed(
    store: TableStore, settings: Settings
) -> None:
    sha = record_ca(store, tenant())
    (row,) = [r for r in store.iter_rows("alertindex") if r["PartitionKey"] in INDEX_PARTITIONS]
    # What two runs rescheduling the same row differently at the same moment leave behind.
    store.table("alertindex").upsert_entity({**row, "RowKey": f"2020-08-01T00:00:00Z|{sha}"})
    (cert,) = store.index.open_tenant_certificates(T_AUG4)
    assert len(cert.index_keys) == 2
    document = run(store, settings, T_AUG4)
    assert sum(1 for i in document["items"] if i["channels"]["outbox"] == "sent") == 2
    assert index_keys(store) == [f"2020-08-05T00:00:00Z|{sha}"]


def test_changed_rules_put_every_open_row_back_at_its_first_stage(
    store: TableStore, settings: Settings
) -> None:
    sha = record_ca(store, tenant())
    run(store, settings, T_AUG4)
    assert index_keys(store) == [f"2020-08-05T00:00:00Z|{sha}"]
    assert store.index.align_schedule() is False  # same rules: nothing to do
    changed = TableStore(store.service, replace_stages(RULES, (30, 14, 7, 3, 1, 0)))
    assert changed.index.align_schedule() is True
    first_stage = datetime(2020, 8, 5, tzinfo=UTC) - timedelta(days=30)
    assert index_keys(store) == [f"{iso(first_stage)}|{sha}"]


def replace_stages(rules: Any, stages: tuple[int, ...]) -> Any:
    from dataclasses import replace

    return replace(rules, stages=stages)


def test_a_quiet_pass_reads_one_row_and_a_new_upload_reopens_the_gate(
    store: TableStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = record_ca(store, tenant())
    run(store, settings, T_AUG4)
    gate = store.gate.next_look()
    assert gate is not None and gate[0] == datetime(2020, 8, 5, tzinfo=UTC)

    def no_index_read(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a quiet pass read the alert index")

    with monkeypatch.context() as patched:
        patched.setattr(store.index, "open_tenant_certificates", no_index_read)
        quiet = run(store, settings, T_AUG4 + timedelta(hours=1))
    assert quiet["items"] == [] and quiet["messages"] == []

    # A newly affected tenant CA lowers the gate at once: the next pass sends for it.
    second_tenant = tenant()
    record_ca(store, second_tenant)
    reopened = store.gate.next_look()
    assert reopened is not None and reopened[0] <= T_AUG4
    later = run(store, settings, T_AUG4 + timedelta(hours=2))
    assert {i["tenant_id"] for i in later["items"]} == {second_tenant}
    assert all(i["channels"]["outbox"] == "sent" for i in later["items"])
    assert first not in {i["certificate"] for i in later["items"]}


def test_a_gate_lowered_during_a_pass_is_not_raised_over(
    store: TableStore, settings: Settings
) -> None:
    record_ca(store, tenant())
    seen = store.gate.next_look()
    store.gate.lower_next_look(datetime(2020, 7, 1, tzinfo=UTC))  # an upload, meanwhile
    store.gate.raise_next_look(datetime(2020, 9, 1, tzinfo=UTC), seen)  # the pass finishing
    gate = store.gate.next_look()
    assert gate is not None and gate[0] == datetime(2020, 7, 1, tzinfo=UTC)


# --- the index's shards -----------------------------------------------------------------------


def test_the_index_shard_of_a_tenant_is_stable_and_the_shards_are_all_used() -> None:
    tenants = [str(uuid.UUID(int=n)) for n in range(400)]
    assert {index_partition(t) for t in tenants} == set(INDEX_PARTITIONS)
    assert index_partition(tenants[7]) == index_partition(str(uuid.UUID(int=7)))


def test_tenants_in_different_shards_are_all_read_moved_and_seen_by_the_gate(
    store: TableStore, settings: Settings
) -> None:
    by_shard: dict[str, str] = {}
    while len(by_shard) < 3:
        candidate = tenant()
        by_shard.setdefault(index_partition(candidate), candidate)
    shas = {record_ca(store, t) for t in by_shard.values()}
    assert {c.sha256 for c in store.index.open_tenant_certificates(T_AUG4)} == shas
    document = run(store, settings, T_AUG4)
    assert sum(1 for i in document["items"] if i["channels"]["outbox"] == "sent") == 2 * len(shas)
    # Every shard's row moved on, within its own shard, to the renewal's 0d stage.
    assert index_keys(store) == sorted(f"2020-08-05T00:00:00Z|{sha}" for sha in shas)
    for row in store.iter_rows("alertindex"):
        if row["PartitionKey"] in INDEX_PARTITIONS:
            assert row["PartitionKey"] == index_partition(row["tenant_id"])
    assert store.index.first_look_after(T_AUG4) == datetime(2020, 8, 5, tzinfo=UTC)
    assert run(store, settings, T_AUG4)["messages"] == []


def test_an_unsharded_index_of_an_earlier_version_is_moved_into_its_shards(
    store: TableStore, settings: Settings
) -> None:
    tenant_id = tenant()
    sha = record_ca(store, tenant_id)
    (row,) = [r for r in store.iter_rows("alertindex") if r["PartitionKey"] in INDEX_PARTITIONS]
    index = store.table("alertindex")
    # What the single-partition layout left: the row in "open", and the old digest.
    index.upsert_entity({**row, "PartitionKey": LEGACY_OPEN_PARTITION})
    index.delete_entity(row["PartitionKey"], row["RowKey"])
    index.upsert_entity({"PartitionKey": "schedule", "RowKey": "rules", "digest": "old"})
    document = run(store, settings, T_AUG4)
    assert sum(1 for i in document["items"] if i["channels"]["outbox"] == "sent") == 2
    assert not [r for r in store.iter_rows("alertindex") if r["PartitionKey"] == "open"]
    assert index_keys(store) == [f"2020-08-05T00:00:00Z|{sha}"]
