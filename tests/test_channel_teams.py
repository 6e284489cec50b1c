"""The Teams channel against a real HTTP receiver on loopback (port 0, one per test).

The receiver plays the Workflows webhook: it checks the payload's shape and size as
Teams would, then answers with whatever status the scenario scripts.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from alert_samples import NOW, rendered
from tls_samples import loopback_tls

from shared.alerts.model import RenderedMessage
from shared.channels import ChannelError, build_channels
from shared.channels.teams import TeamsChannel, retry_after_seconds
from shared.settings import Settings, SettingsError

SIG = "s3cr3t-Sig-Value_0123456789abcdef"


@dataclass
class Reply:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    url: str
    replies: list[Reply]
    cards: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    requests: int = 0


def check_payload(raw: bytes, content_type: str) -> list[str]:
    """What Teams Workflows would object to in a 'message with Adaptive Card' body."""
    problems = []
    if len(raw) >= 28_000:
        problems.append(f"payload is {len(raw)} bytes")
    if not content_type.startswith("application/json"):
        problems.append(f"content type {content_type}")
    payload = json.loads(raw.decode("utf-8"))
    if payload.get("type") != "message":
        problems.append("type is not message")
    attachments = payload.get("attachments") or []
    if len(attachments) != 1:
        problems.append(f"{len(attachments)} attachments")
        return problems
    attachment = attachments[0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append("attachment is not an Adaptive Card")
    card = attachment.get("content") or {}
    if card.get("type") != "AdaptiveCard":
        problems.append("content is not an AdaptiveCard")
    if card.get("version") != "1.4":
        problems.append(f"card version {card.get('version')}")
    if not card.get("body"):
        problems.append("card body is empty")
    return problems


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="", replies=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests += 1
            problems = check_payload(raw, self.headers.get("Content-Type", ""))
            state.problems += problems
            reply = state.replies.pop(0) if state.replies else Reply(202)
            if problems:
                reply = Reply(400, "; ".join(problems))
            elif 200 <= reply.status < 300:
                state.cards.append(json.loads(raw)["attachments"][0]["content"])
            body = reply.body.encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    port = server.server_address[1]
    state.url = (
        f"http://127.0.0.1:{port}/workflows/abc/triggers/manual/paths/invoke"
        f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
    )
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def message(count: int = 2) -> RenderedMessage:
    return rendered(count, "CN=Microsoft Azure Sphere <b>{i}</b>")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_delivers_the_card_and_accepts_202(receiver: Receiver) -> None:
    receiver.replies = [Reply(202, headers={"x-ms-workflow-run-id": "run-42"})]
    sent = message()
    assert TeamsChannel(receiver.url).send(sent, ()) == "run-42"
    assert receiver.problems == []
    assert receiver.cards == [sent.adaptive_card]


def test_a_500_item_message_stays_under_28_kb_on_the_wire(receiver: Receiver) -> None:
    sent = message(500)
    assert sent.omitted_count > 0
    TeamsChannel(receiver.url).send(sent, ())
    assert receiver.problems == []
    assert len(receiver.cards) == 1


def test_429_with_retry_after_then_202(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, "slow down", {"Retry-After": "7"}), Reply(202)]
    sleeps = Sleeps()
    channel = TeamsChannel(receiver.url, sleep=sleeps, max_retry_wait=30)
    assert channel.send(message(), ()) is None
    assert receiver.requests == 2
    assert len(receiver.cards) == 1
    assert sleeps == [7.0]


def test_a_retry_after_beyond_the_cap_is_left_to_the_ledger(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, headers={"Retry-After": "3600"}), Reply(200)]
    sleeps = Sleeps()
    with pytest.raises(ChannelError) as caught:
        TeamsChannel(receiver.url, sleep=sleeps, max_retry_wait=30).send(message(), ())
    assert caught.value.retry_after == 3600 and caught.value.unclear is False
    assert receiver.requests == 1 and sleeps == []


def test_short_retry_after_waits_really(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, headers={"Retry-After": "0.05"}), Reply(200)]
    channel = TeamsChannel(receiver.url)  # the real time.sleep
    channel.send(message(), ())
    assert receiver.requests == 2 and len(receiver.cards) == 1


def test_retry_after_http_date() -> None:
    later = datetime(2020, 8, 4, 9, 0, 20, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(later, usegmt=True), now=NOW) == 20
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_500_is_an_unclear_outcome_and_is_not_posted_again(receiver: Receiver) -> None:
    # The Workflow may have posted the card before failing: a second post could repeat it.
    receiver.replies = [Reply(500, "boom")] * 3
    sleeps = Sleeps()
    with pytest.raises(ChannelError) as caught:
        TeamsChannel(receiver.url, sleep=sleeps).send(message(), ())
    assert caught.value.retryable is True and caught.value.unclear is True
    assert "500" in caught.value.detail
    assert receiver.requests == 1
    assert sleeps == []


def test_three_429s_raise_a_retryable_definite_error(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, "busy")] * 3
    sleeps = Sleeps()
    with pytest.raises(ChannelError) as caught:
        TeamsChannel(receiver.url, sleep=sleeps).send(message(), ())
    assert caught.value.retryable is True and caught.value.unclear is False
    assert receiver.requests == 3
    assert len(sleeps) == 2 and all(s <= 30 for s in sleeps)
    assert receiver.cards == []


def test_400_is_not_retried_and_keeps_the_body(receiver: Receiver) -> None:
    body = '{"error":{"code":"TriggerInputSchemaMismatch","message":"bad"}}' + "x" * 2000
    receiver.replies = [Reply(400, body)]
    with pytest.raises(ChannelError) as caught:
        TeamsChannel(receiver.url, sleep=Sleeps()).send(message(), ())
    error = caught.value
    assert error.retryable is False
    assert "400" in error.detail and "TriggerInputSchemaMismatch" in error.detail
    assert "x" * 600 not in error.detail  # only the first ~500 characters
    assert receiver.requests == 1


def test_the_url_secret_never_appears_in_errors(receiver: Receiver) -> None:
    # The body echoes the URL back, as some gateways do.
    receiver.replies = [Reply(404, f"no flow at {receiver.url}")]
    with pytest.raises(ChannelError) as caught:
        TeamsChannel(receiver.url, sleep=Sleeps()).send(message(), ())
    for text in (str(caught.value), repr(caught.value), caught.value.detail):
        assert SIG not in text
        assert "sig=" not in text or "sig=<redacted>" in text


def test_connection_refused_is_retryable_and_redacted() -> None:
    # A port that was just free: nothing listens there now.
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    url = f"http://127.0.0.1:{port}/workflows/x?api-version=1&sig={SIG}"
    with pytest.raises(ChannelError) as caught:
        TeamsChannel(url, sleep=Sleeps(), timeout=2).send(message(), ())
    assert caught.value.retryable is True
    assert caught.value.unclear is False  # nothing was sent: the ledger's backoff retries it
    assert SIG not in str(caught.value)
    assert f"127.0.0.1:{port}/workflows/x" in caught.value.detail


def test_build_channels_needs_the_webhook_url() -> None:
    with pytest.raises(SettingsError, match="TEAMS_WEBHOOK_URL"):
        build_channels(Settings(alert_channels=("teams",)))
    channels = build_channels(
        Settings(alert_channels=("teams",), teams_webhook_url=f"https://x.example/a?sig={SIG}")
    )
    assert list(channels) == ["teams"]
    assert SIG not in repr(channels["teams"])


def https_receiver(server_context: ssl.SSLContext) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    return server, thread


def test_https_delivers_with_a_trusted_certificate_and_refuses_an_untrusted_one(
    tmp_path: Path,
) -> None:
    tls = loopback_tls(tmp_path)
    server, thread = https_receiver(tls.server)
    url = f"https://127.0.0.1:{server.server_address[1]}/workflows/x?sig={SIG}"
    try:
        assert TeamsChannel(url, ssl_context=tls.client).send(message(), ()) is None
        with pytest.raises(ChannelError) as caught:
            TeamsChannel(url).send(message(), ())  # the default trust store: not trusted
        assert caught.value.retryable is False and caught.value.unclear is False
        assert "certificate" in caught.value.detail and SIG not in caught.value.detail
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_build_channels_lets_an_unresolved_key_vault_reference_through_as_a_problem() -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/teams/)"
    settings = Settings(alert_channels=("teams",), teams_webhook_url=reference)
    channel = build_channels(settings)["teams"]
    assert isinstance(channel, TeamsChannel)
    assert channel.configuration_problem and "Key Vault" in channel.configuration_problem
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ())
    assert caught.value.retryable is False and "kv.vault" not in caught.value.detail
