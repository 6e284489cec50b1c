"""Golden scan: fixed certificate files in, the committed scan/v1 JSON out, byte for byte.

One comparison pins every reason and action text, each role and verdict, the window's
inclusive edges, the rotation deadlines, chain links and each read error's code and message,
so a mutant that changes any of them is caught (issue 16: mutation testing). The corpus and
how to regenerate the expected JSON: tests/golden_files.py.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from golden_files import EXPECTED, GOLDEN, GOLDEN_NOW, golden_sources, scan_golden

from shared.alerts.rules import DEFAULT_RULES_PATH, load_rules
from shared.analysis.classify import Verdict, classify_certificate
from shared.analysis.facts import (
    AlgorithmIdentifier,
    CertificateFacts,
    Mismatch,
    extract_facts,
    facts_json,
)
from shared.analysis.reader import read_certificates


def test_the_golden_corpus_scans_to_the_committed_json() -> None:
    expected = json.loads(EXPECTED.read_text())
    actual = scan_golden()
    assert [r["source"] for r in actual["results"]] == [p.name for p in golden_sources()]
    for got, want in zip(actual["results"], expected["results"], strict=True):
        assert got == want, got["source"]
    assert actual == expected


def test_the_golden_corpus_covers_every_role_and_verdict() -> None:
    """The corpus stays broad enough to mean something if it is ever regenerated."""
    certificates = [
        c for r in json.loads(EXPECTED.read_text())["results"] for c in r["certificates"]
    ]
    roles = {c["azure_sphere"]["role"] for c in certificates}
    verdicts = {c["verdict"] for c in certificates}
    assert roles == {"tenant-ca", "device", "verification", "microsoft-ca", None}
    assert verdicts == {"affected", "signature-mismatch", "ok"}
    assert any(c["chain"] for c in certificates)


# --- classify: the survivors of the golden corpus, killed one by one -------------------

_GOLDEN_TENANT = GOLDEN / "07-rotating.pem"  # notAfter 2020-10-01 00:00:00 UTC


def _tenant_facts() -> CertificateFacts:
    return extract_facts(read_certificates(_GOLDEN_TENANT.read_bytes()).certificates[0])


def test_rotation_begins_at_exactly_ninety_days_and_lasts_through_not_after() -> None:
    facts, rules = _tenant_facts(), load_rules(DEFAULT_RULES_PATH)
    assert rules.rotation is not None
    for now in (facts.not_after - timedelta(days=90), facts.not_after):
        result = classify_certificate(facts, rules, now)
        assert result.actions == rules.rotation.actions, now
    before = classify_certificate(facts, rules, facts.not_after - timedelta(days=90, seconds=1))
    assert before.actions == ()


def test_a_tenant_ca_at_its_not_after_instant_is_not_yet_expired() -> None:
    facts = _tenant_facts()
    at_end = classify_certificate(facts, load_rules(DEFAULT_RULES_PATH), facts.not_after)
    assert at_end.reasons[0] == (
        "Valid until 2020-10-01 00:00:00 UTC (0 days left). "
        "Rotation under way; next: Tenant CA expires on 2020-10-01 00:00:00 UTC."
    )
    after = classify_certificate(
        facts, load_rules(DEFAULT_RULES_PATH), facts.not_after + timedelta(seconds=1)
    )
    assert after.reasons[0] == "Expired on 2020-10-01 00:00:00 UTC."


def test_a_deadline_due_this_very_second_is_still_the_next_one() -> None:
    facts = _tenant_facts()
    register_due = facts.not_after - timedelta(days=45)
    result = classify_certificate(facts, load_rules(DEFAULT_RULES_PATH), register_due)
    assert result.reasons[0].endswith(
        "next: Register the renewed tenant CA on 2020-08-17 00:00:00 UTC."
    )


def test_unknown_signature_algorithms_are_named_by_their_oid() -> None:
    tenant = _tenant_facts()
    unknown_outer = AlgorithmIdentifier(b"\x30\x05\x06\x03\x2a\x03\x04", "1.2.3.4", None)
    unknown_inner = AlgorithmIdentifier(b"\x30\x05\x06\x03\x2a\x03\x05", "1.2.3.5", None)
    facts = tenant._replace(
        outer_algorithm=unknown_outer, inner_algorithm=unknown_inner, mismatch=Mismatch.OID
    )
    reasons = classify_certificate(facts, load_rules(DEFAULT_RULES_PATH), GOLDEN_NOW).reasons
    assert any(
        r.startswith(
            "The outer signature algorithm (1.2.3.4) differs from the one inside the "
            "signed part (1.2.3.5);"
        )
        for r in reasons
    ), reasons


def test_the_incident_id_is_that_of_the_window_holding_the_tenant_ca() -> None:
    rules = load_rules(DEFAULT_RULES_PATH)
    affected = read_certificates((GOLDEN / "03-window-start.der").read_bytes()).certificates[0]
    assert classify_certificate(extract_facts(affected), rules, GOLDEN_NOW).incident_id == (
        "azure-sphere-2020-07"
    )
    assert classify_certificate(_tenant_facts(), rules, GOLDEN_NOW).incident_id is None


def test_facts_with_sub_second_times_are_compared_to_the_second_as_the_rules_say() -> None:
    """Certificates carry whole seconds; facts built by a caller may not. The window's end
    (2020-07-28 00:15:00) still holds a notBefore half a second later, and naive times are
    read as UTC (Incident.contains)."""
    rules = load_rules(DEFAULT_RULES_PATH)
    end = datetime(2020, 7, 28, 0, 15, tzinfo=UTC)
    for not_before in (end + timedelta(microseconds=500_000), end.replace(tzinfo=None)):
        facts = _tenant_facts()._replace(not_before=not_before)
        result = classify_certificate(facts, rules, GOLDEN_NOW)
        assert result.verdict == Verdict.AFFECTED, not_before
    late = _tenant_facts()._replace(not_before=end + timedelta(seconds=1, microseconds=1))
    assert classify_certificate(late, rules, GOLDEN_NOW).verdict == Verdict.OK


def test_validity_times_are_written_in_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        body = facts_json(_tenant_facts())
    finally:
        monkeypatch.undo()
        time.tzset()
    assert body["not_after"] == "2020-10-01T00:00:00Z"
