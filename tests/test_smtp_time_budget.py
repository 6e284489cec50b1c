"""Issue 24 §8: the SMTP channel honours the time left in the alert pass.

Each send has its own deadline (30 s by default), cut to what is left of the pass budget
(240 s by default). The Teams channel had a test for the cut; SMTP had none, so a channel
that held the pass for its own full 30 s would have passed every test.

The relay here is a real SMTP server on a loopback socket that answers every reply one
byte at a time: each read gets a byte well inside any read timeout, so only a wall-clock
deadline ends the exchange. Given the time, it takes the message (the positive control).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alert_samples import rendered
from test_misbehaving_peers import RULES, T0, Peer, _recv, record_affected_ca

from shared.app.alert_pass import run_alerts
from shared.channels import ChannelError
from shared.channels.deadline import DEFAULT_SEND_DEADLINE
from shared.channels.smtp import SmtpChannel
from shared.local.azurite import Azurite
from shared.settings import Settings
from shared.storage.connections import table_service
from shared.storage.store import TableStore

PASS_BUDGET = 2.0  # seconds: the pass's time left, far below the channel's own 30 s
SLACK = 4.0  # the pass's own storage round trips on Azurite, on a busy 2-core machine


def trickling_relay(every: float) -> Callable[[Peer, socket.socket, int], None]:
    """An SMTP relay (no STARTTLS) that writes each reply one byte every ``every`` s."""

    def handle(peer: Peer, conn: socket.socket, number: int) -> None:
        peer.trickle(conn, b"220 loopback ESMTP\r\n", every)
        buffer = b""
        while True:
            while b"\r\n" not in buffer:
                buffer += _recv(peer, conn)
            line, _, buffer = buffer.partition(b"\r\n")
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                peer.trickle(conn, b"250-loopback\r\n250 8BITMIME\r\n", every)
            elif verb == b"DATA":
                peer.trickle(conn, b"354 go on\r\n", every)
                while b"\r\n.\r\n" not in buffer:
                    buffer += _recv(peer, conn)
                payload, _, buffer = buffer.partition(b"\r\n.\r\n")
                peer.posts.append(payload)
                peer.trickle(conn, b"250 queued\r\n", every)
            elif verb == b"QUIT":
                peer.trickle(conn, b"221 bye\r\n", every)
                return
            else:
                peer.trickle(conn, b"250 ok\r\n", every)

    return handle


@pytest.fixture
def relay() -> Iterator[Callable[[float], Peer]]:
    started: list[Peer] = []

    def start(every: float) -> Peer:
        started.append(Peer(trickling_relay(every)))
        return started[-1]

    yield start
    for peer in started:
        peer.close()


def smtp(peer: Peer) -> SmtpChannel:
    """The channel with its production deadline and a read timeout no trickle trips."""
    return SmtpChannel(
        "127.0.0.1", peer.port, sender="watch@example.com", starttls=False, timeout=30.0
    )


@pytest.fixture
def store(azurite: Azurite) -> TableStore:
    store = TableStore(table_service({"CertStorage": azurite.connection_string}), RULES)
    store.delete_all()
    store.ensure_tables()
    return store


def settings(tmp_path: Path) -> Settings:
    return Settings(
        alert_channels=("smtp",),
        alert_outbox_dir=str(tmp_path / "outbox"),
        alert_email_from="watch@example.com",
        alert_email_to=("ops@example.com",),
    )


def smtp_messages(document: dict) -> list[dict]:
    return [m for m in document["messages"] if m["channel"] == "smtp"]


def test_the_channel_gives_up_at_the_time_it_is_given_not_its_own_30_s(
    relay: Callable[[float], Peer],
) -> None:
    peer = relay(0.1)  # the greeting alone takes 2 s
    channel = smtp(peer)
    assert channel._deadline == DEFAULT_SEND_DEADLINE == 30.0

    started = time.monotonic()
    with pytest.raises(ChannelError) as caught:
        channel.send(rendered(1), ("ops@example.com",), deadline=0.5)
    seconds = time.monotonic() - started

    assert seconds < 0.5 + SLACK / 2
    assert "no answer within the 0.5 s deadline" in caught.value.detail
    assert caught.value.retryable and not caught.value.unclear  # nothing went out
    assert peer.posts == []


def test_the_alert_pass_ends_within_its_budget_on_a_trickling_relay(
    store: TableStore, relay: Callable[[float], Peer], tmp_path: Path
) -> None:
    peer = relay(0.05)  # a whole exchange takes about 8 s: more than the pass has
    record_affected_ca(store)

    started = time.monotonic()
    document = run_alerts(
        store=store,
        settings=settings(tmp_path),
        rules=RULES,
        now=T0,
        channels={"smtp": smtp(peer)},
        pass_budget=PASS_BUDGET,
    )
    seconds = time.monotonic() - started

    assert seconds < PASS_BUDGET + SLACK  # not the channel's own 30 s
    (message,) = smtp_messages(document)
    assert message["outcome"] == "failed"
    assert "deadline" in message["error"]
    assert peer.posts == []
    assert {i["channels"]["smtp"] for i in document["items"]} == {"failed"}


def test_the_same_relay_delivers_when_the_pass_has_time(
    store: TableStore, relay: Callable[[float], Peer], tmp_path: Path
) -> None:
    """The positive control: the relay is a working SMTP server, only a slow one."""
    peer = relay(0.001)
    tenant_id = record_affected_ca(store)

    document = run_alerts(
        store=store,
        settings=settings(tmp_path),
        rules=RULES,
        now=T0,
        channels={"smtp": smtp(peer)},
        pass_budget=60.0,
    )

    (message,) = smtp_messages(document)
    assert message["outcome"] == "sent", message
    assert len(peer.posts) == 1 and tenant_id.encode() in peer.posts[0]
