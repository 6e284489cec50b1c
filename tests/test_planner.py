"""The pure alert planner (DESIGN §4): stages, overdue cadence, ledger decisions, resolution."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.alerts.model import LedgerEntry, LedgerKey, LedgerStatus, TenantCertificate
from shared.alerts.planner import (
    CLAIM_TIMEOUT,
    AlertPlan,
    AlertPlanner,
    Decision,
    next_attempt_after,
    plan,
    resolve_replacements,
)
from shared.alerts.rules import DEFAULT_RULES_PATH, load_rules

RULES = load_rules(DEFAULT_RULES_PATH)
PLANNER = AlertPlanner(RULES)
RENEWAL = "azure-sphere-2020-07/renewal-available"
ACTIVATION = "azure-sphere-2020-07/activation"
TENANT = "9d7e79eb-0000-4000-8000-000000000001"


def at(text: str) -> datetime:
    if "T" not in text:
        text += "T00:00:00"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC)


def tenant_ca(
    not_before: str = "2020-07-01T00:00:00Z",
    not_after: str = "2022-07-01T00:00:00Z",
    verdict: str = "affected",
    tenant: str = TENANT,
    sha: str = "a" * 64,
    **extra: object,
) -> TenantCertificate:
    return TenantCertificate(
        tenant_id=tenant,
        sha256=sha,
        sha1_thumbprint=sha[:40].upper(),
        subject=f"CN=Microsoft Azure Sphere {tenant}",
        not_before=at(not_before),
        not_after=at(not_after),
        verdict=verdict,
        **extra,  # type: ignore[arg-type]
    )


def stages(p: AlertPlan, deadline: str | None = None) -> dict[str, str]:
    """deadline id -> stage_key of the items planned (or retried) on any channel."""
    return {
        i.alert.deadline_id: i.alert.stage_key
        for i in p.items
        if i.channels_to_send and (deadline is None or i.alert.deadline_id == deadline)
    }


class Ledger(dict):
    """The ledger as the timer would leave it after sending everything a plan asked for."""

    def record(self, p: AlertPlan, now: datetime, status: LedgerStatus = LedgerStatus.SENT) -> None:
        for item in p.items:
            for channel in item.channels_to_send:
                key = item.ledger_key(channel)
                self[key] = LedgerEntry(key, status, attempts=1, claimed_at=now, sent_at=now)


def run(
    now: str, certs: list[TenantCertificate], ledger: Ledger, channels=("outbox",)
) -> AlertPlan:
    p = PLANNER.plan(at(now), certs, ledger, channels)
    ledger.record(p, at(now))
    return p


# --- the DESIGN §4 example, stage by stage ----------------------------------------------


def test_design_example_stage_by_stage():
    cert = tenant_ca()  # issued 2020-07-01, no replacement on record
    ledger = Ledger()

    first = run("2020-08-04T09:00:00Z", [cert], ledger)
    assert stages(first) == {RENEWAL: "1d", ACTIVATION: "14d"}
    by_id = {i.alert.deadline_id: i.alert for i in first.items}
    assert by_id[RENEWAL].due == at("2020-08-05T00:00:00Z")
    assert by_id[ACTIVATION].due == at("2020-08-18T00:00:00Z")
    assert by_id[RENEWAL].days_left == 0  # 15 hours left, floored
    assert by_id[ACTIVATION].days_left == 13
    assert by_id[ACTIVATION].stage == "14d"
    assert any("azsphere ca list" in a for a in by_id[ACTIVATION].actions)
    assert by_id[ACTIVATION].deadline_title == "Renewed tenant CA activates"
    assert all(i.decisions == {"outbox": Decision.PLANNED} for i in first.items)

    again = run("2020-08-04T09:00:00Z", [cert], ledger)
    assert stages(again) == {}
    assert {i.alert.deadline_id: i.decisions["outbox"] for i in again.items} == {
        RENEWAL: Decision.ALREADY_SENT,
        ACTIVATION: Decision.ALREADY_SENT,
    }
    assert not again.has_work

    assert stages(run("2020-08-05T09:00:00Z", [cert], ledger)) == {RENEWAL: "0d"}
    assert stages(run("2020-08-11T09:00:00Z", [cert], ledger)) == {ACTIVATION: "7d"}
    assert stages(run("2020-08-15T09:00:00Z", [cert], ledger)) == {ACTIVATION: "3d"}
    assert stages(run("2020-08-17T09:00:00Z", [cert], ledger)) == {ACTIVATION: "1d"}
    assert stages(run("2020-08-18T01:00:00Z", [cert], ledger)) == {ACTIVATION: "0d"}

    overdue = run("2020-08-20T00:00:00Z", [cert], ledger)
    assert stages(overdue) == {ACTIVATION: "overdue@2020-08-19"}
    (item,) = overdue.items
    assert item.alert.stage == "overdue" and item.alert.days_left == -2

    assert stages(run("2020-08-25T23:59:59Z", [cert], ledger)) == {}
    assert stages(run("2020-08-26T00:00:00Z", [cert], ledger)) == {ACTIVATION: "overdue@2020-08-26"}
    assert stages(run("2020-09-02T06:00:00Z", [cert], ledger)) == {ACTIVATION: "overdue@2020-09-02"}


def test_stage_begins_exactly_at_its_lead_time():
    cert = tenant_ca()
    assert stages(PLANNER.plan(at("2020-08-03T23:59:59Z"), [cert], {}, ["outbox"])) == {
        RENEWAL: "3d"
    }
    assert stages(PLANNER.plan(at("2020-08-04T00:00:00Z"), [cert], {}, ["outbox"])) == {
        RENEWAL: "1d",
        ACTIVATION: "14d",
    }
    assert stages(PLANNER.plan(at("2020-07-21T23:59:59Z"), [cert], {}, ["outbox"])) == {}


def test_a_late_first_run_sends_only_the_most_urgent_stage():
    ledger = Ledger()
    p = run("2020-08-17T12:00:00Z", [tenant_ca()], ledger)
    assert stages(p) == {ACTIVATION: "1d"}  # not 14d, 7d, 3d, and renewal-available is past
    assert len(ledger) == 1


def test_milestone_sends_no_overdue_and_goes_quiet_a_day_after():
    cert = tenant_ca()
    assert stages(PLANNER.plan(at("2020-08-05T23:59:59Z"), [cert], {}, ["o"]), RENEWAL) == {
        RENEWAL: "0d"
    }
    for now in ("2020-08-06T00:00:00Z", "2020-08-12T00:00:00Z", "2020-09-01T00:00:00Z"):
        assert stages(PLANNER.plan(at(now), [cert], {}, ["o"]), RENEWAL) == {}


def test_overdue_reminder_cadence_follows_the_rule():
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace(
        "overdue = true\noverdue_every_days = 7", "overdue = true\noverdue_every_days = 3"
    )
    from shared.alerts.rules import parse_rules

    planner = AlertPlanner(parse_rules(text))
    cert = tenant_ca()
    keys = []
    for day in range(18, 32):
        p = planner.plan(at(f"2020-08-{day}T12:00:00Z"), [cert], {}, ["o"])
        keys.append(stages(p, ACTIVATION).get(ACTIVATION))
    assert sorted(set(keys) - {"0d"}) == [
        "overdue@2020-08-19",
        "overdue@2020-08-22",
        "overdue@2020-08-25",
        "overdue@2020-08-28",
        "overdue@2020-08-31",
    ]


@pytest.mark.parametrize(
    "change", [{"resolved_by": "b" * 64}, {"acknowledged": True}], ids=["resolved", "acked"]
)
def test_resolved_or_acknowledged_certificates_get_nothing(change: dict):
    cert = replace(tenant_ca(), **change)
    for now in ("2020-08-04T09:00:00Z", "2020-08-18T01:00:00Z", "2020-08-20T00:00:00Z"):
        assert PLANNER.plan(at(now), [cert], {}, ["outbox"]).items == ()


def test_incident_deadlines_only_for_affected_certificates():
    ok = tenant_ca(verdict="ok", sha="c" * 64)
    mismatch = tenant_ca(verdict="signature-mismatch", sha="d" * 64)
    assert PLANNER.plan(at("2020-08-04T09:00:00Z"), [ok, mismatch], {}, ["outbox"]).items == ()


# --- ledger decisions -----------------------------------------------------------------


def _entry(status: LedgerStatus, **fields: object) -> tuple[LedgerKey, LedgerEntry]:
    p = PLANNER.plan(at("2020-08-18T01:00:00Z"), [tenant_ca()], {}, ["outbox"])
    key = p.items[0].ledger_key("outbox")
    return key, LedgerEntry(key, status, **fields)  # type: ignore[arg-type]


def test_failed_send_is_retried_after_its_backoff_not_before():
    failed_at = at("2020-08-18T01:00:00Z")
    key, entry = _entry(
        LedgerStatus.FAILED,
        attempts=1,
        claimed_at=failed_at,
        next_attempt_at=next_attempt_after(1, failed_at),
        error="smtp 451",
    )
    assert key.stage_key == "0d"
    before = PLANNER.plan(failed_at + timedelta(minutes=4), [tenant_ca()], {key: entry}, ["outbox"])
    assert before.items[0].decisions["outbox"] is Decision.ALREADY_SENT
    assert before.to_send("outbox") == []
    after = PLANNER.plan(failed_at + timedelta(minutes=5), [tenant_ca()], {key: entry}, ["outbox"])
    assert after.items[0].decisions["outbox"] is Decision.RETRY
    assert [i.alert.stage_key for i in after.to_send("outbox")] == ["0d"]


def test_stale_claim_is_retried_and_a_live_one_is_not():
    claimed = at("2020-08-18T01:00:00Z")
    key, entry = _entry(LedgerStatus.CLAIMED, attempts=1, claimed_at=claimed)
    live = PLANNER.plan(claimed + timedelta(minutes=9), [tenant_ca()], {key: entry}, ["outbox"])
    assert live.items[0].decisions["outbox"] is Decision.ALREADY_SENT
    stale = PLANNER.plan(claimed + CLAIM_TIMEOUT, [tenant_ca()], {key: entry}, ["outbox"])
    assert stale.items[0].decisions["outbox"] is Decision.RETRY


def test_sent_entry_is_never_resent():
    key, entry = _entry(LedgerStatus.SENT, attempts=3, sent_at=at("2020-08-18T01:00:00Z"))
    later = PLANNER.plan(at("2020-08-18T23:00:00Z"), [tenant_ca()], {key: entry}, ["outbox"])
    assert later.items[0].decisions["outbox"] is Decision.ALREADY_SENT


def test_backoff_doubles_from_five_minutes_and_is_capped_at_six_hours():
    now = at("2020-08-18T00:00:00Z")
    waits = [next_attempt_after(n, now) - now for n in (1, 2, 3, 4, 7, 8, 50, 10_000)]
    m = timedelta(minutes=1)
    assert waits[:4] == [5 * m, 10 * m, 20 * m, 40 * m]
    assert waits[4] == 320 * m
    assert waits[5:] == [timedelta(hours=6)] * 3


def test_channels_are_decided_independently():
    cert = tenant_ca()
    now = at("2020-08-18T01:00:00Z")
    channels = ["teams", "smtp", "outbox"]
    first = PLANNER.plan(now, [cert], {}, channels)
    (item,) = first.items
    ledger = {
        item.ledger_key("teams"): LedgerEntry(item.ledger_key("teams"), LedgerStatus.SENT, 1),
        item.ledger_key("smtp"): LedgerEntry(
            item.ledger_key("smtp"),
            LedgerStatus.FAILED,
            1,
            next_attempt_at=now + timedelta(hours=1),
        ),
    }
    second = PLANNER.plan(now, [cert], ledger, channels)
    assert dict(second.items[0].decisions) == {
        "teams": Decision.ALREADY_SENT,
        "smtp": Decision.ALREADY_SENT,
        "outbox": Decision.PLANNED,
    }
    assert list(second.items[0].decisions) == channels
    assert second.items[0].channels_to_send == ("outbox",)
    assert second.to_send("teams") == [] and len(second.to_send("outbox")) == 1
    assert item.ledger_key("teams") != item.ledger_key("outbox")


# --- routine rotation -------------------------------------------------------------------


def test_rotation_stages_for_a_certificate_expiring_2021_04_27():
    # The real 2019 tenant CA shape: notAfter 2021-04-27T10:42:26Z, not affected.
    cert = tenant_ca("2019-04-27T07:42:26Z", "2021-04-27T10:42:26Z", verdict="ok")
    appears, register, expiry = (
        "rotation/renewal-appears",
        "rotation/register-before",
        "rotation/expiry",
    )
    ledger = Ledger()
    expected = [
        ("2021-01-13T10:42:25Z", {}),  # one second before renewal-appears - 14 d
        ("2021-01-13T10:42:26Z", {appears: "14d"}),
        ("2021-01-27T10:42:26Z", {appears: "0d"}),
        ("2021-01-28T10:42:26Z", {}),  # the milestone is over
        ("2021-02-27T10:42:26Z", {register: "14d"}),
        ("2021-03-13T10:42:26Z", {register: "0d"}),
        ("2021-03-14T10:42:26Z", {register: "overdue@2021-03-14"}),
        ("2021-04-13T10:42:26Z", {register: "overdue@2021-04-11", expiry: "14d"}),
        ("2021-04-27T10:42:26Z", {register: "overdue@2021-04-25", expiry: "0d"}),
        ("2021-04-28T10:42:26Z", {expiry: "overdue@2021-04-28"}),
    ]
    for now, want in expected:
        p = run(now, [cert], ledger)
        assert stages(p) == want, now
    due = {i.alert.deadline_id: i.alert.due for i in p.items}
    assert due[register] == at("2021-03-13T10:42:26Z")
    assert due[expiry] == at("2021-04-27T10:42:26Z")


def test_items_are_listed_by_tenant():
    certs = [
        tenant_ca(tenant="tenant-b", sha="b" * 64),
        tenant_ca(tenant="tenant-a", sha="a" * 64),
        tenant_ca(tenant="tenant-c", sha="c" * 64, verdict="ok"),  # nothing due for it
    ]
    p = plan(at("2020-08-04T09:00:00Z"), certs, {}, ["outbox"], RULES)
    assert [i.alert.tenant_id for i in p.items] == ["tenant-a", "tenant-a", "tenant-b", "tenant-b"]
    assert [i.alert.deadline_id for i in p.items[:2]] == [RENEWAL, ACTIVATION]  # by due date


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        PLANNER.plan(datetime(2020, 8, 4), [tenant_ca()], {}, ["outbox"])


# --- properties -----------------------------------------------------------------------

NOW = st.datetimes(
    min_value=datetime(2020, 7, 1), max_value=datetime(2022, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(
    times=st.lists(NOW, min_size=1, max_size=25),
    not_after=st.datetimes(
        min_value=datetime(2020, 9, 1), max_value=datetime(2022, 9, 1), timezones=st.just(UTC)
    ),
)
def test_runs_at_any_times_send_each_stage_once_and_never_go_backwards(times, not_after):
    cert = replace(tenant_ca(), not_after=not_after)
    ledger = Ledger()
    sent: list[tuple[str, str]] = []
    for now in sorted(times):
        p = PLANNER.plan(now, [cert], ledger, ["outbox"])
        ids = [i.alert.deadline_id for i in p.items]
        assert len(ids) == len(set(ids))  # at most one stage per (certificate, deadline)
        ledger.record(p, now)
        sent += [(i.alert.deadline_id, i.alert.stage_key) for i in p.items if i.channels_to_send]
    assert len(sent) == len(set(sent))  # nothing sent twice
    for deadline in {d for d, _ in sent}:
        leads = [int(k[:-1]) for d, k in sent if d == deadline and k.endswith("d")]
        assert leads == sorted(leads, reverse=True)  # 14d before 7d ... before 0d


# --- resolution -----------------------------------------------------------------------


def test_affected_ca_is_resolved_only_by_a_certificate_issued_after_the_window():
    affected = tenant_ca("2020-07-01T00:00:00Z", verdict="affected", sha="1" * 64)
    also_affected = tenant_ca("2020-07-20T00:00:00Z", verdict="affected", sha="2" * 64)
    at_window_end = tenant_ca("2020-07-28T00:15:00Z", verdict="ok", sha="3" * 64)
    renewed = tenant_ca("2020-08-04T00:00:00Z", verdict="ok", sha="4" * 64)
    newest = tenant_ca("2020-08-10T00:00:00Z", verdict="ok", sha="5" * 64)
    other_tenant = tenant_ca("2021-01-01T00:00:00Z", verdict="ok", tenant="other", sha="6" * 64)

    assert resolve_replacements([affected, also_affected, at_window_end], RULES) == {
        "1" * 64: None,
        "2" * 64: None,
        "3" * 64: None,
    }
    got = resolve_replacements(
        [other_tenant, newest, affected, renewed, also_affected, at_window_end], RULES
    )
    assert got == {
        "1" * 64: "5" * 64,  # the newest qualifying replacement
        "2" * 64: "5" * 64,
        "3" * 64: "5" * 64,
        "4" * 64: "5" * 64,
        "5" * 64: None,
        "6" * 64: None,
    }


def test_an_ok_ca_is_resolved_by_any_newer_one_of_its_tenant():
    old = tenant_ca("2019-04-27T07:42:26Z", "2021-04-27T10:42:26Z", verdict="ok", sha="1" * 64)
    affected = tenant_ca("2020-07-01T00:00:00Z", verdict="affected", sha="2" * 64)
    assert resolve_replacements([old, affected], RULES) == {"1" * 64: "2" * 64, "2" * 64: None}
    same_day = tenant_ca("2019-04-27T07:42:26Z", verdict="ok", sha="3" * 64)
    assert resolve_replacements([old, same_day], RULES) == {"1" * 64: None, "3" * 64: None}


# --- speed ----------------------------------------------------------------------------


def test_planning_a_thousand_open_certificates_plans_each_once():
    """A thousand open tenant CAs in one plan: each due one once per channel. (How fast is
    a benchmark's question, not a test's: `make bench` times the alert pass.)"""
    certs = [
        tenant_ca(
            not_after=f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
            verdict="affected" if i % 3 == 0 else "ok",
            tenant=f"tenant-{i:04d}",
            sha=f"{i:064x}",
        )
        for i in range(1000)
    ]
    p = PLANNER.plan(at("2020-12-28T12:00:00Z"), certs, {}, ["teams", "outbox"])
    keys = [(item.alert.certificate, item.alert.deadline_id) for item in p.items]
    assert len(p.items) > 300  # the run does real work
    assert len(keys) == len(set(keys))  # never the same deadline twice for a certificate


def test_a_certificate_caught_by_a_later_incident_resolves_nothing():
    from shared.alerts.rules import parse_rules

    second = """
[[incident]]
id = "later-incident"
title = "A later bad batch"
window_start = 2021-01-01T00:00:00Z
window_end = 2021-01-31T00:00:00Z
reasons = ["Issued in the later window."]
actions = ["Register the next one."]
"""
    rules = parse_rules(DEFAULT_RULES_PATH.read_text(encoding="utf-8") + second)
    first = tenant_ca("2020-07-01T00:00:00Z", verdict="affected", sha="1" * 64)
    later_bad = tenant_ca("2021-01-10T00:00:00Z", verdict="affected", sha="2" * 64)
    assert resolve_replacements([first, later_bad], rules) == {"1" * 64: None, "2" * 64: None}
    fixed = tenant_ca("2021-02-10T00:00:00Z", verdict="ok", sha="3" * 64)
    assert resolve_replacements([first, later_bad, fixed], rules)["1" * 64] == "3" * 64


# --- when the alert index should next offer a certificate -----------------------------------

DUE = at("2020-08-18T00:00:00Z")
WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2020-07-01T00:00:00Z", "2020-08-04T00:00:00Z"),  # before the 14d stage begins
        ("2020-08-03T23:59:59Z", "2020-08-04T00:00:00Z"),  # one second before it
        ("2020-08-04T00:00:00Z", "2020-08-11T00:00:00Z"),  # at it: the next is 7d
        ("2020-08-17T00:00:00Z", "2020-08-18T00:00:00Z"),  # at 1d: next 0d
        ("2020-08-18T00:00:00Z", "2020-08-19T00:00:00Z"),  # at 0d: overdue begins a day later
        ("2020-08-19T00:00:00Z", "2020-08-26T00:00:00Z"),  # at the first reminder
        ("2020-08-25T23:59:59Z", "2020-08-26T00:00:00Z"),
    ],
)
def test_next_stage_change_of_an_overdue_deadline(now: str, expected: str) -> None:
    assert PLANNER.next_stage_change(DUE, at(now), True, WEEK) == at(expected)


def test_a_milestone_changes_no_more_a_day_after_it() -> None:
    assert PLANNER.next_stage_change(DUE, at("2020-08-18T12:00:00Z"), False, WEEK) == at(
        "2020-08-19T00:00:00Z"
    )
    assert PLANNER.next_stage_change(DUE, at("2020-08-19T00:00:00Z"), False, WEEK) is None


def test_next_check_is_the_earliest_change_over_every_deadline() -> None:
    affected = tenant_ca(not_before="2020-07-01T00:00:00Z")
    # Renewal-available (Aug 5) at 1d -> its 0d at Aug 5 comes before activation's 7d.
    assert PLANNER.next_check(affected, at("2020-08-04T09:00:00Z")) == at("2020-08-05T00:00:00Z")
    fine = tenant_ca("2019-04-27T07:42:26Z", "2021-04-27T10:42:26Z", verdict="ok")
    # Not affected: only rotation counts; its first stage is notAfter - 90 d - 14 d.
    first = fine.not_after - timedelta(days=90 + 14)
    assert PLANNER.next_check(fine, at("2020-08-04T09:00:00Z")) == first


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=200 * 86_400))
def test_no_stage_begins_between_now_and_next_check(offset: int) -> None:
    """The property the index relies on: nothing new becomes due before next_check."""
    cert = tenant_ca(not_before="2020-07-01T00:00:00Z")
    now = at("2020-07-01T00:00:00Z") + timedelta(seconds=offset)
    later = PLANNER.next_check(cert, now)
    before = {(a.deadline_id, a.stage_key) for a in PLANNER.due_alerts(now, [cert])}
    probe = (later - timedelta(seconds=1)) if later else now + timedelta(days=400)
    if probe > now:
        after = {(a.deadline_id, a.stage_key) for a in PLANNER.due_alerts(probe, [cert])}
        assert after <= before
