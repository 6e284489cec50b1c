"""A loopback HTTPS server standing in for Azure Resource Manager (and, with another
``audience``, for the DPS and IoT Central data planes), for the live readers' tests: the
real management SDKs and the readers' own client talk to it over TLS (its own CA, made here
with ``cryptography``), it serves the documented response shapes of IoT Hub ``Certificates
- List By Iot Hub``, DPS ``Dps Certificate - List``, Azure Sphere ``Certificates - List By
Catalog``, DPS ``Enrollment Group - Query`` and IoT Central ``Enrollment Groups``, plays
scripted failures (429 with Retry-After, 401, 403, 404, a dropped connection, a hang) and
counts every request.

Tokens: with ``audience`` set it accepts only a JWT whose ``aud`` is that audience (what
tests/identity_endpoint.py issues for the resource asked), so a reader asking for the
wrong scope is refused as Azure would; without it, only the static ``TEST_TOKEN``.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tls_samples import make_tls_files

# The token the tests' static credential hands out; the server refuses any other.
TEST_TOKEN = "static-test-token-not-entra-id"
DROP = "drop"  # a scripted "response" that closes the connection without answering
HANG = "hang"  # a scripted "response" that never comes (until the server stops)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or None for no body
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Seen:
    method: str
    path: str  # without the query
    query: str
    authorization: str | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class _State:
    scripts: dict[str, list[Reply | str]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ArmServer:
    """``with ArmServer(tmp_path) as arm:`` then ``arm.script(path, Reply(...), ...)``.

    Each path plays its replies in order; the last one repeats. A path with no script
    answers 404 with ARM's ``ResourceNotFound`` error body."""

    def __init__(
        self,
        directory: Path,
        *,
        audience: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        """``tls``: (CA, chain, key) files to share with other stand-ins (one CA bundle)."""
        self.ca_file, chain, key = tls or make_tls_files(directory)
        self.audience = audience  # may be set after start (ARM's is its own base URL)
        self._state = _State()
        self._stopping = threading.Event()
        state, stopping, outer = self._state, self._stopping, self

        def authorized(header: str | None) -> bool:
            if outer.audience is None:
                return header == f"Bearer {TEST_TOKEN}"
            return _audience_of(header) == outer.audience

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without TCP_NODELAY each answer
            # waits ~40 ms on the client's delayed ACK, which a bench would count as ours.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path.lower()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with state.lock:
                    state.seen.append(
                        Seen(
                            method,
                            path,
                            parts.query,
                            self.headers.get("Authorization"),
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    script = state.scripts.get(path)
                    reply: Reply | str
                    if not authorized(self.headers.get("Authorization")):
                        reply = Reply(401, _error("InvalidAuthenticationToken", "bad token"))
                    elif not script:
                        reply = Reply(404, _error("ResourceNotFound", f"{path} not found"))
                    else:
                        reply = script.pop(0) if len(script) > 1 else script[0]
                if reply == HANG:
                    stopping.wait()  # accepted, read, and never answered
                    return
                if reply == DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                assert isinstance(reply, Reply)
                body = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-ms-request-id", "00000000-0000-0000-0000-000000000000")
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ArmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, resource_path: str, *replies: Reply | str) -> None:
        """Replies for GET ``resource_path`` (case-insensitive, without the query)."""
        with self._state.lock:
            self._state.scripts[resource_path.lower()] = list(replies)

    @property
    def seen(self) -> list[Seen]:
        with self._state.lock:
            return list(self._state.seen)

    def count(self, resource_path: str | None = None) -> int:
        """Requests served (to one path, or in all)."""
        wanted = resource_path.lower() if resource_path else None
        return sum(1 for s in self.seen if wanted is None or s.path == wanted)

    def clear(self) -> None:
        with self._state.lock:
            self._state.seen.clear()


def _audience_of(header: str | None) -> str | None:
    """The ``aud`` claim of a bearer JWT (unsigned, as the test identity endpoint makes)."""
    if not header or not header.startswith("Bearer "):
        return None
    try:
        payload = header.split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims.get("aud") if isinstance(claims, dict) else None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def arm_error(code: str, message: str) -> dict[str, Any]:
    """ARM's error body (``ErrorResponse``)."""
    return _error(code, message)


def certificates_path(resource_id: str) -> str:
    return f"{resource_id}/certificates"


def certificate_entry(
    resource_id: str,
    name: str,
    thumbprint: str,
    verified: bool,
    *,
    subject: str = "CN=Microsoft Azure Sphere 00000000-0000-0000-0000-000000000000",
    expiry: str = "Sat, 31 Dec 2039 23:59:59 GMT",
    body: str | None = None,
) -> dict[str, Any]:
    """One entry as ``Certificates - List By Iot Hub`` / ``Dps Certificate - List`` return
    it (the REST API specs' examples ``iothub_listcertificates.json`` and
    ``DPSGetCertificates.json``): RFC 1123 dates, ``certificate`` optional."""
    is_hub = "/iothubs/" in resource_id.lower()
    properties: dict[str, Any] = {
        "subject": subject,
        "expiry": expiry,
        "thumbprint": thumbprint,
        "isVerified": verified,
        "created": "Thu, 12 Oct 2017 19:23:50 GMT",
        "updated": "Thu, 12 Oct 2017 19:23:50 GMT",
    }
    if body is not None:
        properties["certificate"] = body
    return {
        "properties": properties,
        "id": f"{resource_id}/certificates/{name}",
        "name": name,
        "type": (
            "Microsoft.Devices/IotHubs/Certificates"
            if is_hub
            else "Microsoft.Devices/ProvisioningServices/Certificates"
        ),
        "etag": "AAAAAAExpNs=",
    }


def pages(entries: Sequence[dict[str, Any]], size: int, next_base: str) -> Iterator[Reply]:
    """``entries`` as ``{"value": [...], "nextLink": ...}`` pages of ``size``."""
    chunks = [list(entries[i : i + size]) for i in range(0, len(entries), size)] or [[]]
    for n, chunk in enumerate(chunks):
        body: dict[str, Any] = {"value": chunk}
        if n + 1 < len(chunks):
            body["nextLink"] = f"{next_base}&$skiptoken=page{n + 1}"
        yield Reply(200, body)
