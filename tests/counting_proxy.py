"""A reverse proxy on loopback that counts what the storage service really receives: the
requests per blob are counted by the server side, not by the code under test."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    body_bytes: int = 0


@dataclass
class CountingProxy:
    upstream_port: int
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def seen(self) -> list[Seen]:
        with self.lock:
            return list(self.requests)


def send_upstream(
    handler: BaseHTTPRequestHandler, port: int, body: bytes | None
) -> tuple[http.client.HTTPResponse, bytes]:
    """The request ``handler`` received, sent on to 127.0.0.1:``port``: its answer."""
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
    upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        upstream.request(handler.command, handler.path, body=body, headers=headers)
        answer = upstream.getresponse()
        return answer, answer.read()
    finally:
        upstream.close()


def relay(
    handler: BaseHTTPRequestHandler, answer: http.client.HTTPResponse, payload: bytes
) -> None:
    """The upstream's answer, with ``payload`` as its body, back to the client."""
    handler.send_response_only(answer.status, answer.reason)
    for key, value in answer.getheaders():
        if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
            handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A threading HTTP server on a free loopback port, shut down on leaving."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _handler(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # quiet
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k.lower(): v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            seen = Seen(self.command, self.path, headers)
            answer, payload = send_upstream(self, proxy.upstream_port, body)
            seen.status, seen.body_bytes = answer.status, len(payload)
            with proxy.lock:
                proxy.requests.append(seen)
            relay(self, answer, payload)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_MERGE = do_PATCH = _forward
        do_OPTIONS = _forward

    return Forward


@contextmanager
def counting_proxy(upstream_port: int) -> Iterator[CountingProxy]:
    proxy = CountingProxy(upstream_port)
    with serving(_handler(proxy)) as server:
        proxy.server = server
        yield proxy
