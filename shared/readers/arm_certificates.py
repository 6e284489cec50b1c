"""IoT Hub and DPS certificate lists through ARM (``Certificates - List By Iot Hub``,
``Dps Certificate - List``), with the management SDKs (``azure-mgmt-iothub``,
``azure-mgmt-iothubprovisioningservices``: well kept, GA) pointed at ``ARM_ENDPOINT`` and
bounded as every reader is (shared/readers/http.py).

Each target becomes the ``{"value": [...]}`` document ``az iot hub|dps certificate list``
prints (ARM's own JSON, each entry's ``id`` under the configured resource id), read by the
same ``parse_listing`` as an upload. Role: a custom role with only
``Microsoft.Devices/IotHubs/certificates/read`` / ``provisioningServices/certificates/read``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core.exceptions import HttpResponseError

from shared.analysis.listings import Listing, ListingError, parse_listing
from shared.readers.base import MAX_PAGES, Budget, ReadOutcome, close_all, failed
from shared.readers.http import sdk_options
from shared.settings import RegistrationTarget, Settings

log = logging.getLogger("ca_watch.readers")

FORMATS = {"iot-hub": "iot-hub-certificates", "dps": "dps-certificates"}
SERVICE = "ARM"


class ArmCertificateReader:
    """One management client per (service, subscription) for the pull, closed after it."""

    kind = "arm-certificates"

    def __init__(self, settings: Settings, credential: Any, budget: Budget) -> None:
        self._credential = credential
        self._budget = budget
        self._options = sdk_options(settings.arm_endpoint, budget, SERVICE)
        self._clients: dict[tuple[str, str], Any] = {}

    def read(self, target: RegistrationTarget) -> ReadOutcome:
        try:
            listing = self.listing(target)
        except Exception as exc:  # every failure is the outcome: the pull goes on
            return failed(target.target, target.kind, target.name, exc, SERVICE)
        return ReadOutcome(target.target, target.kind, target.name, listing=listing)

    def listing(self, target: RegistrationTarget) -> Listing:
        return _listing(target, self._entries(target))

    def _client(self, target: RegistrationTarget) -> Any:
        key = (target.kind, target.subscription_id.lower())
        client = self._clients.get(key)
        if client is None:
            if target.kind == "iot-hub":
                from azure.mgmt.iothub import IotHubClient

                client = IotHubClient(self._credential, target.subscription_id, **self._options)
            else:
                from azure.mgmt.iothubprovisioningservices import IotDpsClient

                client = IotDpsClient(self._credential, target.subscription_id, **self._options)
            self._clients[key] = client
        return client

    def _entries(self, target: RegistrationTarget) -> list[Any]:
        """Every certificate entry of the target, as ARM returns them (following
        ``nextLink`` should ARM ever page these lists; today's API versions do not)."""
        client = self._client(target)
        if target.kind == "iot-hub":
            response = client.certificates.list_by_iot_hub(
                target.resource_group, target.name, cls=_raw
            )
        else:
            response = client.dps_certificate.list(target.resource_group, target.name, cls=_raw)
        body = arm_page(response)
        entries = list(arm_value(body))
        for _ in range(MAX_PAGES):
            next_link = body.get("nextLink")
            if not next_link:
                return entries
            self._budget.check()
            from azure.core.rest import HttpRequest

            # Both clients' pipeline (auth, retry, the origin guard) is their ``_client``:
            # the multi-API IoT Hub client has no public "send this URL".
            page = client._client.send_request(HttpRequest("GET", next_link))
            if page.status_code != 200:  # a redirect included: never followed
                raise HttpResponseError(response=page)
            body = arm_page(page)
            entries.extend(arm_value(body))
        raise ListingError("malformed-listing", f"more than {MAX_PAGES} pages")

    def close(self) -> None:
        close_all(self._clients.values())


def _raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    """The operations' ``cls`` hook: keep ARM's own JSON, which is the listing format."""
    return pipeline_response.http_response


def arm_page(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ListingError("malformed-listing", "ARM's answer is not JSON") from None
    if not isinstance(body, dict):
        raise ListingError("malformed-listing", "ARM's answer is not a JSON object")
    if "error" in body:
        raise ListingError("malformed-listing", "ARM answered 200 with an error body")
    return body


def arm_value(body: Mapping[str, Any]) -> Sequence[Any]:
    """A page's ``value``: an array, never absent or null (``{}`` or ``{"value": null}``
    is not "nothing registered": it is an answer we cannot read)."""
    value = body.get("value")
    if not isinstance(value, list):
        raise ListingError("malformed-listing", 'ARM\'s answer has no "value" array')
    return value


def listing_document(target: RegistrationTarget, entries: Sequence[Any]) -> dict[str, Any]:
    """The ``{"value": [...]}`` listing of ``target``: ARM's entries, each ``id`` put under
    the configured resource id, so the listing names the target that was asked (ARM's
    own examples show DPS entries with an IoT Hub id)."""
    value = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ListingError("malformed-listing", "a certificate entry is not an object")
        name = entry.get("name") or str(entry.get("id") or "").rstrip("/").rsplit("/", 1)[-1]
        if not isinstance(name, str) or not name or "/" in name:
            raise ListingError("malformed-listing", "a certificate entry has no name")
        value.append({**entry, "id": f"{target.resource_id}/certificates/{name}"})
    return {"value": value}


def _listing(target: RegistrationTarget, entries: Sequence[Any]) -> Listing:
    if not entries:  # an empty hub is evidence too: nothing is registered there any more
        return Listing(target.target, target.kind, target.name, FORMATS[target.kind], ())
    # The parser reads what ARM really lists (placeholders keep their thumbprint), exactly
    # as it reads an upload: a body that contradicts its thumbprint is refused by both.
    listings = parse_listing(listing_document(target, entries))
    if len(listings) != 1 or listings[0].target != target.target:
        raise ListingError("malformed-listing", "the listing does not name the target")
    return listings[0]
