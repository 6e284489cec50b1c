"""Kill tests for `make mutation` on shared/channels/teams.py (issue 24): what the channel
posts and where, each outcome's exact words, retry class and wait, and the bounds on what it
reads, where tests/test_channel_teams.py and the misbehaving-peer suite leave a mutant alive.

The webhook here is a scripted HTTP server on a loopback socket: each test says what it
answers, byte for byte when the point is a misbehaving answer."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import certifi
import pytest
from alert_samples import NOW, rendered

from shared.channels import ChannelError, teams
from shared.channels.teams import TeamsChannel, _tls_context, retry_after_seconds

SIG = "s3cr3t-Sig-Value_0123456789abcdef"
Answer = Callable[[socket.socket, "Request"], None]


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Webhook:
    """A loopback HTTP server; the n-th request is answered by ``answers[n-1]`` (the last
    one for any after it)."""

    answers: list[Answer]
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/workflows/abc/invoke", query: str = f"sig={SIG}") -> str:
        return f"http://{self.host}:{self.port}{path}" + (f"?{query}" if query else "")

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            line, *fields = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
            while len(body) < int(headers.get("content-length", "0")):
                body += conn.recv(65536)
            request = Request(line, headers, body)
            self.requests.append(request)
            answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
            answer(conn, request)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


def reply(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    def answer(conn: socket.socket, request: Request) -> None:
        lines = [f"HTTP/1.1 {status} Scripted", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return answer


def raw(data: bytes, then_wait: float = 0.0) -> Answer:
    """Send ``data`` as the whole answer, wait, then close."""

    def answer(conn: socket.socket, request: Request) -> None:
        conn.sendall(data)
        time.sleep(then_wait)

    return answer


@pytest.fixture
def webhooks() -> Iterator[Callable[..., Webhook]]:
    started: list[Webhook] = []

    def start(*answers: Answer, host: str = "127.0.0.1") -> Webhook:
        hook = Webhook(list(answers), host=host)
        started.append(hook)
        return hook

    yield start
    for hook in started:
        hook.close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def failure(channel: TeamsChannel, deadline: float | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(rendered(1), (), deadline=deadline)
    return caught.value


def where(hook: Webhook) -> str:
    """The webhook as errors name it: its query redacted."""
    return f"teams http://127.0.0.1:{hook.port}/workflows/abc/invoke?<redacted>"


# -- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", 0.0),  # never a negative wait
        ("Tue, 04 Aug 2020 09:00:20 GMT", 20.0),
        ("Tue, 04 Aug 2020 09:00:20 -0000", 20.0),  # no zone: read as UTC
        ("Tue, 04 Aug 2020 08:59:00 GMT", 0.0),  # already past
        ("", None),
        ("Tue, 32 Aug 2020 09:00:20 GMT", None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(value: str, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_retry_after_as_a_date_counts_from_the_present_in_utc() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    wait = retry_after_seconds(later)
    assert wait is not None and 95 < wait <= 100


# -- the channel's settings --------------------------------------------------------------------


def test_tls_is_checked_against_certifis_roots_as_requests_did() -> None:
    bundle = open(certifi.where(), encoding="ascii").read()  # noqa: SIM115
    roots = len(re.findall("-----BEGIN CERTIFICATE-----", bundle))
    context = _tls_context()
    assert len(context.get_ca_certs()) == roots
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_channels_defaults_and_name_in_errors() -> None:
    channel = TeamsChannel(f"https://example.test/hook?sig={SIG}")
    assert repr(channel) == "TeamsChannel('https://example.test/hook?<redacted>')"
    assert channel.configuration_problem is None
    # Per connect or read; seeing it act takes a webhook silent for 10 s per run.
    assert (channel._timeout, channel._deadline) == (10.0, 30.0)


def test_an_unresolved_key_vault_reference_is_a_problem_named_once() -> None:
    reference = " @Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/teams/)"
    channel = TeamsChannel(reference)
    assert repr(channel) == "TeamsChannel('<unresolved Key Vault reference>')"
    error = failure(channel)
    assert (error.detail, error.retryable, error.unclear) == (
        "teams <unresolved Key Vault reference>: TEAMS_WEBHOOK_URL is an unresolved Key Vault "
        "reference: the app cannot read the secret (check that its identity holds Key Vault "
        "Secrets User on the vault, then restart the app to resolve it again)",
        False,
        False,
    )


# -- what is posted, and where ------------------------------------------------------------


def test_the_card_is_posted_as_json_to_the_webhooks_own_host_path_and_query(
    webhooks: Callable[..., Webhook],
) -> None:
    hook = webhooks(reply(202), host="127.0.0.2")  # nothing of it on 127.0.0.1
    message = rendered(1)
    assert TeamsChannel(hook.url()).send(message, ()) is None
    (request,) = hook.requests
    assert request.line == f"POST /workflows/abc/invoke?sig={SIG} HTTP/1.1"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["host"] == f"127.0.0.2:{hook.port}"
    assert request.body == teams.encode_teams_payload(message.adaptive_card)  # as encoded


@pytest.mark.parametrize(
    ("path", "query", "target"),
    [("", "sig=x", "/?sig=x"), ("/hook", "", "/hook"), ("", "", "/")],
)
def test_a_webhook_without_a_path_or_query_posts_to_what_it_has(
    path: str, query: str, target: str, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(reply(202))
    TeamsChannel(hook.url(path, query)).send(rendered(1), ())
    assert hook.requests[0].line == f"POST {target} HTTP/1.1"


@pytest.mark.parametrize(
    ("headers", "run_id"),
    [
        ({"x-ms-workflow-run-id": "run-1", "x-ms-request-id": "req-1"}, "run-1"),
        ({"x-ms-request-id": "req-1"}, "req-1"),
        ({"x-ms-workflow-run-id": "r" * 250}, "r" * 199 + "…"),
        ({"x-ms-workflow-run-id": "r" * 200}, "r" * 200),
        ({}, None),
    ],
)
def test_the_run_id_is_the_workflows_or_the_requests_cut_at_200(
    headers: dict[str, str], run_id: str | None, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(reply(202, headers=headers))
    assert TeamsChannel(hook.url()).send(rendered(1), ()) == run_id


@pytest.mark.parametrize("status", [200, 299])
def test_any_2xx_is_delivered_and_its_body_is_never_read(
    status: int, webhooks: Callable[..., Webhook]
) -> None:
    # A 2xx that promises a body and never sends it: reading it would wait for the timeout.
    head = f"HTTP/1.1 {status} Fine\r\nContent-Length: 100000\r\n\r\n".encode()
    hook = webhooks(raw(head, then_wait=3))
    started = time.monotonic()
    assert TeamsChannel(hook.url(), timeout=2).send(rendered(1), ()) is None
    assert time.monotonic() - started < 1.5


# -- each outcome's words ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable", "unclear"),
    [(300, False, False), (404, False, False), (499, False, False), (500, True, True)],
)
def test_each_status_fails_with_its_excerpt_and_class(
    status: int, retryable: bool, unclear: bool, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(reply(status, b'{"error": "as scripted"}'))
    error = failure(TeamsChannel(hook.url(), sleep=Sleeps()))
    assert (error.detail, error.retryable, error.unclear, error.retry_after) == (
        f'{where(hook)}: HTTP {status}: {{"error": "as scripted"}}',
        retryable,
        unclear,
        None,
    )
    assert len(hook.requests) == 1


def test_the_excerpt_is_500_characters_of_at_most_4096_bytes_read(
    webhooks: Callable[..., Webhook],
) -> None:
    hook = webhooks(reply(400, b"x" * 600))
    assert failure(TeamsChannel(hook.url())).detail == f"{where(hook)}: HTTP 400: {'x' * 499}…"
    hook = webhooks(reply(400, b"x" * 500))
    assert failure(TeamsChannel(hook.url())).detail.endswith(f"HTTP 400: {'x' * 500}")
    # 4096 spaces, then text: only the spaces are read, and `clean` trims them away.
    hook = webhooks(reply(400, b" " * 4096 + b"beyond the read"))
    assert failure(TeamsChannel(hook.url())).detail == f"{where(hook)}: HTTP 400: "
    hook = webhooks(reply(400, b"caf\xe9"))  # Latin-1: not UTF-8
    assert failure(TeamsChannel(hook.url())).detail.endswith("HTTP 400: caf\ufffd")


def test_a_body_that_cannot_be_read_says_so(webhooks: Callable[..., Webhook]) -> None:
    # a chunked body whose first chunk size is not hexadecimal
    hook = webhooks(raw(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
    assert failure(TeamsChannel(hook.url())).detail == (
        f"{where(hook)}: HTTP 400: (the body could not be read)"
    )


def test_a_connection_closed_without_an_answer_is_unclear(
    webhooks: Callable[..., Webhook],
) -> None:
    hook = webhooks(raw(b""))
    error = failure(TeamsChannel(hook.url(), sleep=Sleeps()))
    assert (error.detail, error.retryable, error.unclear) == (
        f"{where(hook)}: no complete answer (RemoteDisconnected: Remote end closed connection "
        "without response)",
        True,
        True,
    )
    assert len(hook.requests) == 1


def test_a_silent_webhook_times_out_per_read_before_the_deadline(
    webhooks: Callable[..., Webhook],
) -> None:
    hook = webhooks(raw(b"", then_wait=5))
    started = time.monotonic()
    error = failure(TeamsChannel(hook.url(), timeout=0.3, deadline=4))
    assert time.monotonic() - started < 2
    assert error.detail == f"{where(hook)}: no complete answer (TimeoutError: timed out)"
    assert (error.retryable, error.unclear) == (True, True)


def test_an_answer_trickled_past_the_deadline_is_cut_at_the_deadline(
    webhooks: Callable[..., Webhook],
) -> None:
    def trickle(conn: socket.socket, request: Request) -> None:
        for byte in b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n":
            time.sleep(0.1)
            conn.sendall(bytes([byte]))

    hook = webhooks(trickle)
    started = time.monotonic()
    error = failure(TeamsChannel(hook.url()), deadline=0.5)
    assert time.monotonic() - started < 2
    assert error.detail == f"{where(hook)}: no answer within the 0.5 s deadline"
    assert (error.retryable, error.unclear) == (True, True)


def test_a_refused_connection_sent_nothing(webhooks: Callable[..., Webhook]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: refused
        error = failure(TeamsChannel(f"http://127.0.0.1:{port}/hook", sleep=Sleeps()))
    assert (error.detail, error.retryable, error.unclear) == (
        f"teams http://127.0.0.1:{port}/hook: connect failed (ConnectionRefusedError: "
        "[Errno 111] Connection refused)",
        True,
        False,
    )


def test_a_connect_nobody_answers_ends_at_the_deadline() -> None:
    """A listener whose backlog is full drops the SYN: only the connect's own timeout,
    cut to the deadline, ends it (no socket exists yet for the deadline to shut down)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        error = failure(TeamsChannel(url, sleep=Sleeps()), deadline=0.5)
        seconds = time.monotonic() - started
    finally:
        filler.close()
        listener.close()
    assert seconds < 2
    assert error.detail == f"teams {url}: connect failed (deadline passed)"
    assert (error.retryable, error.unclear) == (True, False)


def test_a_pass_with_no_time_left_posts_nothing(webhooks: Callable[..., Webhook]) -> None:
    hook = webhooks(reply(202))
    error = failure(TeamsChannel(hook.url()), deadline=0)
    assert (error.detail, error.retryable, error.unclear) == (
        f"{where(hook)}: the 0 s send deadline has passed",
        True,
        False,
    )
    assert hook.requests == []


def test_an_untrusted_certificate_says_why(tmp_path: object) -> None:
    from tls_samples import loopback_tls

    tls = loopback_tls(tmp_path)  # type: ignore[arg-type]
    listener = tls.server.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True)

    def accept() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()  # the handshake fails on the client's side
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/hook"
    try:
        error = failure(TeamsChannel(url))  # the default trust store: not trusted
    finally:
        listener.close()
    assert (error.detail, error.retryable, error.unclear) == (
        f"teams {url}: TLS certificate not trusted: self-signed certificate in certificate chain",
        False,
        False,
    )


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429])
def test_not_delivered_is_retried_after_1_then_2_s_then_left_to_the_ledger(
    status: int, webhooks: Callable[..., Webhook], caplog: pytest.LogCaptureFixture
) -> None:
    hook = webhooks(reply(status, b"busy"))
    sleeps = Sleeps()
    caplog.set_level(logging.WARNING, logger="shared.channels.teams")
    error = failure(TeamsChannel(hook.url(), sleep=sleeps))
    assert sleeps == [1.0, 2.0] and len(hook.requests) == 3
    assert (error.detail, error.retryable, error.unclear, error.retry_after) == (
        f"{where(hook)}: HTTP {status}: busy",
        True,
        False,
        None,
    )
    assert [r.getMessage() for r in caplog.records if r.name == "shared.channels.teams"] == [
        f"Teams send attempt 1 answered {status}; retrying in 1.0 s",
        f"Teams send attempt 2 answered {status}; retrying in 2.0 s",
    ]


def test_the_last_attempts_retry_after_goes_to_the_ledger(
    webhooks: Callable[..., Webhook],
) -> None:
    hook = webhooks(reply(429, b"busy", {"Retry-After": "1.5"}))
    sleeps = Sleeps()
    error = failure(TeamsChannel(hook.url(), sleep=sleeps))
    assert sleeps == [1.5, 1.5] and error.retry_after == 1.5


@pytest.mark.parametrize(("attempts", "posts"), [(0, 1), (1, 1), (2, 2)])
def test_max_attempts_bounds_the_posts_and_is_at_least_one(
    attempts: int, posts: int, webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(reply(429))
    failure(TeamsChannel(hook.url(), sleep=Sleeps(), max_attempts=attempts))
    assert len(hook.requests) == posts


@pytest.mark.parametrize(("retry_after", "waits"), [("30", [30.0]), ("31", [])])
def test_a_wait_up_to_30_s_is_waited_in_the_run_by_default(
    retry_after: str, waits: list[float], webhooks: Callable[..., Webhook]
) -> None:
    hook = webhooks(reply(429, headers={"Retry-After": retry_after}), reply(202))
    sleeps = Sleeps()
    channel = TeamsChannel(hook.url(), sleep=sleeps, deadline=60)
    if waits:
        assert channel.send(rendered(1), ()) is None
    else:
        assert failure(channel).retry_after == 31.0
    assert sleeps == waits


def test_a_wait_the_deadline_cannot_hold_is_left_to_the_ledger(
    webhooks: Callable[..., Webhook],
) -> None:
    hook = webhooks(reply(429, headers={"Retry-After": "5"}), reply(202))
    sleeps = Sleeps()
    error = failure(TeamsChannel(hook.url(), sleep=sleeps), deadline=4)
    assert sleeps == [] and error.retry_after == 5.0 and len(hook.requests) == 1


def test_a_webhook_that_stops_reading_the_request_times_out_per_write() -> None:
    """A request larger than a small receive buffer and the client's send buffer hold
    (a card of 20 MB here): with the peer not reading, the write blocks, and the
    per-operation timeout, not the deadline, ends it."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # inherited on accept
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def accept_and_never_read() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                stop.wait(10)

    threading.Thread(target=accept_and_never_read, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock"}]}
    card["body"][0]["text"] = "x" * 20_000_000
    message = dataclasses.replace(rendered(1), adaptive_card=card)
    try:
        started = time.monotonic()
        with pytest.raises(ChannelError) as caught:
            TeamsChannel(url, timeout=0.3, deadline=4).send(message, ())
        seconds = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert seconds < 2
    assert caught.value.detail == (f"teams {url}: no complete answer (TimeoutError: timed out)")
    assert (caught.value.retryable, caught.value.unclear) == (True, True)
