"""The HTTP bounds every reader shares (issue 23 §3), for the management SDKs' pipelines and
for the small data-plane client alike:

- ``ReadGuardPolicy``, the last policy before the transport on every attempt: the URL must
  be on the configured endpoint's origin (scheme, host, port), or nothing is sent (a
  ``nextLink`` elsewhere would carry the bearer token there); and the attempt's connect
  and read timeouts are at most 10 s / 30 s and what is left of the pull's budget.
- Redirects are never followed (``RedirectPolicy(permit_redirects=False)`` for the SDKs;
  the data-plane client has no redirect policy at all): a 3xx is an error.
- ``BoundedRetryPolicy``: azure-core's retries, except that a ``Retry-After`` longer than
  30 s, or than what is left of the budget, is not waited for.
- TLS trust is what ``requests`` reads: ``REQUESTS_CA_BUNDLE`` (a stand-in's own CA, a
  corporate proxy's) is honoured because no reader passes ``connection_verify``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError, ODataV4Format
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    RetryPolicy,
    SansIOHTTPPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest, HttpResponse

from shared.analysis.listings import ListingError
from shared.readers.base import CONNECT_TIMEOUT, MAX_RETRY_AFTER, READ_TIMEOUT, Budget

RETRY_TOTAL = 3
USER_AGENT = "ca-watch-readers"
_READ_METHODS = frozenset({"GET", "HEAD", "POST"})  # the DPS query is a POST that only reads


def origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class ReadGuardPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Per attempt, just before the transport (see the module note)."""

    def __init__(self, endpoint: str, budget: Budget, service: str) -> None:
        self._origin = origin_of(endpoint)
        self._budget = budget
        self._service = service

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        if origin_of(request.http_request.url) != self._origin:
            raise ListingError(
                "malformed-listing", f"a next page would leave the configured {self._service}"
            )
        self._budget.check()
        left = self._budget.remaining()
        request.context.options["connection_timeout"] = min(CONNECT_TIMEOUT, left)
        request.context.options["read_timeout"] = min(READ_TIMEOUT, left)


class BoundedRetryPolicy(RetryPolicy):
    """azure-core's retry policy, except that it does not wait for a ``Retry-After``
    longer than ``max_retry_after`` or the budget's rest: a throttled target is simply
    read again at the next pull."""

    def __init__(
        self,
        max_retry_after: float = MAX_RETRY_AFTER,
        budget: Budget | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_total", RETRY_TOTAL)
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after
        self._budget = budget

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        wait = self.get_retry_after(response)
        limit = self.max_retry_after
        if self._budget is not None:
            limit = min(limit, self._budget.remaining())
        if wait is not None and wait > limit:
            return False
        return super().is_retry(settings, response)


def sdk_options(endpoint: str, budget: Budget, service: str, **retry: Any) -> dict[str, Any]:
    """Keyword arguments for a management SDK client: the same bounds as ours."""
    from azure.core.pipeline.policies import RedirectPolicy

    return {
        "base_url": endpoint,
        "credential_scopes": [f"{endpoint}/.default"],
        "retry_policy": BoundedRetryPolicy(budget=budget, **retry),
        "redirect_policy": RedirectPolicy(permit_redirects=False),
        # The generated clients run their custom hook after auth, right before logging and
        # the transport: the place for the per-attempt guard.
        "custom_hook_policy": ReadGuardPolicy(endpoint, budget, service),
    }


class DataPlaneClient:
    """A small JSON client on azure-core for the DPS and IoT Central data planes (the
    services' own Python SDKs are a 2023 beta (DPS) or absent (IoT Central))."""

    def __init__(
        self,
        endpoint: str,
        credential: Any,
        scope: str,
        budget: Budget,
        service: str,
        *,
        authorization: str | None = None,
    ) -> None:
        """``authorization``: a fixed Authorization header (an IoT Central API token)
        instead of a token of ``credential`` for ``scope``."""
        self.endpoint = endpoint
        self.service = service
        self._budget = budget
        auth: Any = (
            HeadersPolicy({"Authorization": authorization})
            if authorization
            else BearerTokenCredentialPolicy(credential, scope)
        )
        policies = [
            HeadersPolicy({"Accept": "application/json"}),
            UserAgentPolicy(USER_AGENT),
            BoundedRetryPolicy(budget=budget, retry_on_methods=_READ_METHODS),
            auth,
            ReadGuardPolicy(endpoint, budget, service),
        ]
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            base_url=endpoint, policies=policies
        )

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow_404: bool = False,
    ) -> HttpResponse | None:
        """One request; None for a 404 where ``allow_404``; HttpResponseError for any
        other status than 200 (a redirect included: it is never followed)."""
        self._budget.check()
        request = HttpRequest(method, url, json=body, headers=dict(headers or {}))
        response = self._client.send_request(request)
        if response.status_code == 404 and allow_404:
            return None
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=_ErrorFormat)
        return response

    def close(self) -> None:
        self._client.close()


def json_body(response: HttpResponse, service: str) -> Any:
    """The answer's JSON; ListingError when it is not JSON or is an error body (a 200
    with ``{"error": ...}`` reads as nothing, never as an empty list)."""
    try:
        body = json.loads(response.text())
    except (ValueError, RecursionError):
        raise ListingError("malformed-listing", f"{service}'s answer is not JSON") from None
    if isinstance(body, dict) and "error" in body:
        raise ListingError("malformed-listing", f"{service} answered 200 with an error body")
    return body


class _ErrorFormat(ODataV4Format):
    """Error bodies: IoT Central's ``{"error": {"code", "message"}}`` (OData) and the DPS
    data plane's ``{"errorCode": 401002, "message", "trackingId"}``."""

    def __init__(self, json_object: Mapping[str, Any]) -> None:
        if "error" not in json_object and "errorCode" in json_object:
            json_object = {
                "code": str(json_object["errorCode"]),
                "message": json_object.get("message"),
            }
        super().__init__(json_object)
