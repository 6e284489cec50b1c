"""The live registration pull (DESIGN §3, §4): read every configured source of registration
evidence with the app's identity, through the readers in shared/readers, and record what
each gave exactly like an upload (source ``live``).

- ``REGISTRATION_TARGETS``: IoT Hub certificate lists; DPS certificate lists *and* their
  enrollment groups (one snapshot). ``IOT_CENTRAL_APPS``: each app's enrollment groups and
  their certificate slots. ``SPHERE_CATALOGS``: each catalog's tenant CAs, analysed and
  recorded as if uploaded (source ``live:<catalog id>``), with the catalog's ``status`` and
  id on the tenant CA's row (``catalog_status``, ``catalog``).
- A source that cannot be read (401, 403, 404, throttled, a timeout, a malformed answer)
  never stops the others or the alert pass: its last good snapshot stays and the error is
  recorded for the report and the daily self-health alert. Nothing is skipped silently: a
  target the budget did not reach is recorded as ``timeout`` too.
- Bounded (issue 23 §3): ``REGISTRATION_PULL_BUDGET`` (default 3 min) for the whole pull,
  checked between pages and targets and capping every request's timeouts; the timer runs
  the pull *after* the alert pass, so a hung service never costs a sent alert.
- A DPS certificate name whose thumbprint changed since the last pull is logged and
  reported (``warnings``): re-uploading under a name silently swaps the CA its groups trust.
- The timer pulls at most every ``REGISTRATION_REFRESH``: one row (``regtargets``,
  PK ``pull``) holds the last pull time, claimed under its ETag so that concurrent timer
  runs pull once.

The readers (and their SDKs) are imported only when a pull runs: the timer imports this
module only when a live source is configured, so a cold start without one pays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.alerts.registration import TargetSnapshot
from shared.analysis.enrollment_listings import repointed_names
from shared.analysis.listings import Listing
from shared.readers.base import Budget, ReadOutcome
from shared.settings import Settings
from shared.storage.keys import iso, parse_iso, precondition_failed
from shared.storage.store import TableStore

log = logging.getLogger("ca_watch.registrations")

SCHEMA = "ca-watch/registrations-pull/v1"
LIVE_SOURCE = "live"
PULL_TABLE = "regtargets"
PULL_PARTITION, PULL_ROW = "pull", "live"
CATALOG_FORMAT = "azure-sphere-catalog"


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    kind: str  # iot-hub | dps | iot-central | sphere-catalog
    display_name: str
    certificates: int | None  # None when the target could not be read
    error: tuple[str, str] | None = None  # (code, message)
    groups: int | None = None  # enrollment groups read (DPS, IoT Central)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "display_name": self.display_name,
            "status": "error" if self.error else "ok",
            "certificates": self.certificates,
            "groups": self.groups,
            "error": {"code": self.error[0], "message": self.error[1]} if self.error else None,
            "warnings": list(self.warnings),
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


def live_sources_configured(settings: Settings) -> bool:
    return bool(
        settings.registration_targets or settings.iot_central_apps or settings.sphere_catalogs
    )


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
    """The timer's call (after its alert pass): pull when the refresh interval has passed.
    Never raises: the recorded evidence stays whatever happens here."""
    if not live_sources_configured(settings):
        return None
    try:
        if not claim_refresh(store, settings, now):
            return None
        result = pull_registrations(store, settings, now)
    except Exception:
        log.exception("the live registration pull failed; the recorded listings stay")
        return None
    failed = [o for o in result.outcomes if o.error]
    log.info(
        "live registration pull: %d source(s) read, %d unreadable, %d tenant(s) re-timed",
        len(result.outcomes) - len(failed),
        len(failed),
        len(result.tenants),
    )
    return result


# --- the pull ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Work:
    target: str
    kind: str
    display_name: str
    read: Callable[[], ReadOutcome]


def pull_registrations(
    store: TableStore, settings: Settings, now: datetime, *, credential: Any = None
) -> PullResult:
    """Read every configured source once, within ``REGISTRATION_PULL_BUDGET``, and record
    what each holds. ``credential``: the app's identity unless given (a test's own)."""
    from shared.readers.arm_certificates import ArmCertificateReader
    from shared.readers.dps import DpsReader
    from shared.readers.iot_central import IotCentralReader
    from shared.readers.sphere import SphereCatalogReader

    if credential is None:
        from shared.storage.connections import app_credential

        credential = app_credential()
    budget = Budget(settings.registration_pull_budget.total_seconds())
    arm = ArmCertificateReader(settings, credential, budget)
    dps = DpsReader(settings, credential, budget, arm)
    central = IotCentralReader(settings, credential, budget)
    sphere = SphereCatalogReader(settings, credential, budget)
    work = [
        _Work(t.target, t.kind, t.name, lambda t=t: (dps if t.kind == "dps" else arm).read(t))
        for t in settings.registration_targets
    ]
    work += [
        _Work(a, central.kind, a, lambda a=a: central.read(a)) for a in settings.iot_central_apps
    ]
    work += [
        _Work(c.target, sphere.kind, c.name, lambda c=c: sphere.read(c))
        for c in settings.sphere_catalogs
    ]
    previous = {s.target: s for s in store.registrations.snapshots()}
    result = PullResult(now)
    try:
        for item in work:
            if budget.remaining() > 0:
                outcome = item.read()
            else:  # never skipped silently: the target is recorded as not read
                message = f"not read: the pull budget of {budget.seconds:g} s ran out first"
                outcome = ReadOutcome(
                    item.target, item.kind, item.display_name, error=("timeout", message)
                )
            result.outcomes.append(
                _record(store, settings, outcome, now, previous.get(item.target), result.tenants)
            )
    finally:
        arm.close()
        sphere.close()
    for tenant in sorted(result.tenants):
        try:
            store.tenants.refresh_tenant(tenant)
        except Exception:  # the next listing or upload of that tenant re-times it
            log.exception("re-timing the alerts of tenant %s failed", tenant)
    return result


def _record(
    store: TableStore,
    settings: Settings,
    outcome: ReadOutcome,
    now: datetime,
    previous: TargetSnapshot | None,
    tenants: set[str],
) -> TargetOutcome:
    """Record one read (its evidence or its error); a storage failure is that target's error."""
    try:
        if outcome.error is None and outcome.listing is not None:
            return _record_listing(store, outcome, outcome.listing, now, previous, tenants)
        if outcome.error is None and outcome.catalog is not None:
            return _record_catalog(store, settings, outcome, now, tenants)
        code, message = outcome.error or ("unexpected", "the reader gave nothing")
    except Exception as exc:
        from shared.readers.base import describe_error

        code, message = describe_error(exc, "storage")
    log.warning("live source %s unreadable: %s: %s", outcome.target, code, message)
    try:
        store.registrations.record_target_error(
            outcome.target, outcome.kind, outcome.display_name, code, message, now
        )
    except Exception:
        log.exception("recording the error of live source %s failed", outcome.target)
    return TargetOutcome(outcome.target, outcome.kind, outcome.display_name, None, (code, message))


def _record_listing(
    store: TableStore,
    outcome: ReadOutcome,
    listing: Listing,
    now: datetime,
    previous: TargetSnapshot | None,
    tenants: set[str],
) -> TargetOutcome:
    before: Mapping[str, str] = {
        e.name: e.thumbprint for e in (previous.entries if previous else ()) if e.name
    }
    warnings = repointed_names(before, listing) if listing.kind == "dps" else ()
    for warning in warnings:
        log.warning("registration target %s: %s", listing.target, warning)
    # When the evidence was made: the read, never the pass's (injectable) clock (issue 21).
    tenants |= store.registrations.record_listing(listing, LIVE_SOURCE, datetime.now(UTC))
    return TargetOutcome(
        listing.target,
        listing.kind,
        listing.display_name,
        len(listing.certificates),
        groups=len(listing.groups) if listing.groups is not None else None,
        warnings=warnings,
    )


def _record_catalog(
    store: TableStore, settings: Settings, outcome: ReadOutcome, now: datetime, tenants: set[str]
) -> TargetOutcome:
    """Each tenant CA of the catalog, analysed and recorded as if uploaded (source
    ``live:<catalog id>``), its catalog status and catalog id on its ``tenantcas`` row."""
    from shared.analysis.classify import Role
    from shared.analysis.scan import analyze_bytes

    assert outcome.catalog is not None
    source = f"{LIVE_SOURCE}:{outcome.target}"
    warnings = []
    for ca in outcome.catalog:
        analysed = analyze_bytes(
            source, ca.der, store.tenants.rules, now, settings.max_upload_bytes
        )
        if analysed.error is not None or not analysed.certificates:
            warnings.append(f"catalog certificate {ca.name!r} unreadable: {analysed.error}")
            continue
        for cert in analysed.certificates:
            store.certificates.add_source(cert, source, now)
            tenant = cert.classification.tenant_id
            if cert.classification.role is Role.TENANT_CA and tenant:
                store.tenants.add(
                    tenant, cert.sha256, {"catalog_status": ca.status, "catalog": outcome.target}
                )
                tenants.add(tenant)
    # The catalog's own row: when it was read, and a past error cleared. It lists no
    # certificate: a catalog is where tenant CAs come from, not a registration target.
    store.registrations.record_listing(
        Listing(outcome.target, outcome.kind, outcome.display_name, CATALOG_FORMAT, ()),
        LIVE_SOURCE,
        datetime.now(UTC),
    )
    return TargetOutcome(
        outcome.target,
        outcome.kind,
        outcome.display_name,
        len(outcome.catalog),
        warnings=tuple(warnings),
    )
