"""A loopback HTTP server standing in for the App Service managed identity endpoint
(``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, which azure-identity reads): Entra ID cannot run
here, so this endpoint is the fake. It hands out JWTs with the claims Azurite's basic OAuth
check reads, and records every token request (its query names the resource and client id)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

IDENTITY_HEADER = "identity-header-for-the-test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def storage_token(
    lifetime: int = 3600, resource: str = "https://storage.azure.com"
) -> tuple[str, int]:
    """A JWT with the claims Azurite's basic OAuth check reads (unsigned: it skips the
    signature, as its docs say); ``aud`` is the resource asked for (the readers' stand-ins
    check it, as ARM, DPS and IoT Central do)."""
    now = int(time.time())
    claims = {
        "aud": resource,
        "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
        "oid": "00000000-0000-0000-0000-000000000002",
    }
    header = {"alg": "none", "typ": "JWT"}
    token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
    return token, now + lifetime


class IdentityEndpoint:
    """The App Service managed identity endpoint, on loopback, counting token requests."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self.send_error(401)
                    return
                outer.requests.append(self.path)
                asked = parse_qs(urlsplit(self.path).query).get("resource", [""])[0]
                token, expires_on = storage_token(resource=asked or "https://storage.azure.com")
                body = json.dumps(
                    {
                        "access_token": token,
                        "expires_on": str(expires_on),
                        "resource": asked or "https://storage.azure.com",
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
