"""A wall-clock deadline for one send that holds whatever the peer does.

A socket timeout bounds each read, not the exchange: a peer that trickles one byte every
few seconds never trips it. Here a timer shuts the watched socket down when the deadline
passes, which ends any blocking connect, read or write at once (the library in the middle,
smtplib or http.client, then raises, and the channel asks ``expired`` what happened).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

# Each send's default total time (DESIGN §4 / issue 15): connect, TLS, request and reply.
DEFAULT_SEND_DEADLINE = 30.0


class DeadlineExceeded(Exception):
    """The deadline passed before the operation could start."""


SocketGetter = Callable[[], socket.socket | None]


class Deadline:
    """``with Deadline(30) as deadline: ... deadline.watch(lambda: conn.sock) ...``"""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = max(0.0, seconds)
        self._clock = clock
        self._ends = clock() + self.seconds
        self._lock = threading.Lock()
        self._watched: list[SocketGetter] = []
        self._timer: threading.Timer | None = None
        self.expired = False

    def remaining(self) -> float:
        return max(0.0, self._ends - self._clock())

    def passed(self) -> bool:
        """Whether the deadline ended the operation: the timer fired, or a socket timeout
        cut to the time left ran out a moment before it (clocks differ by a hair)."""
        return self.expired or self.remaining() < 0.05

    def timeout(self, per_operation: float) -> float:
        """The socket timeout for the next operation: never beyond the deadline."""
        left = self.remaining()
        if left <= 0 or self.expired:
            raise DeadlineExceeded(f"the {self.seconds:g} s send deadline has passed")
        return min(per_operation, left)

    def watch(self, get_socket: SocketGetter) -> None:
        """Shut down whatever socket ``get_socket`` returns when the deadline passes.

        A getter rather than a socket: STARTTLS replaces the socket mid-exchange."""
        with self._lock:
            self._watched.append(get_socket)
            expired = self.expired
        if expired:
            _shutdown(get_socket)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            watched = list(self._watched)
        for get_socket in watched:
            _shutdown(get_socket)

    def __enter__(self) -> Deadline:
        self._timer = threading.Timer(self.remaining(), self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _shutdown(get_socket: SocketGetter) -> None:
    sock = get_socket()
    if sock is None:
        return
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the TLS state that
    # a read blocked in another thread is using.
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
