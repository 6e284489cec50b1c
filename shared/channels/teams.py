"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received").

The body is a ``message`` whose one attachment is the Adaptive Card (the retired Office
365 connector MessageCard is not used). Like Alertmanager's msteamsv2 notifier: any 2xx
is success (Workflows answers 202), 429 and 5xx are retried in-process honouring
Retry-After, any other status fails at once with the response in the error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from shared.alerts.message import encode_teams_payload
from shared.alerts.model import RenderedMessage
from shared.channels.base import ChannelError, redact_url, scrub, url_secrets

log = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 500


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


class TeamsChannel:
    name = "teams"

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 3,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self._url = webhook_url
        self._secrets = url_secrets(webhook_url)
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._session = session or requests.Session()
        self.safe_url = redact_url(webhook_url)

    def __repr__(self) -> str:
        return f"TeamsChannel({self.safe_url!r})"

    def _error(self, detail: str, *, retryable: bool) -> ChannelError:
        return ChannelError(
            scrub(f"teams {self.safe_url}: {detail}", self._secrets), retryable=retryable
        )

    def send(self, message: RenderedMessage, recipients: tuple[str, ...] = ()) -> str | None:
        """POST the card; recipients are not used (the Workflow decides where it posts)."""
        body = encode_teams_payload(message.adaptive_card)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        last: ChannelError | None = None
        for attempt in range(1, self._max_attempts + 1):
            wait: float | None = None
            try:
                response = self._session.post(
                    self._url,
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                # str(exc) names the URL with its query; scrub() takes the secret out.
                last = self._error(f"request failed ({type(exc).__name__}: {exc})", retryable=True)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return (
                        response.headers.get("x-ms-workflow-run-id")
                        or response.headers.get("x-ms-request-id")
                        or None
                    )
                excerpt = response.text[:BODY_EXCERPT_CHARS]
                if status == 429 or status >= 500:
                    last = self._error(f"HTTP {status}: {excerpt}", retryable=True)
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    raise self._error(f"HTTP {status}: {excerpt}", retryable=False)
            if attempt < self._max_attempts:
                # Without Retry-After: 1 s, 2 s, 4 s ... always within the cap.
                delay = min(self._max_retry_wait, 2.0 ** (attempt - 1) if wait is None else wait)
                log.warning(
                    "Teams send attempt %d failed (%s); retrying in %.1f s",
                    attempt,
                    last.detail,
                    delay,
                )
                self._sleep(delay)
        assert last is not None
        raise last
