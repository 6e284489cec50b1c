"""Planner behaviours the golden alert timeline does not reach (issue 16): certificates that
are skipped must not hide the ones after them, incident deadlines relative to notAfter,
a custom claim timeout, a certificate with nothing left to watch, and replacement under
rules other than the default (two incidents, a custom window, the RULES_FILE setting).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.alerts.model import LedgerEntry, LedgerStatus, TenantCertificate
from shared.alerts.planner import AlertPlanner, Decision, replacement_candidates
from shared.alerts.planner import resolve_replacements as resolve
from shared.alerts.rules import DEFAULT_RULES_PATH, clear_rules_cache, load_rules, parse_rules

DEFAULT_RULES = load_rules(DEFAULT_RULES_PATH)
TENANT = "9d7e79eb-0000-4000-8000-000000000001"

# An incident of 2021 whose deadline is relative to each certificate's notAfter, and a
# routine expiry deadline for every tenant CA.
RELATIVE_INCIDENT = """
[[incident]]
id = "short-lived"
title = "Short-lived batch"
window_start = 2021-01-01T00:00:00Z
window_end = 2021-01-31T00:00:00Z
reasons = ["Issued in the bad window."]
actions = ["Replace it early."]

[[incident.deadline]]
id = "replace-early"
title = "Replace early"
message = "Replace it 200 days before it expires."
days_before_not_after = 200
overdue = true
"""
ROTATION = """
[rotation]
title = "Routine rotation"
actions = ["Register the renewed tenant CA."]

[[rotation.deadline]]
id = "expiry"
title = "Tenant CA expires"
message = "It expires."
days_before_not_after = 0
overdue = true
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tenant_ca(
    not_before: str, verdict: str, sha: str, not_after: str = "2022-01-10T00:00:00", **extra
) -> TenantCertificate:
    return TenantCertificate(
        tenant_id=TENANT,
        sha256=sha * 64,
        sha1_thumbprint=sha * 40,
        subject=f"CN=Microsoft Azure Sphere {TENANT}",
        not_before=at(not_before),
        not_after=at(not_after),
        verdict=verdict,
        **extra,
    )


def due_ids(planner: AlertPlanner, now: str, certs: list[TenantCertificate]) -> set[tuple]:
    return {(a.certificate[0], a.deadline_id) for a in planner.due_alerts(at(now), certs)}


# --- due alerts -----------------------------------------------------------------------------


def test_an_acknowledged_or_replaced_certificate_does_not_hide_the_next_one() -> None:
    planner = AlertPlanner(DEFAULT_RULES)
    certs = [
        tenant_ca("2020-07-01T00:00:00", "affected", "1", acknowledged=True),
        tenant_ca("2020-07-02T00:00:00", "affected", "2", resolved_by="f" * 64),
        tenant_ca("2020-07-03T00:00:00", "affected", "3"),
    ]
    assert due_ids(planner, "2020-08-04T09:00:00", certs) == {
        ("3", "azure-sphere-2020-07/renewal-available"),
        ("3", "azure-sphere-2020-07/activation"),
    }


def test_an_incident_deadline_relative_to_not_after_reaches_only_its_verdicts() -> None:
    planner = AlertPlanner(parse_rules(RELATIVE_INCIDENT + ROTATION))
    affected = tenant_ca("2021-01-10T00:00:00", "affected", "a")
    fine = tenant_ca("2021-03-01T00:00:00", "ok", "b")
    # A day before both expire; replace-early (due 2021-06-24) is long overdue.
    assert due_ids(planner, "2022-01-09T12:00:00", [fine, affected]) == {
        ("a", "short-lived/replace-early"),
        ("a", "rotation/expiry"),
        ("b", "rotation/expiry"),
    }


def test_due_alerts_refuse_a_time_without_a_zone() -> None:
    with pytest.raises(ValueError) as info:
        AlertPlanner(DEFAULT_RULES).due_alerts(datetime(2020, 8, 4), [])
    assert str(info.value) == "now must be timezone-aware"


def test_a_certificate_with_nothing_left_to_watch_is_never_offered_again() -> None:
    planner = AlertPlanner(parse_rules(RELATIVE_INCIDENT))  # no rotation
    fine = tenant_ca("2021-03-01T00:00:00", "ok", "b")
    assert planner.next_check(fine, at("2021-06-01T00:00:00")) is None


# --- ledger decisions ------------------------------------------------------------------------


def test_a_planner_with_a_shorter_claim_timeout_takes_over_sooner() -> None:
    now = at("2020-08-04T09:00:00")
    cert = tenant_ca("2020-07-01T00:00:00", "affected", "1")
    due = AlertPlanner(DEFAULT_RULES).due_alerts(now, [cert])
    claimed_5_min_ago = {
        a.ledger_key("teams"): LedgerEntry(
            a.ledger_key("teams"), LedgerStatus.CLAIMED, 1, claimed_at=now - timedelta(minutes=5)
        )
        for a in due
    }
    patient = AlertPlanner(DEFAULT_RULES).decide_all(now, due, claimed_5_min_ago, ["teams"])
    assert {i.decisions["teams"] for i in patient.items} == {Decision.ALREADY_SENT}
    impatient = AlertPlanner(DEFAULT_RULES, claim_timeout=timedelta(minutes=2))
    plan = impatient.plan(now, [cert], claimed_5_min_ago, ["teams"])
    assert {i.decisions["teams"] for i in plan.items} == {Decision.RETRY}


# --- replacement -------------------------------------------------------------------------


def test_a_newer_affected_certificate_does_not_hide_an_older_fix() -> None:
    """Caught in July 2020, fixed in September, and the newest one caught by a later
    incident: the September certificate still replaces the first."""
    rules = parse_rules(
        DEFAULT_RULES_PATH.read_text(encoding="utf-8") + RELATIVE_INCIDENT.split("[[incident.")[0]
    )
    first = tenant_ca("2020-07-01T00:00:00", "affected", "1")
    fixed = tenant_ca("2020-09-01T00:00:00", "ok", "2")
    later_bad = tenant_ca("2021-01-10T00:00:00", "affected", "3")
    candidates = replacement_candidates([first, fixed, later_bad], rules)
    assert candidates["1" * 64] == ["2" * 64]
    assert resolve([first, fixed, later_bad], rules)["1" * 64] == "2" * 64


# A certificate caught by the 2021 window, and one issued later inside that same window: no
# replacement under the 2021 rules, a replacement under the default (2020) rules.
CAUGHT_2021 = tenant_ca("2021-01-10T00:00:00", "affected", "1")
SAME_WINDOW = tenant_ca("2021-01-20T00:00:00", "ok", "2")


def test_replacement_follows_the_rules_it_is_given() -> None:
    rules_2021 = parse_rules(RELATIVE_INCIDENT + ROTATION)
    assert resolve([CAUGHT_2021, SAME_WINDOW], rules_2021)["1" * 64] is None
    assert resolve([CAUGHT_2021, SAME_WINDOW], DEFAULT_RULES)["1" * 64] == "2" * 64


def test_replacement_without_rules_follows_the_rules_file_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(RELATIVE_INCIDENT + ROTATION, encoding="utf-8")
    monkeypatch.setenv("RULES_FILE", str(rules_file))
    clear_rules_cache()
    try:
        assert resolve([CAUGHT_2021, SAME_WINDOW])["1" * 64] is None
        assert replacement_candidates([CAUGHT_2021, SAME_WINDOW])["1" * 64] == []
    finally:
        monkeypatch.delenv("RULES_FILE")
        clear_rules_cache()
    assert resolve([CAUGHT_2021, SAME_WINDOW])["1" * 64] == "2" * 64
