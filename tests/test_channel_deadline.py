"""The send deadline on its own: a blocked read ends when the deadline passes, however
patient the socket timeout is."""

from __future__ import annotations

import socket
import time

import pytest

from shared.channels.deadline import Deadline, DeadlineExceeded


def test_a_blocked_read_ends_at_the_deadline_not_at_the_socket_timeout() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.settimeout(30)  # per read: alone it would wait 30 s
        started = time.monotonic()
        with Deadline(0.3) as deadline:
            deadline.watch(lambda: ours)
            data = ours.recv(10)  # the peer never writes
        assert data == b"" and deadline.expired
        assert time.monotonic() - started < 2


def test_timeouts_never_reach_past_the_deadline() -> None:
    moments = iter([100.0, 100.0, 109.5, 111.0])
    deadline = Deadline(10, clock=lambda: next(moments))  # ends at 110
    assert deadline.timeout(30) == 10
    assert deadline.timeout(30) == pytest.approx(0.5)
    with pytest.raises(DeadlineExceeded):
        deadline.timeout(30)


def test_a_socket_watched_after_expiry_is_shut_at_once() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        with Deadline(0) as deadline:
            time.sleep(0.05)
            deadline.watch(lambda: ours)
            ours.settimeout(5)
            assert ours.recv(10) == b""
        assert deadline.expired
