"""Email through Azure Communication Services, authenticated with a managed identity.

``DefaultAzureCredential`` picks the user-assigned identity named by ``AZURE_CLIENT_ID``
in Azure and the developer's login locally. Throttling (429), 5xx and network errors are
retryable; other HTTP errors and a failed send are not.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.alerts.model import RenderedMessage
from shared.alerts.text_safety import clean
from shared.channels.base import ChannelError

log = logging.getLogger(__name__)


class _Poller(Protocol):
    def result(self, timeout: float | None = None) -> Any: ...


class EmailSender(Protocol):
    """The part of ``azure.communication.email.EmailClient`` this channel uses."""

    def begin_send(self, message: dict[str, Any], **kwargs: Any) -> _Poller: ...


def build_email_message(
    message: RenderedMessage, sender: str, recipients: tuple[str, ...]
) -> dict[str, Any]:
    """The JSON body of ACS ``POST /emails:send``."""
    return {
        "senderAddress": sender,
        "recipients": {"to": [{"address": address} for address in recipients]},
        "content": {
            "subject": clean(message.subject, limit=250),
            "plainText": message.text,
            "html": message.html,
        },
    }


def email_credential() -> Any:
    """The app's identity for ACS: the user-assigned one named by ``AZURE_CLIENT_ID``."""
    # Imported here: the identity stack is only needed when no client is injected.
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        managed_identity_client_id=os.environ.get("AZURE_CLIENT_ID") or None
    )


def default_client(endpoint: str) -> EmailSender:
    from azure.communication.email import EmailClient

    return EmailClient(endpoint, email_credential())


class AcsEmailChannel:
    name = "acs-email"

    def __init__(
        self,
        endpoint: str,
        sender: str,
        *,
        client: EmailSender | None = None,
        poll_timeout: float = 120.0,
    ) -> None:
        self.endpoint = endpoint
        self.sender = sender
        self._client = client
        self._poll_timeout = poll_timeout

    def __repr__(self) -> str:
        return f"AcsEmailChannel({self.endpoint!r}, {self.sender!r})"

    def send(
        self,
        message: RenderedMessage,
        recipients: tuple[str, ...],
        *,
        deadline: float | None = None,
    ) -> str | None:
        """Send to ``recipients``; returns the ACS operation id. ``deadline`` bounds the
        wait for the operation (the SDK's own HTTP timeouts bound its requests)."""
        if not recipients:
            raise ChannelError("acs-email: no recipients", retryable=False)
        body = build_email_message(message, self.sender, recipients)
        try:
            if self._client is None:
                self._client = default_client(self.endpoint)
            poller = self._client.begin_send(body)
            wait = self._poll_timeout if deadline is None else min(deadline, self._poll_timeout)
            result = poller.result(timeout=wait)
        except ClientAuthenticationError as exc:
            # No usable identity or no role on the resource: a setup problem.
            raise ChannelError(
                f"acs-email: authentication failed: {_short(exc)}", retryable=False
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code
            retryable = status is None or status == 429 or status >= 500
            # A 5xx may come after ACS accepted the mail: do not send it again this run.
            unclear = status is None or status >= 500
            raise ChannelError(
                f"acs-email: HTTP {status}: {_short(exc)}", retryable=retryable, unclear=unclear
            ) from None
        except ServiceRequestError as exc:  # the request never went out
            raise ChannelError(f"acs-email: network error: {_short(exc)}", retryable=True) from None
        except ServiceResponseError as exc:  # it went out; the answer did not come back
            raise ChannelError(
                f"acs-email: no answer: {_short(exc)}", retryable=True, unclear=True
            ) from None
        result = result if isinstance(result, dict) else {}
        status = str(result.get("status") or "")
        operation_id = result.get("id")
        if status.lower() == "succeeded":
            return operation_id
        if status.lower() in ("notstarted", "running", ""):
            # Accepted (202) but not finished within the poll timeout: ACS will deliver
            # it, and reporting a failure would have a later run send it twice.
            log.warning(
                "ACS email %s still %s after %.0f s",
                operation_id,
                status or "pending",
                self._poll_timeout,
            )
            return operation_id
        error = result.get("error") or {}
        raise ChannelError(
            f"acs-email: send {operation_id} {status}: "
            f"{clean(error.get('code', ''))} {clean(error.get('message', ''))}".rstrip(),
            retryable=False,
        )


def _short(exc: Exception) -> str:
    return clean(getattr(exc, "message", None) or str(exc), limit=500)
