"""Kill tests for `make mutation` on shared/channels/smtp.py (issue 24): the message as it
goes on the wire, and each failure's words, retry class and unclear flag, where the
behaviour tests (tests/test_channel_smtp.py, the trickling relays) leave a mutant alive.

Pure where the code is (``build_email``); the sends go to a real aiosmtpd server on loopback
or to the misbehaving-peer suite's scripted SMTP server."""

from __future__ import annotations

import base64
import contextlib
import email
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime

import pytest
from alert_samples import rendered
from tls_samples import Tls, loopback_tls

from shared.alerts.model import RenderedMessage
from shared.channels import ChannelError, smtp
from shared.channels.deadline import Deadline, DeadlineExceeded
from shared.channels.smtp import SmtpChannel, build_email

SENDER = "watch@example.com"


def _header_lines(raw: bytes) -> list[str]:
    """The header lines of the message and of each part, as sent."""
    return [line for line in raw.decode().splitlines() if line[:1].isalpha() and ": " in line]


def test_the_message_carries_its_headers_spelled_as_sent() -> None:
    message = rendered(1)
    before = datetime.now(UTC).replace(microsecond=0)
    built = build_email(message, SENDER, ("ops@example.com", "sec@example.com"))
    after = datetime.now(UTC)

    assert list(built.keys()) == [
        "Subject", "From", "To", "Date", "Message-ID", "MIME-Version", "Content-Type",
    ]  # fmt: skip
    raw = built.as_bytes()
    lines = _header_lines(raw)
    assert lines[0].startswith("Subject: CA Rotation Watch: ")  # folded after that
    assert "From: watch@example.com" in lines
    assert "To: ops@example.com, sec@example.com" in lines
    # The Date is in UTC and says so ("+0000"; "-0000" would mean "zone unknown").
    (date,) = [line.removeprefix("Date: ") for line in lines if line.startswith("Date: ")]
    assert date.endswith(" +0000")
    assert before <= parsedate_to_datetime(date) <= after
    assert 'Content-Type: text/plain; charset="utf-8"' in lines
    assert 'Content-Type: text/html; charset="utf-8"' in lines
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed["Message-ID"].endswith("@example.com>")


def test_the_message_id_takes_the_domain_after_the_last_at_sign() -> None:
    sender = '"ops@desk"@alerts.example.org'  # a quoted local part may hold an "@"
    built = build_email(rendered(1), sender, ("ops@example.com",))
    assert str(built["Message-ID"]).endswith("@alerts.example.org>")


def test_a_sender_without_a_domain_gets_the_hosts_message_id() -> None:
    built = build_email(rendered(1), "watch", ("ops@example.com",))
    # make_msgid's own domain (this host's name), not an empty one ("...@>")
    assert not str(built["Message-ID"]).endswith("@>")


@pytest.mark.parametrize(
    ("length", "sent"),
    [(250, "s" * 250), (251, "s" * 249 + "…"), (400, "s" * 249 + "…")],
)
def test_the_subject_is_cut_at_250_characters(length: int, sent: str) -> None:
    message = rendered(1)
    long = RenderedMessage(
        subject="s" * length,
        text=message.text,
        html=message.html,
        adaptive_card=message.adaptive_card,
        item_count=message.item_count,
    )
    built = build_email(long, SENDER, ("ops@example.com",))
    assert str(built["Subject"]) == sent


@pytest.mark.parametrize(
    "address",
    [
        "ops@example.com\r\nBcc: x@evil.example",  # a header added
        "ops@example.com, x@evil.example",  # a recipient added
        "ops@example.com,x@evil.example",
        "a" * 309 + "@example.com",  # 321 characters: cut by `clean`, so refused
    ],
)
def test_an_address_that_could_add_headers_or_recipients_is_refused(address: str) -> None:
    for sender, recipients in ((address, ("ops@example.com",)), (SENDER, (address,))):
        with pytest.raises(ChannelError) as caught:
            build_email(rendered(1), sender, recipients)
        error = caught.value
        assert error.retryable is False
        shown = address.replace("\r\n", " ")  # under 400 characters: shown whole
        assert error.detail == f"smtp: refusing address {shown!r}"


def test_an_address_of_320_characters_is_used_whole() -> None:
    address = "a" * 308 + "@example.com"
    assert len(address) == 320
    built = build_email(rendered(1), SENDER, (address,))
    assert str(built["To"]) == address


# -- the channel against a scripted relay -------------------------------------------------


@dataclass
class Relay:
    """An SMTP server on a loopback address, scripted per verb; what it hears is kept.

    ``rcpt`` answers each RCPT by address, ``auth`` each AUTH line; ``quit=None`` closes the
    connection without a reply; ``tls`` offers STARTTLS (AUTH only after it)."""

    host: str = "127.0.0.1"
    rcpt: Callable[[str], str] = lambda address: "250 ok"
    data: str | bytes | None = "250 queued"  # None: no reply, until the client leaves
    auth: Callable[[str], str] = lambda line: "235 ok"
    quit: str | None = "221 bye"
    tls: ssl.SSLContext | None = None
    auth_offered: bool = True
    commands: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    accepted: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(10)
            self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        secured = False

        def say(reply: str | bytes) -> None:
            conn.sendall((reply if isinstance(reply, bytes) else reply.encode()) + b"\r\n")

        say("220 relay.test ESMTP")
        while line := reader.readline():
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(text)
            verb = text[:4].upper()
            if verb == "EHLO":
                features = ["8BITMIME"]
                if self.tls is not None and not secured:
                    features.append("STARTTLS")
                if self.auth_offered and (secured or self.tls is None):
                    features.append("AUTH PLAIN")
                lines = ["relay.test", *features]
                say("\r\n".join(f"250-{f}" for f in lines[:-1]) + f"\r\n250 {lines[-1]}")
            elif verb == "STAR" and self.tls is not None:
                say("220 go ahead")
                conn = self.tls.wrap_socket(conn, server_side=True)
                reader, secured = conn.makefile("rb"), True
            elif verb == "AUTH":
                say(self.auth(text))
            elif verb == "RCPT":
                say(self.rcpt(text.partition(":")[2].strip("<> ")))
            elif verb == "DATA":
                say("354 go on")
                payload = b""
                while (chunk := reader.readline()) not in (b".\r\n", b""):
                    payload += chunk
                self.payloads.append(payload)
                self.accepted.set()
                if self.data is None:
                    while reader.readline():
                        pass
                    return
                say(self.data)
            elif verb == "QUIT":
                if self.quit is not None:
                    say(self.quit)
                return
            else:
                say("250 ok")

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept (a bare close would not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.fixture
def relays() -> Iterator[Callable[..., Relay]]:
    started: list[Relay] = []

    def start(**script: object) -> Relay:
        relay = Relay(**script)  # type: ignore[arg-type]
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return loopback_tls(tmp_path_factory.mktemp("tls"))


def channel(relay: Relay, **options: object) -> SmtpChannel:
    options.setdefault("starttls", False)
    return SmtpChannel(relay.host, relay.port, sender=SENDER, **options)  # type: ignore[arg-type]


def failure(
    relay: Relay, recipients: tuple[str, ...] = ("ops@example.com",), **options: object
) -> ChannelError:
    deadline = options.pop("deadline", None)
    with pytest.raises(ChannelError) as caught:
        channel(relay, **options).send(rendered(1), recipients, deadline=deadline)  # type: ignore[arg-type]
    return caught.value


def test_the_channels_defaults_are_the_submission_port_starttls_and_30_s() -> None:
    relay_channel = SmtpChannel("relay.example", sender=SENDER)
    assert repr(relay_channel) == "SmtpChannel('relay.example', 587, user=None)"
    assert (relay_channel.host, relay_channel.port, relay_channel.sender) == (
        "relay.example", 587, SENDER,
    )  # fmt: skip
    # The per-read bound: seeing it act takes a relay silent for 30 s per run.
    assert relay_channel._timeout == 30.0


def test_the_relay_is_reached_at_its_own_address(relays: Callable[..., Relay]) -> None:
    """127.0.0.2 is loopback too; nothing of this test listens on 127.0.0.1 at its port, so
    a channel that connected anywhere else (localhost, say) would be refused."""
    relay = relays(host="127.0.0.2")
    assert channel(relay).send(rendered(1), ("ops@example.com",)) is not None
    ehlo, mail, rcpt, data, quit_ = (command.lower() for command in relay.commands)
    assert ehlo.startswith("ehlo ") and mail.startswith(f"mail from:<{SENDER}>")
    assert (rcpt, data, quit_) == ("rcpt to:<ops@example.com>", "data", "quit")


def test_no_recipients_is_a_permanent_error_that_names_the_relay() -> None:
    with pytest.raises(ChannelError) as caught:
        SmtpChannel("relay.example", 2525, sender=SENDER).send(rendered(1), ())
    error = caught.value
    assert (error.detail, error.retryable, error.unclear) == (
        "smtp relay.example:2525: no recipients", False, False,
    )  # fmt: skip


def test_credentials_without_tls_are_refused_in_so_many_words(relays: Callable[..., Relay]) -> None:
    relay = relays()
    error = failure(relay, user="alerts", password="Pa55-w0rd")
    assert (error.detail, error.retryable, error.unclear) == (
        f"smtp 127.0.0.1:{relay.port}: refusing to send credentials without TLS "
        "(SMTP_STARTTLS is false)", False, False,
    )  # fmt: skip
    assert relay.commands == []


def test_a_relay_without_starttls_is_refused_in_so_many_words(relays: Callable[..., Relay]) -> None:
    relay = relays()
    error = failure(relay, starttls=True)
    assert (error.detail, error.retryable, error.unclear) == (
        f"smtp 127.0.0.1:{relay.port}: server does not offer STARTTLS; refusing to send "
        "without TLS", False, False,
    )  # fmt: skip
    assert relay.payloads == []


def test_login_goes_over_tls_with_the_password_as_given(
    relays: Callable[..., Relay], tls: Tls
) -> None:
    relay = relays(tls=tls.server)
    sent = channel(
        relay, starttls=True, ssl_context=tls.client, user="alerts", password="Pa55-w0rd"
    )
    assert sent.send(rendered(1), ("ops@example.com",)) is not None
    plain = base64.b64encode(b"\0alerts\0Pa55-w0rd").decode()
    assert f"AUTH PLAIN {plain}" in relay.commands
    assert relay.commands.index("STARTTLS") < relay.commands.index(f"AUTH PLAIN {plain}")


def test_a_user_without_a_password_logs_in_with_an_empty_one(
    relays: Callable[..., Relay], tls: Tls
) -> None:
    relay = relays(tls=tls.server)
    sent = channel(relay, starttls=True, ssl_context=tls.client, user="alerts")
    assert sent.send(rendered(1), ("ops@example.com",)) is not None
    empty = base64.b64encode(b"\0alerts\0").decode()
    assert f"AUTH PLAIN {empty}" in relay.commands


def test_a_relay_that_echoes_the_credentials_has_them_redacted(
    relays: Callable[..., Relay], tls: Tls
) -> None:
    relay = relays(tls=tls.server, auth=lambda line: f"535 5.7.8 rejected: {line}")
    user, password = "alerts", "Pa55-w0rd"
    error = failure(relay, starttls=True, ssl_context=tls.client, user=user, password=password)
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    assert error.detail == (
        f"smtp 127.0.0.1:{relay.port}: SMTPAuthenticationError 535 5.7.8 rejected: AUTH PLAIN "
        "<redacted>"
    )
    assert plain not in error.detail and (error.retryable, error.unclear) == (False, False)


def test_a_relay_without_auth_is_not_supported_permanently(
    relays: Callable[..., Relay], tls: Tls
) -> None:
    relay = relays(tls=tls.server, auth_offered=False)
    error = failure(relay, starttls=True, ssl_context=tls.client, user="alerts", password="pw12")
    assert (error.detail, error.retryable, error.unclear) == (
        f"smtp 127.0.0.1:{relay.port}: not supported by the server: SMTP AUTH extension not "
        "supported by server.", False, False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("code", "retryable"), [(399, False), (400, True), (499, True), (500, False)]
)
def test_the_retry_class_of_a_reply_code_at_each_edge(
    code: int, retryable: bool, relays: Callable[..., Relay]
) -> None:
    relay = relays(data=f"{code} 4.0.0 as scripted")
    error = failure(relay)
    assert (error.detail, error.retryable, error.unclear) == (
        f"smtp 127.0.0.1:{relay.port}: SMTPDataError {code} 4.0.0 as scripted", retryable, False,
    )  # fmt: skip

    relay = relays(rcpt=lambda address: f"{code} 4.1.1 {address} as scripted")
    error = failure(relay)
    assert (error.detail, error.retryable) == (
        f"smtp 127.0.0.1:{relay.port}: all recipients refused (ops@example.com: {code} 4.1.1 "
        "ops@example.com as scripted)", retryable,
    )  # fmt: skip


def test_every_refusal_is_named_and_one_permanent_makes_it_permanent(
    relays: Callable[..., Relay],
) -> None:
    codes = {"a@example.com": "451 4.2.0 later", "b@example.com": "550 5.1.1 no such user"}
    relay = relays(rcpt=lambda address: codes[address])
    error = failure(relay, ("a@example.com", "b@example.com"))
    assert (error.detail, error.retryable) == (
        f"smtp 127.0.0.1:{relay.port}: all recipients refused (a@example.com: 451 4.2.0 later; "
        "b@example.com: 550 5.1.1 no such user)", False,
    )  # fmt: skip


def test_a_reply_is_cut_at_500_characters_and_read_whatever_its_bytes(
    relays: Callable[..., Relay],
) -> None:
    relay = relays(data="554 " + "x" * 600)
    assert failure(relay).detail == (
        f"smtp 127.0.0.1:{relay.port}: SMTPDataError 554 " + "x" * 499 + "…"
    )
    relay = relays(data="554 " + "x" * 496)  # 500 with the code: whole
    assert failure(relay).detail.endswith("554 " + "x" * 496)
    relay = relays(data=b"554 5.6.0 caf\xe9")
    assert failure(relay).detail.endswith("554 5.6.0 caf\ufffd")  # Latin-1 é, not UTF-8


def test_some_recipients_refused_is_sent_with_a_warning(
    relays: Callable[..., Relay], caplog: pytest.LogCaptureFixture
) -> None:
    refused = {"c@example.com", "a@example.com"}
    relay = relays(rcpt=lambda address: "550 no" if address in refused else "250 ok")
    caplog.set_level(logging.WARNING, logger="shared.channels.smtp")
    message_id = channel(relay).send(
        rendered(1), ("c@example.com", "b@example.com", "a@example.com")
    )
    parsed = email.message_from_bytes(relay.payloads[0], policy=default_policy)
    assert message_id == parsed["Message-ID"]
    (record,) = [r for r in caplog.records if r.name == "shared.channels.smtp"]
    assert (record.levelname, record.getMessage()) == (
        "WARNING", "SMTP server refused some recipients: a@example.com, c@example.com",
    )  # fmt: skip


def test_an_address_the_relay_cannot_take_is_not_supported_permanently(
    relays: Callable[..., Relay],
) -> None:
    relay = relays()  # no SMTPUTF8
    error = failure(relay, ("opé@example.com",))
    assert (error.detail, error.retryable, error.unclear) == (
        f"smtp 127.0.0.1:{relay.port}: not supported by the server: One or more source or "
        "delivery addresses require internationalized email support, but the server does "
        "not advertise the required SMTPUTF8 capability", False, False,
    )  # fmt: skip


def test_a_refused_connection_says_so_and_is_retryable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(ChannelError) as caught:
            SmtpChannel("127.0.0.1", port, sender=SENDER, starttls=False).send(
                rendered(1), ("ops@example.com",)
            )
    error = caught.value
    assert (error.detail, error.retryable, error.unclear) == (
        f"smtp 127.0.0.1:{port}: ConnectionRefusedError: [Errno 111] Connection refused",
        True,
        False,
    )


def test_silence_after_the_final_dot_is_unclear_and_says_why(relays: Callable[..., Relay]) -> None:
    relay = relays(data=None)
    error = failure(relay, deadline=0.5)
    assert error.detail == (
        f"smtp 127.0.0.1:{relay.port}: no answer within the 0.5 s deadline after the message "
        "was sent (the server may have accepted it)"
    )
    assert (error.retryable, error.unclear) == (True, True)


def test_a_pass_with_no_time_left_sends_nothing(relays: Callable[..., Relay]) -> None:
    relay = relays()
    error = failure(relay, deadline=0)
    assert error.detail == f"smtp 127.0.0.1:{relay.port}: no answer within the 0 s deadline"
    assert (error.retryable, error.unclear) == (True, False)
    assert relay.commands == []


def test_a_relay_that_leaves_without_answering_quit_has_the_message(
    relays: Callable[..., Relay],
) -> None:
    relay = relays(quit=None)
    assert channel(relay).send(rendered(1), ("ops@example.com",)) is not None
    assert len(relay.payloads) == 1


def test_the_deadline_passing_before_quit_leaves_the_message_sent(
    relays: Callable[..., Relay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay took the message; the deadline runs out before QUIT can go: sent, not
    failed (a failure would send it again). The deadline is made to end at that moment."""
    relay = relays()

    class EndsOnceAccepted(Deadline):
        def timeout(self, per_operation: float) -> float:
            if relay.accepted.is_set():
                raise DeadlineExceeded("the deadline has passed")
            return super().timeout(per_operation)

    monkeypatch.setattr(smtp, "Deadline", EndsOnceAccepted)
    assert channel(relay).send(rendered(1), ("ops@example.com",)) is not None
    assert "quit" not in relay.commands and len(relay.payloads) == 1


def test_a_greeting_trickled_past_the_deadline_is_cut_at_the_deadline() -> None:
    """One byte every 0.1 s, each read well inside its timeout: only the watch on the
    socket ends the exchange at 0.5 s (the greeting alone would take 4 s)."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):
            for byte in b"220 " + b"x" * 34 + b"\r\n":
                if stop.wait(0.1):
                    return
                conn.sendall(bytes([byte]))

    threading.Thread(target=trickle, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(ChannelError) as caught:
            SmtpChannel("127.0.0.1", listener.getsockname()[1], sender=SENDER, starttls=False).send(
                rendered(1), ("ops@example.com",), deadline=0.5
            )
        seconds = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert seconds < 2.0
    assert caught.value.detail.endswith("no answer within the 0.5 s deadline")


def test_a_connect_nobody_answers_ends_at_the_deadline() -> None:
    """A listener whose backlog is full drops the SYN: the connect itself hangs, before any
    socket exists for the watch to shut down; only its own timeout ends it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())  # the backlog's one place
    try:
        started = time.monotonic()
        with pytest.raises(ChannelError) as caught:
            SmtpChannel("127.0.0.1", listener.getsockname()[1], sender=SENDER, starttls=False).send(
                rendered(1), ("ops@example.com",), deadline=0.5
            )
        seconds = time.monotonic() - started
    finally:
        filler.close()
        listener.close()
    assert seconds < 2.0
    assert caught.value.detail.endswith("no answer within the 0.5 s deadline")
