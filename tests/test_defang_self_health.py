"""The daily self-health message defangs what others chose (issue 23 §4): an upload name,
a registration target's name and ARM's error message reach every channel as inert text
(``hxxps://evil[.]example``, ``ceo[@]corp[.]example``), as deadline alerts already do,
through the same helper (``shared.alerts.text_safety.cert_text``). One test per channel, on
a real Azurite: the outbox on disk, Teams on a loopback HTTP receiver, SMTP on aiosmtpd;
ACS Email has no emulator, so its SDK client is a fake that records the message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_channel_acs import FakeEmailClient
from test_channel_smtp import Handler, LoopbackController, plain_server  # noqa: F401 - fixture

from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes
from shared.app.alert_pass import run_alerts
from shared.channels import Channel
from shared.channels.acs_email import AcsEmailChannel
from shared.channels.outbox import OutboxChannel
from shared.channels.smtp import SmtpChannel
from shared.channels.teams import TeamsChannel
from shared.local.azurite import Azurite
from shared.settings import Settings
from shared.storage.connections import table_service
from shared.storage.store import TableStore

RULES = load_rules()
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
UPLOAD = "https://evil.example/login?next=ceo@corp.example.cer"
TARGET_NAME = "www.phish.example"
ARM_MESSAGE = "Forbidden: see http://attacker.example/fix or mail help@attacker.example"
LIVE = ("https://evil", "http://attacker", "evil.example", "ceo@corp", "www.phish.example",
        "help@attacker", "attacker.example")  # fmt: skip
INERT = ("hxxps://evil[.]example", "ceo[@]corp[.]example", "www[.]phish[.]example",
         "hxxp://attacker[.]example", "help[@]attacker[.]example")  # fmt: skip


@pytest.fixture
def store(azurite: Azurite) -> TableStore:
    store = TableStore(table_service({"CertStorage": azurite.connection_string}), RULES)
    store.delete_all()
    store.ensure_tables()
    bad = analyze_bytes(UPLOAD, b"not a certificate", RULES, NOW)
    store.uploads.record_upload(bad.source, "etag-1", bad, NOW)
    target = (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg/providers/"
        "microsoft.devices/iothubs/hub1"
    )
    store.registrations.record_target_error(
        target, "iot-hub", TARGET_NAME, "forbidden", ARM_MESSAGE, NOW
    )
    return store


def self_health(store: TableStore, name: str, channel: Channel, **settings: Any) -> None:
    document = run_alerts(
        store=store,
        settings=Settings(alert_channels=(name,), **settings),
        rules=RULES,
        now=NOW,
        channels={name: channel},
    )
    problems = {p["problem"]: p["channels"] for p in document["self_health"]}
    assert problems == {
        "registration-targets-failing": {name: "sent"},
        "uploads-failing": {name: "sent"},
    }


def assert_inert(*shown: str) -> None:
    """No live link or address in any text; each hostile value there, defanged, in one."""
    every = "\n".join(shown)
    for live in LIVE:
        assert live not in every, live
    for inert in INERT:
        assert inert in every, inert


def test_outbox(store: TableStore, tmp_path: Path) -> None:
    self_health(store, "outbox", OutboxChannel(str(tmp_path)), alert_outbox_dir=str(tmp_path))
    records = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
    assert len(records) == 2
    assert_inert(*(record["text"] for record in records))
    assert_inert(*(record["html"] for record in records))
    cards = [record["teams_payload"]["attachments"][0]["content"] for record in records]
    assert_inert(*(b.get("text", "").replace("\\", "") for c in cards for b in c["body"]))


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,))
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/x?sig=s"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()
    hook.thread.join(5)


def test_teams(store: TableStore, receiver: Receiver) -> None:
    # TeamsChannel built directly: the loopback receiver speaks plain http.
    self_health(store, "teams", TeamsChannel(receiver.url, max_attempts=1, timeout=5))
    assert len(receiver.bodies) == 2
    cards = [json.loads(body)["attachments"][0]["content"] for body in receiver.bodies]
    # The card's text is Markdown-escaped (a backslash before "." and "["): undone before
    # looking, so the test sees what a reader sees.
    assert_inert(
        *(block.get("text", "").replace("\\", "") for card in cards for block in card["body"])
    )


SENDER = "DoNotReply@x.azurecomm.net"
ACS = "https://x.communication.azure.com"


def test_smtp(
    store: TableStore,
    plain_server: tuple[LoopbackController, Handler],  # noqa: F811 - the imported fixture
) -> None:
    controller, handler = plain_server
    channel = SmtpChannel("127.0.0.1", controller.port, sender=SENDER, starttls=False, timeout=5)
    self_health(store, "smtp", channel, smtp_host="127.0.0.1", **MAIL_SETTINGS)
    assert len(handler.messages) == 2
    for part in ("plain", "html"):
        assert_inert(*(mail.get_body((part,)).get_content() for _, mail in handler.messages))


def test_acs_email_fake(store: TableStore) -> None:
    client = FakeEmailClient()
    self_health(
        store, "acs-email", AcsEmailChannel(ACS, SENDER, client=client), acs_endpoint=ACS,
        **MAIL_SETTINGS,
    )  # fmt: skip
    assert len(client.sent) == 2
    for part in ("plainText", "html"):
        assert_inert(*(sent["content"][part] for sent in client.sent))


MAIL_SETTINGS: dict[str, Any] = {"alert_email_from": SENDER, "alert_email_to": ("ops@x.org",)}
