"""What every channel shares: the ``Channel`` protocol, ``ChannelError``, and the
redaction of secrets (webhook signatures, passwords) before anything is logged or stored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

from shared.alerts.model import RenderedMessage

REDACTED = "<redacted>"


class ChannelError(Exception):
    """A send failed, or may have. ``retryable``: a later attempt may succeed.

    ``unclear``: the message may have arrived (it was sent, and no answer came back: a
    read timeout, a connection closed without a reply, a 5xx). The caller must not send
    it again in this run, and records the outcome as unknown. ``retry_after``: seconds the
    peer asked to wait (HTTP Retry-After). ``detail`` is safe to log and store: channels
    redact webhook query strings and passwords before building it.
    """

    def __init__(
        self,
        detail: str,
        *,
        retryable: bool,
        unclear: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.unclear = unclear
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ChannelError({self.detail!r}, retryable={self.retryable}, unclear={self.unclear})"


@runtime_checkable
class Channel(Protocol):
    name: str

    def send(
        self,
        message: RenderedMessage,
        recipients: tuple[str, ...],
        *,
        deadline: float | None = None,
    ) -> str | None:
        """Deliver ``message`` within ``deadline`` seconds (None: the channel's own);
        return the provider's id for it, if any."""
        ...


def redact_url(url: str) -> str:
    """scheme://host/path with the query string (Workflows' ``sig=``), fragment and any
    user info removed: the form of a webhook URL that may appear in logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return REDACTED
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


_SECRET_PARAM = re.compile(r"(?i)\b(sig|signature|code|token|key|sv|se|sp)=[^&\s'\"<>]+")


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Remove each secret (as given and URL-encoded) from text, plus anything that looks
    like a signature query parameter."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            for form in {secret, quote(secret, safe=""), quote(secret, safe="/:=&?")}:
                text = text.replace(form, REDACTED)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that must never be logged: its query, each query value, and
    the password of any user info."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    secrets = [parts.query, parts.password or ""]
    for pair in parts.query.split("&"):
        _, _, value = pair.partition("=")
        secrets.append(value)
    return [s for s in secrets if s]
