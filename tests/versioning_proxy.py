"""Blob versioning in front of Azurite, which has none (its README lists "Blob Versions"
as not supported). A fake, for what cannot run here: a reverse proxy on loopback that
forwards every request to the real Azurite and keeps, as Azure does with versioning on,
a blob's content as an earlier version whenever the blob is overwritten or deleted. The
code under test talks HTTP through the real SDK; the proxy answers what versioning adds:

- ``list_blobs(include=["versions"])``: the earlier versions, as ``<Blob>`` entries with a
  ``VersionId`` (the current blob stays as Azurite lists it);
- GET / HEAD / DELETE of a blob with ``versionid=``: served from the kept versions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from counting_proxy import relay, send_upstream, serving

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Version:
    container: str
    name: str
    version_id: str
    etag: str
    content: bytes
    modified: datetime


@dataclass
class VersioningProxy:
    upstream_port: int
    upstream: BlobServiceClient  # straight to Azurite, for the proxy's own reads
    versions: list[Version] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    clock: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def current(self, container: str, name: str) -> Version | None:
        """The blob's content now: an earlier version once the blob is replaced or deleted."""
        client = self.upstream.get_blob_client(container, name)
        try:
            download = client.download_blob()
            content = download.readall()
        except ResourceNotFoundError:
            return None
        with self.lock:
            self.clock += timedelta(milliseconds=1)
            version_id = self.clock.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        props = download.properties
        return Version(container, name, version_id, str(props.etag), content, props.last_modified)

    def keep(self, version: Version) -> None:
        with self.lock:
            self.versions.append(version)

    def find(self, container: str, name: str, version_id: str) -> Version | None:
        with self.lock:
            for version in self.versions:
                if (version.container, version.name, version.version_id) == (
                    container,
                    name,
                    version_id,
                ):
                    return version
        return None

    def drop(self, version: Version) -> None:
        with self.lock:
            self.versions.remove(version)

    def listed(self, container: str, prefix: str) -> bytes:
        with self.lock:
            chosen = [
                v for v in self.versions if v.container == container and v.name.startswith(prefix)
            ]
        return b"".join(
            (
                f"<Blob><Name>{escape(v.name)}</Name><VersionId>{v.version_id}</VersionId>"
                "<Properties>"
                f"<Last-Modified>{format_datetime(v.modified, usegmt=True)}</Last-Modified>"
                f"<Etag>{escape(v.etag)}</Etag><Content-Length>{len(v.content)}</Content-Length>"
                "<Content-Type>application/octet-stream</Content-Type>"
                "<BlobType>BlockBlob</BlobType></Properties></Blob>"
            ).encode()
            for v in chosen
        )


def _handler(proxy: VersioningProxy) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # quiet
            pass

        def _target(self) -> tuple[str, str, dict[str, list[str]]]:
            url = urlsplit(self.path)
            parts = unquote(url.path).split("/", 3)  # "", account, container, name
            container = parts[2] if len(parts) > 2 else ""
            name = parts[3] if len(parts) > 3 else ""
            return container, name, parse_qs(url.query)

        def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response_only(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve_version(self, version: Version | None) -> None:
            if version is None:
                self._answer(404, {"x-ms-error-code": "BlobNotFound"})
                return
            if self.command == "DELETE":
                proxy.drop(version)
                self._answer(202, {})
                return
            headers = {
                "ETag": version.etag,
                "Last-Modified": format_datetime(version.modified, usegmt=True),
                "x-ms-blob-type": "BlockBlob",
                "x-ms-version-id": version.version_id,
                "Content-Type": "application/octet-stream",
            }
            wanted = self.headers.get("x-ms-range") or self.headers.get("Range")
            body, status = version.content, 200
            if wanted and wanted.startswith("bytes=") and version.content:
                first, _, last = wanted[6:].partition("-")
                end = min(int(last) if last else len(body) - 1, len(body) - 1)
                body = version.content[int(first) : end + 1]
                headers["Content-Range"] = f"bytes {first}-{end}/{len(version.content)}"
                status = 206
            self._answer(status, headers, body)

        def _forward(self) -> None:
            container, name, query = self._target()
            if name and "versionid" in query:
                self._serve_version(proxy.find(container, name, query["versionid"][0]))
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            replaces = (
                self.command == "PUT"
                and name
                and ("comp" not in query or query["comp"] == ["blocklist"])
            )
            deletes = self.command == "DELETE" and name and "snapshot" not in query
            earlier = proxy.current(container, name) if replaces or deletes else None
            answer, payload = send_upstream(self, proxy.upstream_port, body)
            if earlier is not None and answer.status < 300:  # replaced or deleted: kept
                proxy.keep(earlier)
            listing = query.get("comp") == ["list"] and "versions" in ",".join(
                query.get("include", [])
            )
            if listing and answer.status == 200:
                extra = proxy.listed(container, query.get("prefix", [""])[0])
                if b"<Blobs />" in payload:
                    payload = payload.replace(b"<Blobs />", b"<Blobs>" + extra + b"</Blobs>")
                else:
                    payload = payload.replace(b"</Blobs>", extra + b"</Blobs>", 1)
            relay(self, answer, payload)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_MERGE = do_PATCH = _forward
        do_OPTIONS = _forward

    return Forward


@contextmanager
def versioning_proxy(upstream_port: int, connection_string: str) -> Iterator[VersioningProxy]:
    proxy = VersioningProxy(
        upstream_port, BlobServiceClient.from_connection_string(connection_string)
    )
    with serving(_handler(proxy)) as server:
        proxy.server = server
        yield proxy
