"""The alert pass against peers that misbehave on purpose (issue 15): real sockets on
loopback that trickle, hang, send a huge body, close mid-reply, fail with 5xx or 429.

Each test asserts the wall time of the pass, how many posts the peer received, and the
ledger after each run. Deadlines are cut to about a second here so no test waits long;
the production defaults (30 s per send, 240 s per pass) work the same way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alert_samples import rendered

from shared.alerts.message import POSSIBLE_REPEAT
from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes
from shared.app.alert_pass import run_alerts
from shared.channels import Channel, ChannelError, build_channels
from shared.channels.outbox import OutboxChannel
from shared.channels.smtp import SmtpChannel
from shared.channels.teams import TeamsChannel
from shared.local import samples
from shared.local.azurite import Azurite
from shared.settings import Settings
from shared.storage.connections import table_service
from shared.storage.store import TableStore

RULES = load_rules()
T0 = datetime(2020, 8, 4, 9, tzinfo=UTC)  # two deadlines due for an affected tenant CA
SEND_DEADLINE = 1.0  # seconds, per send, in these tests
# The pass's own storage round trips on Azurite, on a busy 2-core machine. Without the
# deadlines these tests would take 30 s per read timeout and attempt, not seconds.
SLACK = 4.0


# --- loopback peers ------------------------------------------------------------------------


class Peer:
    """A TCP server on loopback; each connection runs ``handle(peer, conn, number)`` in a
    thread. ``stop`` ends every handler (they poll it) when the test is done."""

    def __init__(self, handle: Callable[[Peer, socket.socket, int], None]) -> None:
        self.handle = handle
        self.stop = threading.Event()
        self.connections = 0
        self.posts: list[bytes] = []  # complete request bodies / DATA payloads received
        self.bytes_out = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(
                target=self._serve, args=(conn, self.connections), daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(0.1)
        with contextlib.suppress(OSError), conn:
            self.handle(self, conn, number)

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.bytes_out += len(data)

    def idle(self, conn: socket.socket, seconds: float = 30.0) -> None:
        """Say nothing until the client leaves, the test ends, or ``seconds`` pass."""
        ends = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < ends:
            try:
                if conn.recv(4096) == b"":
                    return
            except TimeoutError:
                continue

    def trickle(self, conn: socket.socket, data: bytes, every: float = 0.2) -> None:
        """One byte every ``every`` seconds (well inside any per-read timeout)."""
        for byte in data:
            if self.stop.wait(every):
                return
            self.send(conn, bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.acceptor.join(5)
        for thread in self.threads:
            thread.join(5)


def read_http_request(peer: Peer, conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(peer, conn)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += _recv(peer, conn)
    peer.posts.append(body)
    return body


def _recv(peer: Peer, conn: socket.socket) -> bytes:
    while not peer.stop.is_set():
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            raise ConnectionError("client left")
        return chunk
    raise ConnectionError("test over")


def http_reply(status: int, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status} X", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def webhook(*behaviours: Callable[[Peer, socket.socket], None]) -> Callable[..., None]:
    """A webhook whose n-th connection reads a request and then behaves as told (the last
    behaviour repeats)."""

    def handle(peer: Peer, conn: socket.socket, number: int) -> None:
        read_http_request(peer, conn)
        behaviours[min(number, len(behaviours)) - 1](peer, conn)

    return handle


def answer(status: int, *headers: str) -> Callable[[Peer, socket.socket], None]:
    return lambda peer, conn: peer.send(conn, http_reply(status, *headers))


def trickle_reply(peer: Peer, conn: socket.socket) -> None:
    peer.trickle(conn, http_reply(202))


def hang(peer: Peer, conn: socket.socket) -> None:
    peer.idle(conn)


def close_mid_reply(peer: Peer, conn: socket.socket) -> None:
    peer.send(conn, b"HTTP/1.1 20")


def huge_body(status: int) -> Callable[[Peer, socket.socket], None]:
    def behave(peer: Peer, conn: socket.socket) -> None:
        peer.send(conn, f"HTTP/1.1 {status} X\r\nContent-Length: {1 << 30}\r\n\r\n".encode())
        chunk = b"x" * 65536
        with contextlib.suppress(OSError):
            while not peer.stop.is_set() and peer.bytes_out < 1 << 30:
                peer.send(conn, chunk)

    return behave


def smtp_server(*final_replies: bytes | None, greeting_trickle: bool = False) -> Callable:
    """A plain SMTP server; the n-th connection answers the message's final dot with
    ``final_replies[n-1]`` (None: says nothing and waits)."""

    def handle(peer: Peer, conn: socket.socket, number: int) -> None:
        greeting = b"220 loopback ESMTP\r\n"
        if greeting_trickle:
            peer.trickle(conn, greeting)
            return
        peer.send(conn, greeting)
        buffer = b""
        while True:
            while b"\r\n" not in buffer:
                buffer += _recv(peer, conn)
            line, _, buffer = buffer.partition(b"\r\n")
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                peer.send(conn, b"250-loopback\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                peer.send(conn, b"354 go on\r\n")
                while b"\r\n.\r\n" not in buffer:
                    buffer += _recv(peer, conn)
                payload, _, buffer = buffer.partition(b"\r\n.\r\n")
                peer.posts.append(payload)
                reply = final_replies[min(number, len(final_replies)) - 1]
                if reply is None:
                    peer.idle(conn)
                    return
                peer.send(conn, reply)
            elif verb == b"QUIT":
                peer.send(conn, b"221 bye\r\n")
                return
            else:
                peer.send(conn, b"250 ok\r\n")

    return handle


@pytest.fixture
def peers() -> Iterator[Callable[[Callable], Peer]]:
    started: list[Peer] = []

    def start(handle: Callable) -> Peer:
        started.append(Peer(handle))
        return started[-1]

    yield start
    for peer in started:
        peer.close()


# --- the pass on Azurite ---------------------------------------------------------------------


@pytest.fixture
def store(azurite: Azurite) -> TableStore:
    store = TableStore(table_service({"CertStorage": azurite.connection_string}), RULES)
    store.delete_all()
    store.ensure_tables()
    return store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        alert_channels=("outbox",),
        alert_outbox_dir=str(tmp_path / "outbox"),
        alert_email_from="watch@example.com",
        alert_email_to=("ops@example.com",),
    )


def record_affected_ca(store: TableStore) -> str:
    tenant_id = str(uuid.uuid4())
    issued = samples.tenant_ca(tenant_id, datetime(2020, 7, 1, tzinfo=UTC))
    result = analyze_bytes(f"{tenant_id}.cer", issued.der, RULES, datetime(2020, 7, 2, tzinfo=UTC))
    assert store.uploads.record_upload(result.source, uuid.uuid4().hex, result, T0)
    return tenant_id


def timed_run(
    store: TableStore,
    settings: Settings,
    now: datetime,
    channels: dict[str, Channel],
    pass_budget: float = 10.0,
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    document = run_alerts(
        store=store,
        settings=settings,
        rules=RULES,
        now=now,
        channels=channels,
        pass_budget=pass_budget,
    )
    return document, time.monotonic() - started


def ledger(store: TableStore, channel: str) -> list[tuple[str, int, int]]:
    """(status, attempts, unclear sends) of the channel's ledger rows."""
    return sorted(
        (r["status"], int(r.get("attempts") or 0), int(r.get("unclear_sends") or 0))
        for r in store.iter_rows("ledger")
        if r.get("channel") == channel
    )


def teams(peer: Peer, **kwargs: Any) -> TeamsChannel:
    url = f"http://127.0.0.1:{peer.port}/workflows/x?sig=secret"
    options: dict[str, Any] = {"deadline": SEND_DEADLINE, "timeout": 30.0, "sleep": time.sleep}
    return TeamsChannel(url, **{**options, **kwargs})


def smtp(peer: Peer) -> SmtpChannel:
    return SmtpChannel(
        "127.0.0.1",
        peer.port,
        sender="watch@example.com",
        starttls=False,
        timeout=30.0,  # per read: the deadline, not this, must end the send
        deadline=SEND_DEADLINE,
    )


def outcome(document: dict[str, Any], channel: str) -> list[str | None]:
    return [m.get("outcome") for m in document["messages"] if m["channel"] == channel]


# --- Teams -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [trickle_reply, hang, close_mid_reply, answer(503)],
    ids=["trickle", "hang", "close", "5xx-then-2xx"],
)
def test_teams_without_an_answer_is_unknown_then_retried_once_as_a_possible_repeat(
    store: TableStore,
    settings: Settings,
    peers: Callable[[Callable], Peer],
    behaviour: Callable[[Peer, socket.socket], None],
) -> None:
    peer = peers(webhook(behaviour, answer(202)))
    record_affected_ca(store)
    channels: dict[str, Channel] = {"teams": teams(peer)}

    first, seconds = timed_run(store, settings, T0, channels)
    assert seconds < SEND_DEADLINE + SLACK  # not 3 attempts x a per-read timeout
    assert outcome(first, "teams") == ["unknown"]
    assert len(peer.posts) == 1  # never posted twice in one run
    assert ledger(store, "teams") == [("unknown", 1, 1)] * 2

    soon, _ = timed_run(store, settings, T0 + timedelta(minutes=1), channels)
    assert soon["messages"] == [] and len(peer.posts) == 1  # backing off
    assert ledger(store, "teams") == [("unknown", 1, 1)] * 2

    retry, seconds = timed_run(store, settings, T0 + timedelta(minutes=6), channels)
    assert outcome(retry, "teams") == ["sent"] and seconds < SLACK
    assert len(peer.posts) == 2
    assert POSSIBLE_REPEAT.split(":")[0].encode() in peer.posts[1]
    assert POSSIBLE_REPEAT.split(":")[0].encode() not in peer.posts[0]
    assert [s for s, _, _ in ledger(store, "teams")] == ["sent", "sent"]

    later, _ = timed_run(store, settings, T0 + timedelta(hours=2), channels)
    assert later["messages"] == [] and len(peer.posts) == 2
    assert [s for s, _, _ in ledger(store, "teams")] == ["sent", "sent"]


def test_teams_5xx_twice_posts_at_most_twice_and_tells_the_operators(
    store: TableStore, settings: Settings, peers: Callable[[Callable], Peer]
) -> None:
    peer = peers(webhook(answer(503)))
    record_affected_ca(store)
    channels: dict[str, Channel] = {
        "teams": teams(peer),
        "outbox": OutboxChannel(settings.alert_outbox_dir),
    }
    for minutes in (0, 6, 30, 60 * 7):
        _, seconds = timed_run(store, settings, T0 + timedelta(minutes=minutes), channels)
        assert seconds < SLACK
    assert len(peer.posts) == 2  # the unclear send and its one retry; never a third
    assert ledger(store, "teams") == [("unknown", 2, 2)] * 2
    # The pass that saw the rows give up raised one operator alert on the other channel.
    texts = [p.read_text() for p in Path(settings.alert_outbox_dir).glob("*.txt")]
    operator = [t for t in texts if "operator alert" in t.splitlines()[0]]
    assert len(operator) == 1 and "teams" in operator[0]


def test_teams_429_with_retry_after_waits_in_the_run_when_it_fits(
    store: TableStore, settings: Settings, peers: Callable[[Callable], Peer]
) -> None:
    peer = peers(webhook(answer(429, "Retry-After: 0.3"), answer(202)))
    record_affected_ca(store)
    document, seconds = timed_run(store, settings, T0, {"teams": teams(peer)})
    assert outcome(document, "teams") == ["sent"]
    assert len(peer.posts) == 2 and 0.3 <= seconds < 0.3 + SLACK  # refused, then accepted
    assert [s for s, _, _ in ledger(store, "teams")] == ["sent", "sent"]


@pytest.mark.parametrize(
    ("retry_after", "next_attempt"),
    [("3600", "2020-08-04T10:00:00Z"), ("31536000", "2020-08-05T09:00:00Z")],  # a day at most
)
def test_teams_429_with_a_long_retry_after_fails_and_waits_that_long(
    store: TableStore,
    settings: Settings,
    peers: Callable[[Callable], Peer],
    retry_after: str,
    next_attempt: str,
) -> None:
    peer = peers(webhook(answer(429, f"Retry-After: {retry_after}")))
    record_affected_ca(store)
    document, seconds = timed_run(store, settings, T0, {"teams": teams(peer)})
    assert outcome(document, "teams") == ["failed"] and seconds < SLACK
    assert len(peer.posts) == 1
    assert ledger(store, "teams") == [("failed", 1, 0)] * 2  # definite: no repeat mark
    rows = list(store.iter_rows("ledger"))
    assert {r["next_attempt_at"] for r in rows} == {next_attempt}
    # Five minutes later (the usual backoff) it is still waiting, as the peer asked.
    again, _ = timed_run(store, settings, T0 + timedelta(minutes=6), {"teams": teams(peer)})
    assert again["messages"] == [] and len(peer.posts) == 1


@pytest.mark.parametrize("status", [202, 400])
def test_teams_reads_a_few_kb_of_a_1_gib_body(
    store: TableStore, settings: Settings, peers: Callable[[Callable], Peer], status: int
) -> None:
    peer = peers(webhook(huge_body(status)))
    record_affected_ca(store)
    tracemalloc.start()
    try:
        document, seconds = timed_run(store, settings, T0, {"teams": teams(peer)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 2 * SLACK  # tracemalloc slows every allocation; 1 GiB would take minutes
    assert peak < 8 << 20  # the pass's own objects (~0.6 MB): the body never lands in memory
    assert outcome(document, "teams") == (["sent"] if status == 202 else ["failed"])
    assert len(peer.posts) == 1
    peer.stop.set()
    # What the peer could push before we hung up: socket buffers, not the gigabyte.
    assert peer.bytes_out < 64 << 20
    if status == 400:
        assert len(document["messages"][0]["error"]) < 1000


def test_an_unresolved_key_vault_reference_is_a_setup_problem_not_a_failed_send(
    store: TableStore, settings: Settings
) -> None:
    record_affected_ca(store)
    configured = Settings(
        **{
            **settings.__dict__,
            "alert_channels": ("teams", "outbox"),
            "teams_webhook_url": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/"
            "secrets/teams-webhook/)",
        }
    )
    channels = build_channels(configured, clock=lambda: T0)
    document, _ = timed_run(store, configured, T0, channels)
    assert {i["channels"]["teams"] for i in document["items"]} == {"planned"}  # still owed
    assert ledger(store, "teams") == []  # nothing claimed, nothing failed
    assert [m for m in document["messages"] if m["channel"] == "teams"] == []
    health = {h["problem"]: h["channels"] for h in document["self_health"]}
    assert health == {"channel-config/teams": {"outbox": "sent"}}
    text = "".join(p.read_text() for p in Path(settings.alert_outbox_dir).glob("*.txt"))
    assert "unresolved Key Vault reference" in text and "Secrets User" in text


# --- SMTP, and channels side by side --------------------------------------------------------


def test_smtp_silence_after_the_final_dot_is_unknown_and_repeated_once_marked(
    store: TableStore, settings: Settings, peers: Callable[[Callable], Peer]
) -> None:
    peer = peers(smtp_server(None, b"250 queued\r\n"))
    record_affected_ca(store)
    first, seconds = timed_run(store, settings, T0, {"smtp": smtp(peer)})
    assert outcome(first, "smtp") == ["unknown"] and seconds < SEND_DEADLINE + SLACK
    assert len(peer.posts) == 1
    assert ledger(store, "smtp") == [("unknown", 1, 1)] * 2
    retry, _ = timed_run(store, settings, T0 + timedelta(minutes=6), {"smtp": smtp(peer)})
    assert outcome(retry, "smtp") == ["sent"] and len(peer.posts) == 2
    assert b"Subject: [possible repeat]" in peer.posts[1]
    assert b"possible repeat" not in peer.posts[0].lower()


def test_a_stuck_relay_and_a_hanging_webhook_do_not_hold_the_outbox(
    store: TableStore, settings: Settings, peers: Callable[[Callable], Peer]
) -> None:
    relay = peers(smtp_server(b"250 ok\r\n", greeting_trickle=True))
    hook = peers(webhook(hang))
    record_affected_ca(store)
    channels: dict[str, Channel] = {
        "smtp": smtp(relay),
        "teams": teams(hook),
        "outbox": OutboxChannel(settings.alert_outbox_dir),
    }
    document, seconds = timed_run(store, settings, T0, channels)
    # Side by side: about one deadline in all, not one per channel.
    assert seconds < SEND_DEADLINE + SLACK
    assert outcome(document, "outbox") == ["sent"]
    assert outcome(document, "smtp") == ["failed"]  # the greeting never ended: not sent
    assert outcome(document, "teams") == ["unknown"]
    assert relay.posts == [] and len(hook.posts) == 1
    assert ledger(store, "smtp") == [("failed", 1, 0)] * 2
    assert "deadline" in next(m["error"] for m in document["messages"] if m["channel"] == "smtp")


def test_each_send_gets_no_more_than_what_is_left_of_the_pass_budget(
    store: TableStore, settings: Settings, peers: Callable[[Callable], Peer]
) -> None:
    hook = peers(webhook(hang))
    record_affected_ca(store)
    budget = 2.0
    # The channel alone would wait 20 s for an answer; the pass has 2 s in all.
    document, seconds = timed_run(
        store, settings, T0, {"teams": teams(hook, deadline=20.0)}, pass_budget=budget
    )
    assert seconds < budget + SLACK
    assert len(hook.posts) == 1 and outcome(document, "teams") == ["unknown"]


# --- TLS handshakes that never finish ---------------------------------------------------------


def trickle_tls(peer: Peer, conn: socket.socket) -> None:
    """Take the ClientHello, then start a 16 KB handshake record and trickle it: every
    read gets a byte in time. (CPython bounds a whole handshake by the socket timeout,
    which the channels cut to what is left of the deadline.)"""
    _recv(peer, conn)
    peer.send(conn, b"\x16\x03\x03\x3e\x80")
    peer.trickle(conn, b"\x02" * 0x3E80, every=0.1)


def trickle_tls_after_starttls(peer: Peer, conn: socket.socket, number: int) -> None:
    peer.send(conn, b"220 loopback ESMTP\r\n")
    buffer = b""
    while True:
        while b"\r\n" not in buffer:
            buffer += _recv(peer, conn)
        line, _, buffer = buffer.partition(b"\r\n")
        if line[:4].upper() == b"EHLO":
            peer.send(conn, b"250-loopback\r\n250 STARTTLS\r\n")
        elif line.upper() == b"STARTTLS":
            peer.send(conn, b"220 go ahead\r\n")
            trickle_tls(peer, conn)
            return


def test_a_trickled_tls_handshake_ends_at_the_deadline(
    peers: Callable[[Callable], Peer],
) -> None:
    slow = peers(lambda peer, conn, number: trickle_tls(peer, conn))
    relay = peers(trickle_tls_after_starttls)
    hook = TeamsChannel(f"https://127.0.0.1:{slow.port}/x?sig=s", timeout=30, deadline=0.5)
    mail = SmtpChannel(
        "127.0.0.1", relay.port, sender="watch@example.com", timeout=30, deadline=0.5
    )
    for send in (
        lambda: hook.send(rendered(1), ()),
        lambda: mail.send(rendered(1), ("ops@example.com",)),
    ):
        started = time.monotonic()
        with pytest.raises(ChannelError) as caught:
            send()
        assert time.monotonic() - started < 0.5 + SLACK / 2  # not the 30 s read timeout
        assert caught.value.unclear is False and caught.value.retryable is True
        assert "deadline" in caught.value.detail
