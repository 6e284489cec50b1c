"""An IoT Central app, live: its enrollment groups and each X.509 group's two certificate
slots (IoT Central has no certificate list; the CA lives in a group's slot).

``GET {IOT_CENTRAL_ENDPOINT}/api/enrollmentGroups?api-version=2022-07-31`` (``value`` and
``nextLink`` paging), then ``.../enrollmentGroups/{id}/certificates/{primary|secondary}`` →
``{"verified", "info": {"sha1Thumbprint"}, "etag"}``; a 404 is an empty slot. Token for
``https://apps.azureiotcentral.com/.default``: the app's identity must be an app user with a
role (docs/readers.md). The documents are parsed by the same pure ``central_group`` /
``central_listing`` as an upload. Client: shared/readers/http.py (there is no IoT Central
data-plane SDK for Python).

Or an API token (``IOT_CENTRAL_API_TOKENS``, a Key Vault secret in Azure), sent as the
Authorization header; its own expiry (``se``, about a year) is watched by the daily
self-health check (``token_expiry``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

from shared.analysis.enrollment_listings import central_group, central_is_x509, central_listing
from shared.analysis.listings import MAX_ENTRIES, ListingError
from shared.readers.base import MAX_PAGES, Budget, ReadOutcome, failed
from shared.readers.http import DataPlaneClient, json_body
from shared.settings import Settings

CENTRAL_SCOPE = "https://apps.azureiotcentral.com/.default"
CENTRAL_API_VERSION = "2022-07-31"
KIND = "iot-central"
SERVICE = "IoT Central"


def token_expiry(token: str) -> datetime | None:
    """When an IoT Central API token (``SharedAccessSignature sr=…&sig=…&skn=…&se=…``)
    expires: ``se`` is its end in milliseconds (or seconds) since 1970. None when the token
    names no end (then nothing can be watched)."""
    fields = parse_qs(token.removeprefix("SharedAccessSignature").strip())
    raw = (fields.get("se") or [""])[0]
    if not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    seconds = value / 1000 if value > 10**11 else value  # ms since 1970 past 1973
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def central_endpoint(settings: Settings, subdomain: str) -> str:
    return settings.iot_central_endpoint.replace("{name}", subdomain)


class IotCentralReader:
    kind = KIND

    def __init__(self, settings: Settings, credential: Any, budget: Budget) -> None:
        self._settings = settings
        self._credential = credential
        self._budget = budget

    def read(self, subdomain: str) -> ReadOutcome:
        endpoint = central_endpoint(self._settings, subdomain)
        client = DataPlaneClient(
            endpoint,
            self._credential,
            CENTRAL_SCOPE,
            self._budget,
            SERVICE,
            authorization=self._settings.iot_central_api_tokens.get(subdomain),
        )
        try:
            groups = []
            for group in self._groups(client, endpoint):
                slots: list[Any] = [None, None]
                if central_is_x509(group):
                    base = f"{endpoint}/api/enrollmentGroups/{quote(str(group.get('id')), safe='')}"
                    for n, entry in enumerate(("primary", "secondary")):
                        url = f"{base}/certificates/{entry}?api-version={CENTRAL_API_VERSION}"
                        response = client.send("GET", url, allow_404=True)
                        slots[n] = json_body(response, SERVICE) if response is not None else None
                groups.append(central_group(group, slots[0], slots[1]))
            listing = central_listing(subdomain, tuple(groups))
        except Exception as exc:  # every failure is the outcome: the pull goes on
            return failed(subdomain, KIND, subdomain, exc, SERVICE)
        finally:
            client.close()
        return ReadOutcome(subdomain, KIND, subdomain, listing=listing)

    def _groups(self, client: DataPlaneClient, endpoint: str) -> list[Any]:
        url: str | None = f"{endpoint}/api/enrollmentGroups?api-version={CENTRAL_API_VERSION}"
        groups: list[Any] = []
        for _ in range(MAX_PAGES):
            assert url is not None
            response = client.send("GET", url)
            assert response is not None
            page = json_body(response, SERVICE)
            value = page.get("value") if isinstance(page, dict) else None
            if not isinstance(value, list):
                raise ListingError(
                    "malformed-listing", 'IoT Central\'s answer has no "value" array'
                )
            if not all(isinstance(group, dict) for group in value):
                raise ListingError("malformed-listing", "an enrollment group is not an object")
            groups.extend(value)
            if len(groups) > MAX_ENTRIES:
                raise ListingError("malformed-listing", f"more than {MAX_ENTRIES} groups")
            url = page.get("nextLink")  # its origin is checked before it is sent
            if not url:
                return groups
            if not isinstance(url, str):
                raise ListingError("malformed-listing", "IoT Central's nextLink is not a URL")
        raise ListingError("malformed-listing", f"more than {MAX_PAGES} pages of groups")
