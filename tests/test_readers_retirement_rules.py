"""The Azure Sphere retirement dates as default rules (issue 22 §3): data in
shared/alerts/default_rules.toml, no code. Each is an incident whose window no tenant CA is
issued in, so it reclassifies nothing and its deadline reaches every tenant CA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.alerts.model import TenantCertificate
from shared.alerts.planner import AlertPlanner
from shared.alerts.rules import load_rules
from shared.analysis.scan import analyze_bytes
from shared.local import samples

LEGACY = "azure-sphere-legacy-retirement/legacy-retires"
SPHERE = "azure-sphere-retirement/service-retires"


def cert(verdict: str) -> TenantCertificate:
    return TenantCertificate(
        tenant_id="4eed0001-2222-4333-8444-955556666777",
        sha256="ab" * 32,
        sha1_thumbprint="CD" * 20,
        subject="CN=Microsoft Azure Sphere 4eed0001-2222-4333-8444-955556666777",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2032, 1, 1, tzinfo=UTC),
        verdict=verdict,
    )


@pytest.mark.parametrize("verdict", ["ok", "affected", "signature-mismatch"])
@pytest.mark.parametrize(
    ("now", "deadline", "stage"),
    [
        (datetime(2027, 9, 13, tzinfo=UTC), LEGACY, "14d"),
        (datetime(2027, 9, 27, tzinfo=UTC), LEGACY, "0d"),
        (datetime(2031, 7, 30, tzinfo=UTC), SPHERE, "1d"),
    ],
)
def test_every_tenant_ca_is_told_of_each_retirement(
    verdict: str, now: datetime, deadline: str, stage: str
) -> None:
    due = AlertPlanner(load_rules()).due_alerts(now, [cert(verdict)])
    assert (deadline, stage) in {(a.deadline_id, a.stage) for a in due}


def test_a_retirement_is_a_milestone_not_an_overdue_reminder() -> None:
    later = datetime(2027, 10, 30, tzinfo=UTC)
    due = AlertPlanner(load_rules()).due_alerts(later, [cert("ok")])
    assert LEGACY not in {a.deadline_id for a in due}


def test_the_retirements_reclassify_no_certificate() -> None:
    rules = load_rules()
    for not_before in (datetime(2019, 4, 27, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)):
        issued = samples.tenant_ca("4eed0002-2222-4333-8444-955556666777", not_before)
        (analysed,) = analyze_bytes("ca.cer", issued.der, rules).certificates
        assert analysed.classification.verdict == "ok"
        assert analysed.classification.incident_id is None
