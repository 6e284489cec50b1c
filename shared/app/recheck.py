"""The alert pass's send-time check (issue 10 item 0): the alert index is a schedule, not
the truth. Before anything is planned or sent, each due tenant is read again from the
source of truth (its ``tenantcas`` partition; the acknowledgements and the registration
snapshots are read once per pass): O(due tenants) reads. A tenant CA that is resolved or
acknowledged by then is dropped and its index rows are closed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from shared.alerts.model import DueAlert, TenantCertificate
from shared.storage.pool import submit
from shared.storage.store import TableStore

log = logging.getLogger("ca_watch.alerts")


def recheck_due(
    store: TableStore,
    due: Sequence[DueAlert],
    certificates: Sequence[TenantCertificate],
    now: datetime | None = None,
) -> tuple[list[DueAlert], list[TenantCertificate]]:
    """The due alerts still open now, each with its registration evidence, and the
    certificates the pass may reschedule (closed ones are not put back)."""
    tenants = sorted({alert.tenant_id for alert in due})
    if not tenants:
        return list(due), list(certificates)
    snapshots = store.registrations.snapshots()
    # Acknowledgements are operators' acts, few: one read for the pass instead of one per
    # tenant halves the reads of a first pass.
    acks = store.acks.by_tenant()
    pending = [
        (t, submit(store.tenants.state, t, snapshots, acks.get(t, {}), now)) for t in tenants
    ]
    states = {tenant: future.result() for tenant, future in pending}
    closed = {a.certificate for a in due if not states[a.tenant_id].is_open(a.certificate)}
    for tenant in sorted({a.tenant_id for a in due if a.certificate in closed}):
        log.info("tenant %s: resolved since it was indexed; its index rows are closed", tenant)
        store.tenants.refresh_tenant(tenant, now)
    kept = []
    for alert in due:
        if alert.certificate in closed:
            continue
        state = states[alert.tenant_id]
        resolution = state.resolutions.get(alert.certificate)
        kept.append(
            replace(
                alert,
                registration=resolution.registration if resolution else None,
                state=state.state_of(alert.certificate),
            )
        )
    return kept, [c for c in certificates if c.sha256 not in closed]
