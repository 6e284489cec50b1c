"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received").

The body is a ``message`` whose one attachment is the Adaptive Card (the retired Office
365 connector MessageCard is not used). Any 2xx is success (Workflows answers 202).

Every send ends within its deadline, whatever the peer does, and never posts the card
twice in one run (issue 15):
- not delivered for sure (the connection was refused, 429, 408): tried again in this run
  while the deadline allows, honouring Retry-After;
- maybe delivered (the body went out and no status came back: a read timeout, a
  connection closed mid-reply, the deadline, a 5xx): ``ChannelError(unclear=True)``, and
  the caller records the outcome as unknown instead of posting again;
- any other status fails at once with the first bytes of the response in the error.
At most ``MAX_RESPONSE_BYTES`` of a response are read.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from shared.alerts.model import RenderedMessage
from shared.alerts.teams_card import encode_teams_payload
from shared.alerts.text_safety import clean
from shared.channels.base import ChannelError, redact_url, scrub, url_secrets
from shared.channels.deadline import DEFAULT_SEND_DEADLINE, Deadline, DeadlineExceeded
from shared.settings import KEY_VAULT_REFERENCE_PREFIX

log = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 500
MAX_RESPONSE_BYTES = 4096  # what is read of any answer: a 1 GiB body stays on the wire
KEY_VAULT_REFERENCE = KEY_VAULT_REFERENCE_PREFIX
# Not delivered for sure, and worth another go: throttled, or the server timed out
# waiting for our request.
_NOT_DELIVERED = frozenset({408, 429})


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _tls_context() -> ssl.SSLContext:
    try:  # the same roots requests used (certifi comes with it); else the system's
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi is installed with requests
        return ssl.create_default_context()


class _Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, excerpt: str) -> None:
        self.status, self.headers, self.excerpt = status, headers, excerpt


class TeamsChannel:
    name = "teams"

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10.0,
        deadline: float = DEFAULT_SEND_DEADLINE,
        max_attempts: int = 3,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = webhook_url
        self._secrets = url_secrets(webhook_url)
        self._timeout = timeout  # per connect / read; ``deadline`` bounds the whole send
        self._deadline = deadline
        self._max_attempts = max(1, max_attempts)
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._ssl_context = ssl_context
        # The app setting still holds the literal Key Vault reference when the platform
        # could not resolve it (the identity's role arrived late): a setup problem for the
        # self-health alert, not a send to try and fail every run.
        self.configuration_problem: str | None = None
        if webhook_url.strip().startswith(KEY_VAULT_REFERENCE):
            self.configuration_problem = (
                "TEAMS_WEBHOOK_URL is an unresolved Key Vault reference: the app cannot "
                "read the secret (check that its identity holds Key Vault Secrets User on "
                "the vault, then restart the app to resolve it again)"
            )
            self.safe_url = "<unresolved Key Vault reference>"
        else:
            self.safe_url = redact_url(webhook_url)

    def __repr__(self) -> str:
        return f"TeamsChannel({self.safe_url!r})"

    def _error(
        self,
        detail: str,
        *,
        retryable: bool,
        unclear: bool = False,
        retry_after: float | None = None,
    ) -> ChannelError:
        return ChannelError(
            scrub(f"teams {self.safe_url}: {detail}", self._secrets),
            retryable=retryable,
            unclear=unclear,
            retry_after=retry_after,
        )

    def send(
        self,
        message: RenderedMessage,
        recipients: tuple[str, ...] = (),
        *,
        deadline: float | None = None,
    ) -> str | None:
        """POST the card; recipients are not used (the Workflow decides where it posts)."""
        if self.configuration_problem:
            raise self._error(self.configuration_problem, retryable=False)
        body = encode_teams_payload(message.adaptive_card)
        seconds = self._deadline if deadline is None else min(deadline, self._deadline)
        with Deadline(seconds) as clock:
            for attempt in range(1, self._max_attempts + 1):
                answer = self._post(body, clock)
                status = answer.status
                if 200 <= status < 300:
                    run_id = answer.headers.get("x-ms-workflow-run-id") or answer.headers.get(
                        "x-ms-request-id"
                    )
                    return clean(run_id, 200) if run_id else None
                wait = retry_after_seconds(answer.headers.get("Retry-After"))
                detail = f"HTTP {status}: {answer.excerpt}"
                if status >= 500:
                    # The Workflow may have posted the card before its backend failed.
                    raise self._error(detail, retryable=True, unclear=True)
                if status not in _NOT_DELIVERED:
                    raise self._error(detail, retryable=False)
                # Without Retry-After: 1 s, 2 s, 4 s ... A wait longer than the cap or
                # than the deadline allows is left to the ledger, never cut short.
                delay = 2.0 ** (attempt - 1) if wait is None else wait
                last = attempt == self._max_attempts
                if last or delay > self._max_retry_wait or delay >= clock.remaining():
                    raise self._error(detail, retryable=True, retry_after=wait)
                log.warning(
                    "Teams send attempt %d answered %d; retrying in %.1f s",
                    attempt,
                    status,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _post(self, body: bytes, clock: Deadline) -> _Answer:
        """One POST within ``clock``; raises ChannelError for anything but an answer.

        http.client rather than requests: the deadline must reach the socket from the
        moment it connects, and requests does not expose it before the reply."""
        parts = urlsplit(self._url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        try:
            timeout = clock.timeout(self._timeout)
        except DeadlineExceeded as exc:
            raise self._error(str(exc), retryable=True) from None
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "",
                parts.port,
                timeout=timeout,
                context=self._ssl_context or _tls_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=timeout
            )
        clock.watch(lambda: connection.sock)
        try:
            try:
                connection.connect()
            except ssl.SSLCertVerificationError as exc:
                # A certificate the client does not trust will not fix itself.
                raise self._error(
                    f"TLS certificate not trusted: {exc.verify_message}", retryable=False
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                # Nothing was sent: a definite failure, retried on the ledger's backoff.
                reason = "deadline passed" if clock.passed() else f"{type(exc).__name__}: {exc}"
                raise self._error(f"connect failed ({reason})", retryable=True) from None
            try:
                assert connection.sock is not None
                connection.sock.settimeout(clock.timeout(self._timeout))
                connection.request(
                    "POST",
                    target,
                    body=body,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
                connection.sock.settimeout(clock.timeout(self._timeout))
                response = connection.getresponse()
            except (OSError, http.client.HTTPException, DeadlineExceeded) as exc:
                reason = (
                    f"no answer within the {clock.seconds:g} s deadline"
                    if clock.passed() or isinstance(exc, DeadlineExceeded)
                    else f"no complete answer ({type(exc).__name__}: {exc})"
                )
                raise self._error(reason, retryable=True, unclear=True) from None
            # The status is in. A 2xx body is not read at all; of others, a bounded excerpt.
            excerpt = b""
            if not 200 <= response.status < 300:
                try:
                    excerpt = response.read(MAX_RESPONSE_BYTES)
                except (OSError, http.client.HTTPException):
                    excerpt = b"(the body could not be read)"
            text = clean(excerpt.decode("utf-8", "replace"), BODY_EXCERPT_CHARS)
            return _Answer(response.status, response.headers, text)
        finally:
            connection.close()
