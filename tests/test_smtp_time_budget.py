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
from contextlib import closing
from pathlib import Path

import pytest
from alert_samples import rendered
from test_misbehaving_peers import RULES, T0, Peer, record_affected_ca, smtp_server

from shared.app import handlers
from shared.app.alert_pass import run_alerts
from shared.channels import ChannelError
from shared.channels.deadline import DEFAULT_SEND_DEADLINE
from shared.channels.smtp import SmtpChannel
from shared.settings import Settings
from shared.storage.store import TableStore

PASS_BUDGET = 2.0  # seconds: the pass's time left, far below the channel's own 30 s
SLACK = 4.0  # the pass's own storage round trips on Azurite, on a busy 2-core machine


class TricklingRelay(Peer):
    """The misbehaving-peer suite's SMTP server, writing every reply one byte every
    ``every`` seconds: a whole exchange takes seconds, yet no read waits long."""

    def __init__(self, every: float) -> None:
        self.every = every  # before the server starts: its first reply uses it
        super().__init__(smtp_server(b"250 queued\r\n"))

    def send(self, conn: socket.socket, data: bytes) -> None:
        for byte in data:
            if self.stop.wait(self.every):
                return
            super().send(conn, bytes([byte]))


def smtp(peer: Peer) -> SmtpChannel:
    """The channel with its production deadline and a read timeout no trickle trips."""
    return SmtpChannel(
        "127.0.0.1", peer.port, sender="watch@example.com", starttls=False, timeout=30.0
    )


def alert_pass(store: TableStore, peer: Peer, tmp_path: Path, budget: float) -> dict:
    """One alert pass at T0 with the SMTP channel alone, and ``budget`` seconds."""
    settings = Settings(
        alert_channels=("smtp",),
        alert_outbox_dir=str(tmp_path / "outbox"),
        alert_email_from="watch@example.com",
        alert_email_to=("ops@example.com",),
    )
    return run_alerts(
        store=store,
        settings=settings,
        rules=RULES,
        now=T0,
        channels={"smtp": smtp(peer)},
        pass_budget=budget,
    )


def smtp_messages(document: dict) -> list[dict]:
    return [m for m in document["messages"] if m["channel"] == "smtp"]


def test_the_channel_gives_up_at_the_time_it_is_given_not_its_own_30_s() -> None:
    with closing(TricklingRelay(0.1)) as peer:  # the greeting alone takes 2 s
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
    app_runtime: handlers.Runtime, tmp_path: Path
) -> None:
    record_affected_ca(app_runtime.store)
    # A whole exchange takes about 8 s: more than the pass has.
    with closing(TricklingRelay(0.05)) as peer:
        started = time.monotonic()
        document = alert_pass(app_runtime.store, peer, tmp_path, PASS_BUDGET)
        seconds = time.monotonic() - started

    assert seconds < PASS_BUDGET + SLACK  # not the channel's own 30 s
    (message,) = smtp_messages(document)
    assert message["outcome"] == "failed"
    assert "deadline" in message["error"]
    assert peer.posts == []
    assert {i["channels"]["smtp"] for i in document["items"]} == {"failed"}


def test_the_same_relay_delivers_when_the_pass_has_time(
    app_runtime: handlers.Runtime, tmp_path: Path
) -> None:
    """The positive control: the relay is a working SMTP server, only a slow one."""
    tenant_id = record_affected_ca(app_runtime.store)
    with closing(TricklingRelay(0.001)) as peer:
        document = alert_pass(app_runtime.store, peer, tmp_path, 60.0)

    (message,) = smtp_messages(document)
    assert message["outcome"] == "sent", message
    assert len(peer.posts) == 1 and tenant_id.encode() in peer.posts[0]
