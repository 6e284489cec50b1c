"""Kill tests for `make mutation` on shared/channels/ (issue 24): what each channel writes or
sends, pinned where the behaviour tests beside them leave a mutant alive."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alert_samples import NOW, rendered
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from test_channel_acs import FakeEmailClient, http_error

from shared.channels import ChannelError, acs_email, build_channels
from shared.channels.acs_email import AcsEmailChannel
from shared.channels.base import redact_url, scrub, url_secrets
from shared.channels.deadline import Deadline, DeadlineExceeded
from shared.channels.outbox import OutboxChannel
from shared.channels.smtp import SmtpChannel
from shared.settings import Settings, SettingsError


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local zone nine hours from UTC: a naive or local time shows."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _record(directory: Path, name: str | None) -> dict[str, object]:
    assert name is not None
    return json.loads((directory / name).read_text(encoding="utf-8"))


def test_outbox_names_and_stamps_each_message_in_utc(tmp_path: Path) -> None:
    channel = OutboxChannel(tmp_path / "a" / "b", clock=lambda: NOW)  # parents created
    assert repr(channel) == f"OutboxChannel({str(tmp_path / 'a' / 'b')!r})"
    name = channel.send(rendered(), ("ops@example.com", "sec@example.com"))
    assert name is not None
    assert re.fullmatch(r"20200804T090000000000Z-[0-9a-f]{8}\.json", name)
    record = _record(tmp_path / "a" / "b", name)
    assert record["id"] == name.removesuffix(".json")
    assert record["written_at"] == "2020-08-04T09:00:00Z"
    text = (tmp_path / "a" / "b" / name.replace(".json", ".txt")).read_text(encoding="utf-8")
    assert text.startswith(
        f"Subject: {record['subject']}\nTo: ops@example.com, sec@example.com\n\n"
    )
    # The JSON is written for people too: two-space indent, UTF-8 as is.
    raw = (tmp_path / "a" / "b" / name).read_text(encoding="utf-8")
    assert raw == json.dumps(record, ensure_ascii=False, indent=2)


@pytest.mark.usefixtures("tokyo_local_time")
@pytest.mark.parametrize(
    "clock_time",
    [
        NOW,
        NOW.replace(tzinfo=None),  # a naive clock is read as UTC, not as local time
        NOW.astimezone(timezone(timedelta(hours=2))),  # an aware clock elsewhere
    ],
)
def test_outbox_stamps_in_utc_whatever_the_clock_and_local_zone(
    tmp_path: Path, clock_time: datetime
) -> None:
    name = OutboxChannel(tmp_path, clock=lambda: clock_time).send(rendered(), ())
    assert name is not None and name.startswith("20200804T090000000000Z-")
    assert _record(tmp_path, name)["written_at"] == "2020-08-04T09:00:00Z"


@pytest.mark.usefixtures("tokyo_local_time")
def test_outbox_default_clock_is_utc_now(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    name = OutboxChannel(tmp_path).send(rendered(), ())
    written = datetime.fromisoformat(str(_record(tmp_path, name)["written_at"]))
    assert before - timedelta(seconds=1) <= written <= datetime.now(UTC) + timedelta(seconds=1)


def test_outbox_temporary_files_sit_beside_their_final_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the same directory, so the rename is atomic (never across file systems).
    real_replace = os.replace
    pairs: list[tuple[Path, Path]] = []

    def spy(src: str, dst: str | os.PathLike[str]) -> None:
        pairs.append((Path(src).parent, Path(dst).parent))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    OutboxChannel(tmp_path).send(rendered(), ())
    assert pairs and all(src == dst == tmp_path for src, dst in pairs)


# shared/channels/base.py: what may be logged of a webhook URL and of a peer's answer.


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("https://h.example:8443/p?sig=1#frag", "https://h.example:8443/p?<redacted>"),
        ("https://u:pw@h.example/p", "https://h.example/p"),  # nothing to hide but the user
        ("/hooks/x?sig=abc", "/hooks/x?<redacted>"),  # no host at all: none made up
    ],
)
def test_redact_url_keeps_only_scheme_host_and_path(url: str, logged: str) -> None:
    assert redact_url(url) == logged


def test_url_secrets_are_the_query_each_value_and_the_password() -> None:
    # A base64 signature ends in "=": the value is all after the first "=".
    assert url_secrets("https://u:pw@h.example/p?a=1&sig=ab==") == [
        "a=1&sig=ab==",
        "pw",
        "1",
        "ab==",
    ]
    assert url_secrets("https://h.example/p") == []


def test_scrub_removes_secrets_of_four_characters_and_more_in_every_encoding() -> None:
    assert scrub("x abcd y abc", ["abcd", "abc"]) == "x <redacted> y abc"
    # as quoted for a path segment ("/" encoded) and for a query (":" kept)
    assert scrub("p=a%2Fb%20c q=k:v%20w", ["a/b c", "k:v w"]) == "p=<redacted> q=<redacted>"
    # signature-like parameters go even when nobody named them
    assert scrub("https://h/p?sig=abc&x=1 token=t0", []) == (
        "https://h/p?sig=<redacted>&x=1 token=<redacted>"
    )


# shared/channels/__init__.py: build_channels, each refusal word for word, each setting
# reaching the channel it configures.

_SENDER = "alerts@example.com"
_TO = ("ops@example.com",)
_ENDPOINT = "https://acs.example.communication.azure.com"


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        (Settings(alert_channels=("teams",)), "ALERT_CHANNELS includes teams, which needs "
         "TEAMS_WEBHOOK_URL"),
        (Settings(alert_channels=("acs-email",)), "ALERT_CHANNELS includes acs-email, which "
         "needs ACS_ENDPOINT"),
        (Settings(alert_channels=("acs-email",), acs_endpoint=_ENDPOINT), "ALERT_CHANNELS "
         "includes acs-email, which needs ALERT_EMAIL_FROM"),
        (Settings(alert_channels=("acs-email",), acs_endpoint=_ENDPOINT,
                  alert_email_from=_SENDER), "ALERT_CHANNELS includes acs-email, which needs "
         "ALERT_EMAIL_TO (or ALERT_EMAIL_ROUTES)"),
        (Settings(alert_channels=("smtp",)), "ALERT_CHANNELS includes smtp, which needs "
         "SMTP_HOST"),
        (Settings(alert_channels=("smtp",), smtp_host="relay"), "ALERT_CHANNELS includes "
         "smtp, which needs ALERT_EMAIL_FROM"),
        (Settings(alert_channels=("smtp",), smtp_host="relay", alert_email_from=_SENDER),
         "ALERT_CHANNELS includes smtp, which needs ALERT_EMAIL_TO (or ALERT_EMAIL_ROUTES)"),
        (Settings(alert_channels=("smtp",), smtp_host="relay", alert_email_from=_SENDER,
                  alert_email_to=_TO, smtp_user="u"),
         "SMTP_USER is set but SMTP_PASSWORD is not"),
        (Settings(alert_channels=("smtp",), smtp_host="relay", alert_email_from=_SENDER,
                  alert_email_to=_TO, smtp_user="u", smtp_password="pw", smtp_starttls=False),
         "SMTP_USER is set but SMTP_STARTTLS is false: credentials are never sent over a "
         "connection without TLS"),
        (Settings(alert_channels=("teams",), teams_webhook_url="http://x.example/a?sig=s"),
         "TEAMS_WEBHOOK_URL must be an https:// URL"),
        (Settings(alert_channels=("pigeon",)), "ALERT_CHANNELS: unknown channel 'pigeon'"),
    ],
)  # fmt: skip
def test_build_channels_refuses_with_the_setting_to_fix(settings: Settings, refusal: str) -> None:
    with pytest.raises(SettingsError) as caught:
        build_channels(settings)
    assert str(caught.value).startswith(refusal)


def test_build_channels_passes_each_setting_to_its_channel(tmp_path: Path) -> None:
    channels = build_channels(
        Settings(
            alert_channels=("smtp", "acs-email", "outbox"),
            smtp_host="relay.example",
            smtp_port=2525,
            smtp_user="u",
            smtp_password="pw",
            smtp_starttls=True,
            acs_endpoint=_ENDPOINT,
            alert_email_from=_SENDER,
            alert_email_to=_TO,
            alert_outbox_dir=str(tmp_path),
        ),
        clock=lambda: NOW,
    )
    smtp = channels["smtp"]
    assert isinstance(smtp, SmtpChannel)
    assert (smtp.host, smtp.port, smtp.sender) == ("relay.example", 2525, _SENDER)
    # The credentials and TLS choice are private: read here only to see they arrive.
    assert (smtp._user, smtp._password, smtp._starttls) == ("u", "pw", True)
    acs = channels["acs-email"]
    assert isinstance(acs, AcsEmailChannel)
    assert (acs.endpoint, acs.sender) == (_ENDPOINT, _SENDER)
    name = channels["outbox"].send(rendered(), _TO)  # named by the injected clock
    assert name is not None and name.startswith("20200804T090000000000Z-")
    plain = build_channels(
        Settings(
            alert_channels=("smtp",),
            smtp_host="relay.example",
            smtp_starttls=False,  # a relay inside the network, no credentials
            alert_email_from=_SENDER,
            alert_email_to=_TO,
        )
    )["smtp"]
    assert isinstance(plain, SmtpChannel) and plain._starttls is False


# shared/channels/deadline.py: the arithmetic on a fake clock, and the timer's life.


class _Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_to_zero_and_never_below() -> None:
    clock = _Clock()
    deadline = Deadline(10, clock=clock)
    assert (deadline.seconds, deadline.remaining()) == (10, 10)
    clock.now = 115.0
    assert deadline.remaining() == 0.0
    negative = Deadline(-3, clock=clock)  # a budget already spent is zero, not less
    assert (negative.seconds, negative.remaining()) == (0.0, 0.0)


def test_deadline_passed_within_50_ms_of_its_end() -> None:
    clock = _Clock()
    deadline = Deadline(1, clock=clock)
    clock.now = 100.94
    assert deadline.passed() is False
    clock.now = 100.96
    assert deadline.passed() is True
    clock.now = 100.0
    deadline.expired = True  # the timer fired: passed whatever the clock says
    assert deadline.passed() is True
    # exactly 50 ms left is not yet passed
    assert Deadline(0.05, clock=lambda: 0.0).passed() is False


def test_deadline_timeout_is_the_smaller_of_the_read_and_what_is_left() -> None:
    clock = _Clock()
    deadline = Deadline(10, clock=clock)
    assert deadline.timeout(3) == 3
    clock.now = 108.0
    assert deadline.timeout(3) == pytest.approx(2)
    clock.now = 110.0  # nothing left, though the timer has not fired yet
    with pytest.raises(DeadlineExceeded, match=r"^the 10 s send deadline has passed$"):
        deadline.timeout(3)
    clock.now = 105.0
    deadline.expired = True  # the timer fired, though the clocks say a little is left
    with pytest.raises(DeadlineExceeded):
        deadline.timeout(3)


def test_deadline_timer_is_a_daemon_and_cancelled_on_exit() -> None:
    with Deadline(0.2) as deadline:
        assert deadline._timer is not None and deadline._timer.daemon is True
    time.sleep(0.4)
    assert deadline.expired is False  # left in time: the timer never fired


def test_deadline_shuts_every_watched_socket_and_skips_closed_or_missing_ones() -> None:
    ours, peer = socket.socketpair()
    gone, _gone_peer = socket.socketpair()
    gone.close()
    with ours, peer, _gone_peer:
        deadline = Deadline(0)
        deadline.watch(lambda: None)  # no socket yet (before connect)
        deadline.watch(lambda: gone)  # already closed: its error is not the caller's
        deadline.watch(lambda: ours)
        deadline._expire()
        ours.settimeout(2)
        assert ours.recv(10) == b"" and deadline.expired


# shared/channels/acs_email.py: what is sent, how long it waits, and each error's words.
# ACS cannot run here: the SDK client is the stand-in of tests/test_channel_acs.py.


class _Waits(FakeEmailClient):
    def __init__(self, result: Any) -> None:
        super().__init__(result=result)
        self.waits: list[float | None] = []

    def begin_send(self, message: dict[str, Any], **kwargs: Any) -> Any:
        poller = super().begin_send(message, **kwargs)
        waits = self.waits

        class Recording:
            def result(self, timeout: float | None = None) -> Any:
                waits.append(timeout)
                return poller.result(timeout)

        return Recording()


def test_acs_waits_no_longer_than_the_pass_allows_and_cuts_the_subject() -> None:
    client = _Waits({"id": "op-1", "status": "SUCCEEDED"})
    channel = AcsEmailChannel("https://acs.example", _SENDER, client=client, poll_timeout=60)
    assert repr(channel) == f"AcsEmailChannel('https://acs.example', {_SENDER!r})"
    long_subject = rendered(1, "CN=Microsoft Azure Sphere " + "x" * 400)
    assert channel.send(long_subject, _TO) == "op-1"
    assert channel.send(rendered(), _TO, deadline=5) == "op-1"
    assert channel.send(rendered(), _TO, deadline=500) == "op-1"
    assert client.waits == [60, 5, 60]
    subject = client.sent[0]["content"]["subject"]
    assert len(subject) <= 250 and long_subject.subject.startswith(subject.rstrip("…"))


@pytest.mark.parametrize(
    ("result", "operation_id"),
    [
        ({"id": "op-3", "status": "NotStarted"}, "op-3"),
        ({"id": "op-4", "status": None}, "op-4"),  # accepted, status not known yet
        ("not a dict", None),
    ],
)
def test_acs_accepted_but_unfinished_counts_as_sent(result: Any, operation_id: str | None) -> None:
    channel = AcsEmailChannel("https://acs.example", _SENDER, client=_Waits(result))
    assert channel.send(rendered(), _TO) == operation_id


def _acs_error(error: Exception) -> ChannelError:
    channel = AcsEmailChannel("e", _SENDER, client=FakeEmailClient(begin_outcome=error))
    with pytest.raises(ChannelError) as caught:
        channel.send(rendered(), _TO)
    return caught.value


def test_acs_errors_say_what_failed() -> None:
    assert _acs_error(ClientAuthenticationError("no identity")).detail == (
        "acs-email: authentication failed: no identity"
    )
    throttled = _acs_error(http_error(429))
    assert throttled.detail == "acs-email: HTTP 429: Operation returned status 429"
    no_status = HttpResponseError(message="reset")  # no response, no status: may have gone
    failed = _acs_error(no_status)
    assert (failed.detail, failed.retryable, failed.unclear) == (
        "acs-email: HTTP None: reset",
        True,
        True,
    )
    assert _acs_error(ServiceRequestError("refused")).detail == (
        "acs-email: network error: refused"
    )
    assert _acs_error(ServiceResponseError("reset")).detail == "acs-email: no answer: reset"
    long = _acs_error(ServiceRequestError("y" * 900)).detail
    assert long.startswith("acs-email: network error: yyy") and len(long) <= 27 + 500
    no_recipient = AcsEmailChannel("e", _SENDER, client=FakeEmailClient())
    with pytest.raises(ChannelError, match=r"^acs-email: no recipients$"):
        no_recipient.send(rendered(), ())


def test_acs_failed_send_names_the_operation_and_its_error() -> None:
    failed = {"id": "op-2", "status": "Failed", "error": {"code": "Bad", "message": "no"}}
    channel = AcsEmailChannel("e", _SENDER, client=FakeEmailClient(result=failed))
    with pytest.raises(ChannelError) as caught:
        channel.send(rendered(), _TO)
    assert caught.value.detail == "acs-email: send op-2 Failed: Bad no"
    bare = {"id": "op-5", "status": "Canceled"}
    channel = AcsEmailChannel("e", _SENDER, client=FakeEmailClient(result=bare))
    with pytest.raises(ChannelError) as caught:
        channel.send(rendered(), _TO)
    assert caught.value.detail == "acs-email: send op-5 Canceled:"


def test_acs_subject_is_cut_at_250_and_the_default_wait_is_120_s() -> None:
    client = _Waits({"id": "op-1", "status": "Succeeded"})
    channel = AcsEmailChannel("https://acs.example", _SENDER, client=client)
    long = dataclasses.replace(rendered(), subject="S" * 300)
    assert channel.send(long, _TO) == "op-1"
    assert client.sent[0]["content"]["subject"] == "S" * 249 + "…"
    assert client.waits == [120.0]


def test_acs_builds_its_sdk_client_for_its_endpoint_on_first_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real client needs ACS and an Entra token: its builder is what is checked here.
    built: list[str] = []

    def build(endpoint: str) -> FakeEmailClient:
        built.append(endpoint)
        return FakeEmailClient()

    monkeypatch.setattr(acs_email, "default_client", build)
    channel = AcsEmailChannel("https://acs.example", _SENDER)
    assert channel.send(rendered(), _TO) == "op-1"
    assert channel.send(rendered(), _TO) == "op-1"
    assert built == ["https://acs.example"]  # built once, then kept


@pytest.mark.parametrize(
    ("status", "logged"),
    [("NotStarted", "still NotStarted after 60 s"), ("", "still pending after 60 s")],
)
def test_acs_logs_an_unfinished_send(
    status: str, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = _Waits({"id": "op-7", "status": status})
    channel = AcsEmailChannel("e", _SENDER, client=client, poll_timeout=60)
    with caplog.at_level(logging.WARNING, logger="shared.channels.acs_email"):
        assert channel.send(rendered(), _TO) == "op-7"
    assert caplog.messages == [f"ACS email op-7 {logged}"]


def test_acs_errors_quote_the_message_cut_at_500() -> None:
    # The message, not Exception's tuple of arguments; an empty one stays empty.
    assert _acs_error(ServiceRequestError("refused", "extra")).detail == (
        "acs-email: network error: refused"
    )
    assert _acs_error(ServiceRequestError("")).detail == "acs-email: network error: "
    long = _acs_error(ServiceRequestError("y" * 900)).detail
    assert long == "acs-email: network error: " + "y" * 499 + "…"
