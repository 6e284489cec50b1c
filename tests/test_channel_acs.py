"""The Azure Communication Services Email channel.

ACS cannot run here (no emulator exists, and a real resource needs an Azure login), so
these tests inject a fake ``EmailClient`` that records the message dict and replays
the results and ``azure.core`` exceptions the real SDK produces. They pin the body shape
of ``POST /emails:send`` and the mapping of errors to retryable or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from alert_samples import rendered
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.alerts.model import RenderedMessage
from shared.channels import ChannelError, build_channels
from shared.channels.acs_email import AcsEmailChannel, default_client
from shared.settings import Settings, SettingsError

ENDPOINT = "https://ca-watch.europe.communication.azure.com"
SENDER = "DoNotReply@0000.azurecomm.net"


@dataclass
class FakePoller:
    outcome: Any

    def result(self, timeout: float | None = None) -> Any:
        if isinstance(self.outcome, Exception):
            raise self.outcome  # the SDK raises a failed operation from result()
        return self.outcome


@dataclass
class FakeEmailClient:
    """Stands in for azure.communication.email.EmailClient (begin_send -> LROPoller)."""

    begin_outcome: Exception | None = None
    result: Any = field(
        default_factory=lambda: {"id": "op-1", "status": "Succeeded", "error": None}
    )
    sent: list[dict[str, Any]] = field(default_factory=list)

    def begin_send(self, message: dict[str, Any], **kwargs: Any) -> FakePoller:
        if self.begin_outcome is not None:
            raise self.begin_outcome
        self.sent.append(message)
        return FakePoller(self.result)


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"Operation returned status {status}")
    error.status_code = status
    return error


def message() -> RenderedMessage:
    return rendered(1, "CN=Microsoft Azure Sphere <b>x</b>")


def test_message_shape_and_operation_id() -> None:
    client = FakeEmailClient()
    sent = message()
    channel = AcsEmailChannel(ENDPOINT, SENDER, client=client)
    assert channel.send(sent, ("ops@example.com", "sec@example.com")) == "op-1"
    assert client.sent == [
        {
            "senderAddress": SENDER,
            "recipients": {"to": [{"address": "ops@example.com"}, {"address": "sec@example.com"}]},
            "content": {"subject": sent.subject, "plainText": sent.text, "html": sent.html},
        }
    ]
    assert "&lt;b&gt;x&lt;/b&gt;" in client.sent[0]["content"]["html"]


@pytest.mark.parametrize(
    ("error", "retryable", "unclear"),
    [
        (http_error(429), True, False),
        (http_error(500), True, True),  # ACS may have accepted the mail first
        (http_error(503), True, True),
        (http_error(400), False, False),
        (http_error(403), False, False),
        (ServiceRequestError("connection refused"), True, False),
        (ServiceResponseError("connection reset while reading"), True, True),
        (ClientAuthenticationError("no managed identity endpoint"), False, False),
    ],
)
def test_error_mapping(error: Exception, retryable: bool, unclear: bool) -> None:
    channel = AcsEmailChannel(ENDPOINT, SENDER, client=FakeEmailClient(begin_outcome=error))
    with pytest.raises(ChannelError) as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is retryable
    assert caught.value.unclear is unclear


def test_failed_operation_is_permanent() -> None:
    failed = {
        "id": "op-2",
        "status": "Failed",
        "error": {"code": "InvalidRecipient", "message": "no"},
    }
    channel = AcsEmailChannel(ENDPOINT, SENDER, client=FakeEmailClient(result=failed))
    with pytest.raises(ChannelError, match="InvalidRecipient") as caught:
        channel.send(message(), ("ops@example.com",))
    assert caught.value.retryable is False


def test_failure_raised_while_polling_is_mapped() -> None:
    client = FakeEmailClient(result=http_error(503))
    with pytest.raises(ChannelError) as caught:
        AcsEmailChannel(ENDPOINT, SENDER, client=client).send(message(), ("ops@example.com",))
    assert caught.value.retryable is True


def test_still_running_after_poll_timeout_counts_as_sent() -> None:
    # Accepted by ACS: reporting a failure would make a later run send it twice.
    running = {"id": "op-3", "status": "Running", "error": None}
    channel = AcsEmailChannel(ENDPOINT, SENDER, client=FakeEmailClient(result=running))
    assert channel.send(message(), ("ops@example.com",)) == "op-3"


def test_no_recipients_is_refused() -> None:
    client = FakeEmailClient()
    with pytest.raises(ChannelError) as caught:
        AcsEmailChannel(ENDPOINT, SENDER, client=client).send(message(), ())
    assert caught.value.retryable is False
    assert client.sent == []


def test_default_client_is_the_real_sdk_with_managed_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azure.communication.email import EmailClient

    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000aa")
    client = default_client(ENDPOINT)  # builds only: no network until a send
    assert isinstance(client, EmailClient)


def test_build_channels_names_missing_acs_settings() -> None:
    with pytest.raises(SettingsError, match="ACS_ENDPOINT"):
        build_channels(Settings(alert_channels=("acs-email",)))
    with pytest.raises(SettingsError, match="ALERT_EMAIL_FROM"):
        build_channels(Settings(alert_channels=("acs-email",), acs_endpoint=ENDPOINT))
    with pytest.raises(SettingsError, match="ALERT_EMAIL_TO"):
        build_channels(
            Settings(alert_channels=("acs-email",), acs_endpoint=ENDPOINT, alert_email_from=SENDER)
        )
    routed = Settings(
        alert_channels=("acs-email",),
        acs_endpoint=ENDPOINT,
        alert_email_from=SENDER,
        alert_email_routes={"9d7e79eb-0000-0000-0000-000000000000": ("t@example.com",)},
    )
    assert isinstance(build_channels(routed)["acs-email"], AcsEmailChannel)
