"""Live registration evidence (DESIGN §3, §4): list the CA certificates of each IoT Hub and
DPS named in ``REGISTRATION_TARGETS`` through ARM, with the management SDKs and the app's
managed identity, and record each listing exactly like an uploaded one (source ``live``).

- Each target becomes the ``{"value": [...]}`` document ``az iot hub|dps certificate list``
  prints (the ARM response itself, each entry's ``id`` under the configured resource id),
  read by the same ``parse_listing`` as an upload.
- A target that cannot be read (403, 404, throttled, network, a malformed answer) never
  stops the others or the alert pass: its last good snapshot stays and the error is
  recorded for the report and the daily self-health alert.
- The timer pulls at most every ``REGISTRATION_REFRESH``: one row (``regtargets``,
  PK ``pull``) holds the last pull time, claimed under its ETag so that concurrent timer
  runs pull once.
- Throttling is bounded: a ``Retry-After`` longer than ``MAX_RETRY_AFTER`` is not waited
  for (the target is recorded as throttled and read again at the next refresh).

The management SDKs are imported only when a pull runs: the timer imports this module
only when ``REGISTRATION_TARGETS`` is set, so a cold start without targets pays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.data.tables import UpdateMode

from shared.analysis.listings import Listing, ListingError, parse_listing
from shared.settings import RegistrationTarget, Settings
from shared.storage.keys import iso, parse_iso, precondition_failed
from shared.storage.store import TableStore

log = logging.getLogger("ca_watch.registrations")

SCHEMA = "ca-watch/registrations-pull/v1"
LIVE_SOURCE = "live"
PULL_TABLE = "regtargets"
PULL_PARTITION, PULL_ROW = "pull", "live"
RETRY_TOTAL = 3
MAX_RETRY_AFTER = 30.0  # seconds; ARM's throttling answers usually ask for seconds
MAX_PAGES = 100  # a hub holds tens of certificates; never follow nextLinks forever
MAX_MESSAGE = 300
FORMATS = {"iot-hub": "iot-hub-certificates", "dps": "dps-certificates"}
_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not-found", 429: "throttled"}


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    kind: str
    display_name: str
    certificates: int | None  # None when the target could not be read
    error: tuple[str, str] | None = None  # (code, message)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "display_name": self.display_name,
            "status": "error" if self.error else "ok",
            "certificates": self.certificates,
            "error": {"code": self.error[0], "message": self.error[1]} if self.error else None,
        }


@dataclass
class PullResult:
    now: datetime
    outcomes: list[TargetOutcome] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)  # tenants whose alerts were re-timed

    @property
    def ok(self) -> bool:
        return all(o.error is None for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "now": iso(self.now),
            "targets": [o.to_json() for o in self.outcomes],
            "tenants_refreshed": sorted(self.tenants),
        }


class BoundedRetryPolicy(RetryPolicy):
    """azure-core's retry policy, except that it does not wait for a ``Retry-After``
    longer than ``max_retry_after``: the stock policy sleeps whatever ARM asks, which
    could hold the timer for minutes; a throttled target is simply read next time."""

    def __init__(self, max_retry_after: float = MAX_RETRY_AFTER, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        wait = self.get_retry_after(response)
        if wait is not None and wait > self.max_retry_after:
            return False
        return super().is_retry(settings, response)


# What the timer's pulls use besides the defaults (the app's identity, ARM in Azure's
# public cloud): tests and the local runner set a stand-in ARM endpoint and credential.
_arm_overrides: dict[str, Any] = {}


def configure_arm(credential: Any = None, **client_kwargs: Any) -> None:
    """Credential and client options for every later pull (None and nothing: defaults)."""
    _arm_overrides.clear()
    if credential is not None:
        _arm_overrides["credential"] = credential
    _arm_overrides.update(client_kwargs)


def arm_options() -> dict[str, Any]:
    """What ``configure_arm`` set: the keyword arguments of ``pull_registrations``."""
    return dict(_arm_overrides)


# --- the refresh interval ----------------------------------------------------------
def claim_refresh(store: TableStore, settings: Settings, now: datetime) -> bool:
    """Whether this run should pull: the last pull is ``REGISTRATION_REFRESH`` or more
    away (either way: an injected clock may go back) and this run won the row's ETag."""
    table = store.table(PULL_TABLE)
    try:
        row = table.get_entity(PULL_PARTITION, PULL_ROW)
    except ResourceNotFoundError:
        row = None
    entity = {"PartitionKey": PULL_PARTITION, "RowKey": PULL_ROW, "pulled_at": iso(now)}
    try:
        if row is None:
            table.create_entity(entity)
            return True
        last = parse_iso(row["pulled_at"])
        if abs(now - last) < settings.registration_refresh:
            return False
        table.update_entity(
            entity,
            mode=UpdateMode.REPLACE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        return True
    except ResourceExistsError:
        return False  # another run created it first: it pulls
    except (ResourceModifiedError, HttpResponseError) as exc:
        if isinstance(exc, ResourceModifiedError) or precondition_failed(exc):
            return False  # another run moved it first: it pulls
        raise


def record_pull(store: TableStore, now: datetime) -> None:
    """A pull ran at ``now`` (``ca-watch registrations pull``): the timer waits a refresh."""
    store.table(PULL_TABLE).upsert_entity(
        {"PartitionKey": PULL_PARTITION, "RowKey": PULL_ROW, "pulled_at": iso(now)},
        mode=UpdateMode.REPLACE,
    )


def pull_if_due(store: TableStore, settings: Settings, now: datetime) -> PullResult | None:
    """The timer's call: pull when the refresh interval has passed. Never raises: the
    alert pass goes on with the evidence on record whatever happens here."""
    if not settings.registration_targets:
        return None
    try:
        if not claim_refresh(store, settings, now):
            return None
        result = pull_registrations(store, settings, now, **arm_options())
    except Exception:
        log.exception("the live registration pull failed; the recorded listings stay")
        return None
    failed = [o for o in result.outcomes if o.error]
    log.info(
        "live registration pull: %d target(s) read, %d unreadable, %d tenant(s) re-timed",
        len(result.outcomes) - len(failed),
        len(failed),
        len(result.tenants),
    )
    return result


# --- the pull ------------------------------------------------------------------------
def pull_registrations(
    store: TableStore,
    settings: Settings,
    now: datetime,
    *,
    credential: Any = None,
    **client_kwargs: Any,
) -> PullResult:
    """List every ``REGISTRATION_TARGETS`` hub/DPS once and record what each holds."""
    if credential is None:
        from shared.storage.connections import app_credential

        credential = app_credential()
    result = PullResult(now)
    clients = _Clients(credential, client_kwargs)
    try:
        for target in settings.registration_targets:
            result.outcomes.append(_pull_target(store, clients, target, now, result.tenants))
    finally:
        clients.close()
    for tenant in sorted(result.tenants):
        try:
            store.tenants.refresh_tenant(tenant)
        except Exception:  # the next listing or upload of that tenant re-times it
            log.exception("re-timing the alerts of tenant %s failed", tenant)
    return result


def _pull_target(
    store: TableStore,
    clients: _Clients,
    target: RegistrationTarget,
    now: datetime,
    tenants: set[str],
) -> TargetOutcome:
    try:
        listing = _listing(target, list_certificates(clients, target))
        tenants |= store.registrations.record_listing(listing, LIVE_SOURCE, now)
        return TargetOutcome(target.target, target.kind, target.name, len(listing.certificates))
    except Exception as exc:
        code, message = describe_error(exc)
        log.warning("registration target %s unreadable: %s: %s", target.target, code, message)
        try:
            store.registrations.record_target_error(
                target.target, target.kind, target.name, code, message, now
            )
        except Exception:
            log.exception("recording the error of registration target %s failed", target.target)
        return TargetOutcome(target.target, target.kind, target.name, None, (code, message))


class _Clients:
    """One management client per (service, subscription), closed after the pull."""

    def __init__(self, credential: Any, client_kwargs: Mapping[str, Any]) -> None:
        self._credential = credential
        options = dict(client_kwargs)
        retry = {k: options.pop(k) for k in list(options) if k.startswith("retry_")}
        retry.setdefault("retry_total", RETRY_TOTAL)
        max_after = options.pop("max_retry_after", MAX_RETRY_AFTER)
        options.setdefault("retry_policy", BoundedRetryPolicy(max_after, **retry))
        self._options = options
        self._clients: dict[tuple[str, str], Any] = {}

    def get(self, target: RegistrationTarget) -> Any:
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

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.close()
            except Exception:  # closing sockets: nothing to lose
                log.debug("closing a management client failed", exc_info=True)


def _raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    """The operations' ``cls`` hook: keep ARM's own JSON, which is the listing format."""
    return pipeline_response.http_response


def list_certificates(clients: _Clients, target: RegistrationTarget) -> list[Any]:
    """Every certificate entry of the target, as ARM returns them (following ``nextLink``
    should ARM ever page these lists; today's API versions return one page)."""
    client = clients.get(target)
    if target.kind == "iot-hub":
        response = client.certificates.list_by_iot_hub(target.resource_group, target.name, cls=_raw)
    else:
        response = client.dps_certificate.list(target.resource_group, target.name, cls=_raw)
    origin = urlsplit(response.request.url)[:2]
    body = _json(response)
    entries = list(_value(body))
    for _ in range(MAX_PAGES):
        next_link = body.get("nextLink")
        if not next_link:
            return entries
        if urlsplit(next_link)[:2] != origin:
            # The bearer token goes wherever the request goes: only ever to ARM itself.
            raise ListingError("malformed-listing", "a nextLink leaves the ARM endpoint")
        from azure.core.rest import HttpRequest

        # Both clients' pipeline (auth, retry) is their ``_client``; the SDKs have no
        # public "send this URL" on the multi-API IoT Hub client.
        page = client._client.send_request(HttpRequest("GET", next_link))
        page.raise_for_status()
        body = _json(page)
        entries.extend(_value(body))
    raise ListingError("malformed-listing", f"more than {MAX_PAGES} pages")


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ListingError("malformed-listing", "ARM's answer is not JSON") from None
    if not isinstance(body, dict):
        raise ListingError("malformed-listing", "ARM's answer is not a JSON object")
    return body


def _value(body: Mapping[str, Any]) -> Sequence[Any]:
    value = body.get("value")
    if value is None:
        return []
    if not isinstance(value, list):
        raise ListingError("malformed-listing", 'ARM\'s "value" is not an array')
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
    document = listing_document(target, entries)
    try:
        listings = parse_listing(document)
    except ListingError:
        # A body the listing reader refuses (ARM's examples show placeholders) should not
        # cost the whole target: that entry's thumbprint alone still identifies it.
        listings = parse_listing(_without_refused_bodies(document))
        log.warning("registration target %s: refused certificate bodies ignored", target.target)
    if len(listings) != 1 or listings[0].target != target.target:
        raise ListingError("malformed-listing", "the listing does not name the target")
    return listings[0]


def _without_refused_bodies(document: Mapping[str, Any]) -> dict[str, Any]:
    value = []
    for entry in document["value"]:
        properties = entry.get("properties")
        if isinstance(properties, Mapping) and properties.get("certificate"):
            try:
                parse_listing({"value": [entry]})
            except ListingError:
                bare = {k: v for k, v in properties.items() if k != "certificate"}
                entry = {**entry, "properties": bare}
        value.append(entry)
    return {"value": value}


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(kebab-case code, one short line) for the report and the self-health alert."""
    if isinstance(exc, ListingError):
        return exc.code, exc.message
    status = getattr(exc, "status_code", None)
    if isinstance(exc, HttpResponseError) and status:
        error = getattr(exc, "error", None)
        arm_code = getattr(error, "code", None)
        detail = getattr(error, "message", None) or exc.reason or ""
        code = _HTTP_CODES.get(status) or ("server-error" if status >= 500 else f"http-{status}")
        head = f"ARM answered {status}" + (f" {arm_code}" if arm_code else "")
        return code, _line(f"{head}: {detail}" if detail else head)
    if isinstance(exc, HttpResponseError):  # no status: the credential found no token
        return "credential-unavailable", _line(f"no ARM token: {exc.message}")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return "network", _line(f"{type(exc).__name__}: {exc}")
    return "unexpected", _line(f"{type(exc).__name__}: {exc}")


def _line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"
