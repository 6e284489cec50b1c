"""Email over SMTP, with STARTTLS (on by default) and optional login.

Credentials are never sent over a connection without TLS. Temporary failures (4xx
replies, dropped connections) are retryable; 5xx replies are permanent. Each send ends
within its deadline, however slowly the server talks (smtplib's timeout is per read); a
connection lost after the message's final dot went out is an unclear outcome (the server
may have queued it), never retried in the same run.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from shared.alerts.model import RenderedMessage
from shared.alerts.text_safety import clean
from shared.channels.base import ChannelError, scrub
from shared.channels.deadline import DEFAULT_SEND_DEADLINE, Deadline, DeadlineExceeded

log = logging.getLogger(__name__)


def build_email(message: RenderedMessage, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    """multipart/alternative (text, then HTML) with From, To, Subject, Date and Message-ID."""
    for address in (sender, *recipients):
        if clean(address, limit=320) != address or "," in address:
            # A CR/LF or comma in an address could add headers or recipients.
            raise ChannelError(f"smtp: refusing address {clean(address)!r}", retryable=False)
    email = EmailMessage()
    email["Subject"] = clean(message.subject, limit=250)  # no CR/LF: no header injection
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = formatdate(usegmt=True)
    domain = sender.rpartition("@")[2] or None
    email["Message-ID"] = make_msgid(domain=domain)
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


class _WatchedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose sockets the deadline watches from the moment they exist, and
    that knows when the message itself has gone out."""

    def __init__(self, deadline: Deadline, per_read: float) -> None:
        self.deadline = deadline
        self.per_read = per_read
        self.message_sent = False  # from here on, a lost reply is an unclear outcome
        super().__init__(timeout=deadline.timeout(per_read))
        deadline.watch(lambda: getattr(self, "sock", None))

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(host, port, self.deadline.timeout(self.per_read))

    def send(self, s: bytes | str) -> None:
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.message_sent = True  # DATA's payload with its final dot
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.settimeout(self.deadline.timeout(self.per_read))
        super().send(s)


class SmtpChannel:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        deadline: float = DEFAULT_SEND_DEADLINE,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self._user = user
        self._password = password
        self._starttls = starttls
        self._ssl_context = ssl_context
        self._timeout = timeout  # per read; ``deadline`` bounds the whole send
        self._deadline = deadline

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host!r}, {self.port}, user={self._user!r})"

    def _secrets(self) -> list[str | None]:
        if not self._password:
            return []
        plain = f"\0{self._user or ''}\0{self._password}".encode()
        return [
            self._password,
            base64.b64encode(self._password.encode()).decode(),
            base64.b64encode(plain).decode(),
        ]

    def _error(self, detail: str, *, retryable: bool, unclear: bool = False) -> ChannelError:
        text = f"smtp {self.host}:{self.port}: {detail}"
        return ChannelError(scrub(text, self._secrets()), retryable=retryable, unclear=unclear)

    def send(
        self,
        message: RenderedMessage,
        recipients: tuple[str, ...],
        *,
        deadline: float | None = None,
    ) -> str | None:
        """Send to ``recipients`` within the deadline; returns the Message-ID."""
        if not recipients:
            raise self._error("no recipients", retryable=False)
        if self._user and not self._starttls:
            raise self._error(
                "refusing to send credentials without TLS (SMTP_STARTTLS is false)",
                retryable=False,
            )
        email = build_email(message, self.sender, recipients)
        seconds = self._deadline if deadline is None else min(deadline, self._deadline)
        with Deadline(seconds) as clock:
            return self._send(email, recipients, clock)

    def _exchange(
        self, smtp: _WatchedSMTP, email: EmailMessage, recipients: tuple[str, ...]
    ) -> dict[str, tuple[int, bytes]]:
        smtp._host = self.host  # what starttls() checks the certificate against
        smtp.connect(self.host, self.port)
        smtp.ehlo()
        if self._starttls:
            if not smtp.has_extn("starttls"):
                raise self._error(
                    "server does not offer STARTTLS; refusing to send without TLS",
                    retryable=False,
                )
            context = self._ssl_context or ssl.create_default_context()
            smtp.starttls(context=context)
            smtp.ehlo()
        if self._user:
            smtp.login(self._user, self._password or "")
        refused = smtp.send_message(email, from_addr=self.sender, to_addrs=list(recipients))
        # Accepted: a QUIT that goes wrong (or runs out of time) changes nothing.
        with contextlib.suppress(smtplib.SMTPException, OSError, DeadlineExceeded):
            smtp.quit()
        return refused

    def _send(self, email: EmailMessage, recipients: tuple[str, ...], clock: Deadline) -> str:
        smtp: _WatchedSMTP | None = None
        try:
            smtp = _WatchedSMTP(clock, self._timeout)
            try:
                refused = self._exchange(smtp, email, recipients)
            finally:
                smtp.close()
        except ChannelError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            replies = "; ".join(
                f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items()
            )
            retryable = bool(codes) and all(400 <= c < 500 for c in codes)
            raise self._error(f"all recipients refused ({replies})", retryable=retryable) from None
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            retryable = 400 <= code < 500
            raise self._error(
                f"{type(exc).__name__} {code} {_text(exc.smtp_error)}", retryable=retryable
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise self._error(f"not supported by the server: {exc}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            # A certificate the client does not trust will not fix itself.
            raise self._error(
                f"TLS certificate not trusted: {exc.verify_message}", retryable=False
            ) from None
        except (smtplib.SMTPException, OSError, DeadlineExceeded) as exc:
            # Disconnects, timeouts, refused connections, TLS handshake failures.
            reason = f"{type(exc).__name__}: {exc}"
            if clock.passed() or isinstance(exc, DeadlineExceeded):
                reason = f"no answer within the {clock.seconds:g} s deadline"
            unclear = smtp is not None and smtp.message_sent
            if unclear:
                reason += " after the message was sent (the server may have accepted it)"
            raise self._error(reason, retryable=True, unclear=unclear) from None
        if refused:
            # Delivered to the others: reporting failure would send them a duplicate.
            log.warning("SMTP server refused some recipients: %s", ", ".join(sorted(refused)))
        return str(email["Message-ID"])


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return clean(value, limit=500)
