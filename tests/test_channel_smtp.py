"""The SMTP channel against a real aiosmtpd server on loopback (port 0, one per test).

STARTTLS uses a self-signed certificate made here with ``cryptography``; the client trusts
it through the channel's injectable SSL context, exactly as a private relay's CA would be.
"""

from __future__ import annotations

import email
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alert_samples import rendered
from tls_samples import Tls, loopback_tls

from shared.alerts.model import RenderedMessage
from shared.channels import ChannelError, build_channels
from shared.channels.smtp import SmtpChannel
from shared.settings import Settings, SettingsError

SENDER = "ca-watch@example.com"
USER = "alerts"
PASSWORD = "Pa55-w0rd-never-logged"
HOSTILE_CN = "<script>alert(1)</script>"


class LoopbackController(Controller):
    """aiosmtpd's Controller, bound to port 0: learn the port before the readiness probe."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Handler:
    """Records what arrives; ``rcpt_reply`` / ``data_reply`` script failures."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def plain_server() -> Iterator[tuple[LoopbackController, Handler]]:
    handler = Handler()
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def tls_server(tls: Tls) -> Iterator[tuple[LoopbackController, Handler]]:
    handler = Handler()
    controller = LoopbackController(
        handler,
        hostname="127.0.0.1",
        port=0,
        tls_context=tls.server,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,  # mail only after a successful login
    )
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def message() -> RenderedMessage:
    return rendered(
        1, f"CN=Microsoft Azure Sphere {HOSTILE_CN}".replace("{", "{{").replace("}", "}}")
    )


def test_plain_relay_receives_text_and_html(
    plain_server: tuple[LoopbackController, Handler],
) -> None:
    controller, handler = plain_server
    channel = SmtpChannel("127.0.0.1", controller.port, sender=SENDER, starttls=False)
    sent = message()
    message_id = channel.send(sent, ("ops@example.com", "sec@example.com"))

    (rcpts, received), *rest = handler.messages
    assert rest == []
    assert rcpts == ["ops@example.com", "sec@example.com"]
    assert received["To"] == "ops@example.com, sec@example.com"
    assert received["From"] == SENDER
    assert received["Subject"] == sent.subject
    assert received["Message-ID"] == message_id and message_id.endswith("@example.com>")
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None and html is not None
    assert HOSTILE_CN in text.get_content()  # plain text: shown as is
    assert HOSTILE_CN not in html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.get_content()


def test_subject_with_crlf_cannot_inject_headers(
    plain_server: tuple[LoopbackController, Handler],
) -> None:
    controller, handler = plain_server
    sent = message()
    forged = RenderedMessage(
        subject="Alert\r\nBcc: victim@example.com\r\nX-Evil: 1",
        text=sent.text,
        html=sent.html,
        adaptive_card=sent.adaptive_card,
        item_count=sent.item_count,
    )
    SmtpChannel("127.0.0.1", controller.port, sender=SENDER, starttls=False).send(
        forged, ("ops@example.com",)
    )
    (rcpts, received), *_ = handler.messages
    assert rcpts == ["ops@example.com"]
    assert received["Bcc"] is None and received["X-Evil"] is None
    assert received["Subject"] == "Alert Bcc: victim@example.com X-Evil: 1"


def test_recipient_with_crlf_is_refused(plain_server: tuple[LoopbackController, Handler]) -> None:
    controller, handler = plain_server
    channel = SmtpChannel("127.0.0.1", controller.port, sender=SENDER, starttls=False)
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ("ops@example.com\r\nBcc: x@evil.example",))
    assert caught.value.retryable is False
    assert handler.messages == []


def test_starttls_and_auth(
    tls_server: tuple[LoopbackController, Handler], tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    controller, handler = tls_server
    caplog.set_level(logging.DEBUG)
    channel = SmtpChannel(
        "127.0.0.1",
        controller.port,
        sender=SENDER,
        user=USER,
        password=PASSWORD,
        ssl_context=tls.client,
    )
    channel.send(message(), ("ops@example.com",))
    assert len(handler.messages) == 1
    assert PASSWORD not in caplog.text


def test_wrong_password_is_permanent_and_never_echoed(
    tls_server: tuple[LoopbackController, Handler], tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    controller, handler = tls_server
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Pa55-" + PASSWORD
    channel = SmtpChannel(
        "127.0.0.1", controller.port, sender=SENDER, user=USER, password=wrong,
        ssl_context=tls.client,
    )  # fmt: skip
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is False
    assert "535" in caught.value.detail
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(channel)):
        assert wrong not in text
    assert handler.messages == []


def test_untrusted_certificate_is_refused(tls_server: tuple[LoopbackController, Handler]) -> None:
    controller, handler = tls_server
    channel = SmtpChannel("127.0.0.1", controller.port, sender=SENDER)  # system trust store
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is False
    assert "certificate" in caught.value.detail
    assert handler.messages == []


def test_login_without_tls_is_refused(plain_server: tuple[LoopbackController, Handler]) -> None:
    controller, handler = plain_server
    channel = SmtpChannel(
        "127.0.0.1", controller.port, sender=SENDER, user=USER, password=PASSWORD, starttls=False
    )
    with pytest.raises(ChannelError, match="without TLS") as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is False
    assert PASSWORD not in str(caught.value)
    assert handler.messages == []


def test_starttls_required_but_not_offered(
    plain_server: tuple[LoopbackController, Handler],
) -> None:
    controller, handler = plain_server
    channel = SmtpChannel("127.0.0.1", controller.port, sender=SENDER)  # starttls on by default
    with pytest.raises(ChannelError, match="STARTTLS") as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is False
    assert handler.messages == []


@pytest.mark.parametrize(
    ("stage", "reply", "retryable"),
    [
        ("rcpt", "451 4.3.0 Mailbox temporarily unavailable", True),
        ("rcpt", "550 5.1.1 No such user", False),
        ("data", "451 4.3.0 Try again later", True),
        ("data", "554 5.7.1 Rejected as spam", False),
    ],
)
def test_temporary_replies_are_retryable_permanent_ones_not(
    plain_server: tuple[LoopbackController, Handler], stage: str, reply: str, retryable: bool
) -> None:
    controller, handler = plain_server
    setattr(handler, f"{stage}_reply", reply)
    channel = SmtpChannel("127.0.0.1", controller.port, sender=SENDER, starttls=False)
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is retryable
    assert reply.split()[0] in caught.value.detail


def test_connection_refused_is_retryable() -> None:
    handler = Handler()
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    port = controller.port
    controller.stop()
    channel = SmtpChannel("127.0.0.1", port, sender=SENDER, starttls=False, timeout=2)
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is True


def test_build_channels_names_missing_smtp_settings() -> None:
    with pytest.raises(SettingsError, match="SMTP_HOST"):
        build_channels(Settings(alert_channels=("smtp",)))
    with pytest.raises(SettingsError, match="ALERT_EMAIL_FROM"):
        build_channels(Settings(alert_channels=("smtp",), smtp_host="relay"))
    with pytest.raises(SettingsError, match="ALERT_EMAIL_TO"):
        build_channels(
            Settings(alert_channels=("smtp",), smtp_host="relay", alert_email_from=SENDER)
        )
    base = {"smtp_host": "relay", "alert_email_from": SENDER, "alert_email_to": ("a@x.example",)}
    with pytest.raises(SettingsError, match="SMTP_PASSWORD"):
        build_channels(Settings(alert_channels=("smtp",), smtp_user=USER, **base))
    with pytest.raises(SettingsError, match="SMTP_STARTTLS") as caught:
        build_channels(
            Settings(
                alert_channels=("smtp",), smtp_user=USER, smtp_password=PASSWORD,
                smtp_starttls=False, **base,
            )
        )  # fmt: skip
    assert PASSWORD not in str(caught.value)
    channels = build_channels(
        Settings(alert_channels=("smtp",), smtp_user=USER, smtp_password=PASSWORD, **base)
    )
    assert PASSWORD not in repr(channels["smtp"])
