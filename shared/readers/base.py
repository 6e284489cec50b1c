"""What every live reader shares: the ``Reader`` interface, its ``ReadOutcome``, the pull's
time ``Budget`` and the one way a failure is described (code, message)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from shared.analysis.listings import Listing, ListingError

CONNECT_TIMEOUT = 10.0  # seconds to open a connection (TCP and TLS)
READ_TIMEOUT = 30.0  # seconds to wait for an answer's next bytes
MAX_RETRY_AFTER = 30.0  # a longer Retry-After is not waited for: read again next pull
MAX_PAGES = 200  # never follow pages forever (100 groups per DPS page: 20,000 groups)
MAX_MESSAGE = 300
log = logging.getLogger("ca_watch.readers")
_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not-found", 429: "throttled"}


class BudgetExhausted(Exception):
    """The pull's overall budget ran out (checked between pages and targets)."""


class Budget:
    """The overall time a pull may take. Each request is bounded by the per-request
    timeouts *and* by what is left (``http.ReadGuardPolicy``), so one hung service
    cannot outlast the budget."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def check(self) -> None:
        if self.remaining() <= 0:
            raise BudgetExhausted(f"the pull budget of {self.seconds:g} s ran out")


@dataclass(frozen=True)
class SphereCa:
    """One tenant CA of a Sphere catalog as read: its DER body and catalog status."""

    der: bytes
    status: str  # Active | Inactive | Expired | Revoked (as the catalog says)
    name: str


@dataclass(frozen=True)
class ReadOutcome:
    """What one read of one target gave: a Listing (hub, DPS, IoT Central), a catalog's
    tenant CAs, or an error (code, message). Never both a result and an error."""

    target: str
    kind: str
    display_name: str
    listing: Listing | None = None
    catalog: tuple[SphereCa, ...] | None = None
    error: tuple[str, str] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


class Reader(Protocol):
    """One source of registration evidence (alertmanager's receivers: one per service).
    A reader is built for one pull with that pull's ``Budget``; every request it makes is
    bounded by it (shared/readers/http.py)."""

    kind: str

    def read(self, target: Any) -> ReadOutcome:
        """Read ``target``; never raises (a failure is the outcome's error)."""
        ...


def close_all(clients: Iterable[Any]) -> None:
    """Close the pull's SDK clients (their sockets): a failure there loses nothing."""
    for client in clients:
        try:
            client.close()
        except Exception:
            log.debug("closing a client failed", exc_info=True)


def failed(target: str, kind: str, name: str, exc: BaseException, service: str) -> ReadOutcome:
    return ReadOutcome(target, kind, name, error=describe_error(exc, service))


def describe_error(exc: BaseException, service: str = "ARM") -> tuple[str, str]:
    """(kebab-case code, one short line) for the report and the self-health alert."""
    if isinstance(exc, ListingError):
        return exc.code, exc.message
    if isinstance(exc, BudgetExhausted):
        return "timeout", _line(str(exc))
    if isinstance(exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError):
        return "timeout", _line(f"{service} did not answer in time: {exc}")
    status = getattr(exc, "status_code", None)
    if isinstance(exc, HttpResponseError) and status:
        error = getattr(exc, "error", None)
        code_text = getattr(error, "code", None)
        detail = getattr(error, "message", None) or exc.reason or ""
        code = _HTTP_CODES.get(status) or ("server-error" if status >= 500 else f"http-{status}")
        head = f"{service} answered {status}" + (f" {code_text}" if code_text else "")
        response = getattr(exc, "response", None)
        wait = response.headers.get("Retry-After") if response is not None else None
        if status == 429 and wait:
            head += f" (Retry-After {wait} s: read again at the next pull)"
        return code, _line(f"{head}: {detail}" if detail else head)
    if isinstance(exc, HttpResponseError):  # no status: the credential found no token
        return "credential-unavailable", _line(f"no token for {service}: {exc.message}")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        if "timed out" in str(exc).lower():
            return "timeout", _line(f"{service} did not answer in time: {exc}")
        return "network", _line(f"{type(exc).__name__}: {exc}")
    return "unexpected", _line(f"{type(exc).__name__}: {exc}")


def _line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"
