"""The live registration pull (issue 10 item 4) through the REAL management SDKs
(``azure-mgmt-iothub``, ``azure-mgmt-iothubprovisioningservices``) against a loopback HTTPS
server standing in for ARM (tests/arm_server.py: its own CA, made with ``cryptography``,
trusted through ``REQUESTS_CA_BUNDLE``), with storage on Azurite. The UNMODIFIED app is
pointed at it through settings alone (tests/live_standins.py: ``ARM_ENDPOINT``, ...).

Entra ID cannot run here: a loopback App Service identity endpoint (``IDENTITY_ENDPOINT``)
stands in for it; the ARM stand-in accepts only a token for its own audience, so the
SDK's auth policy and the scope the app asks for are exercised.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.app import handlers
from shared.app.alert_pass import run_alerts
from shared.app.registration_pull import claim_refresh, pull_registrations
from shared.local import samples
from shared.local.cli import main as cli_main
from shared.local.runner import process_pending
from shared.settings import Settings
from tests.arm_server import (
    DROP,
    ArmServer,
    Reply,
    arm_error,
    certificates_path,
    pages,
)
from tests.live_standins import StandIns, app_settings_for, dps_query_path
from tests.registration_samples import DPS_ID, HUB_ID, arm_entry

PROJECT = Path(__file__).resolve().parent.parent
NOW = datetime(2020, 8, 10, 9, 0, tzinfo=UTC)
INSIDE = datetime(2020, 7, 1, tzinfo=UTC)  # affected by the 2020 incident
RENEWED = datetime(2020, 8, 1, tzinfo=UTC)  # issued after the window: a real replacement
HUB, DPS = HUB_ID.lower(), DPS_ID.lower()
HUB_PATH, DPS_PATH = certificates_path(HUB_ID), certificates_path(DPS_ID)
UNREADABLE = "registration-targets-failing"  # the self-health problem naming them


def tenant(n: int) -> str:
    return f"1eed{n:04x}-2222-4333-8444-955556666777"


def pair(n: int) -> tuple[samples.Issued, samples.Issued]:
    return (
        samples.tenant_ca(tenant(n), INSIDE, key_seed=3000 + 2 * n),
        samples.tenant_ca(tenant(n), RENEWED, key_seed=3001 + 2 * n),
    )


def sha(issued: samples.Issued) -> str:
    import hashlib

    return hashlib.sha256(issued.der).hexdigest()


def listing(parent: str, entries: list[tuple[str, samples.Issued, bool]]) -> dict[str, Any]:
    """The body ARM returns (and ``az iot hub|dps certificate list`` prints)."""
    return {"value": [arm_entry(parent, n, c, verified=v) for n, c, v in entries]}


def settings_for(*targets: str, refresh: str = "6h", **extra: str) -> Settings:
    env = {"REGISTRATION_TARGETS": ",".join(targets), "REGISTRATION_REFRESH": refresh}
    return Settings.from_env({**os.environ, **env, **extra})


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)


def plan(rt: handlers.Runtime, settings: Settings, now: datetime = NOW) -> list[dict[str, Any]]:
    document = run_alerts(store=rt.store, settings=settings, rules=rt.rules, now=now, dry_run=True)
    return document["items"]


def _without_provenance(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plan without each target's source and time (live or a blob, read when)."""
    out = json.loads(json.dumps(items))
    for item in out:
        for target in item["registration"]["targets"]:
            for key in [k for k in target if _when_or_where(k)]:
                del target[key]
    return out


def _when_or_where(key: str) -> bool:
    return key in ("source", "seen_at", "groups") or key.startswith("groups_")


def targets(rt: handlers.Runtime) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in rt.store.report()["targets"]}


def snapshot(rt: handlers.Runtime, target: str) -> Any:
    return next(s for s in rt.store.registrations.snapshots() if s.target == target)


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIns]:
    """The stand-ins, and the settings that point the app at them (nothing else)."""
    with app_settings_for(tmp_path, monkeypatch) as world:
        # The DPS has no enrollment groups here (tests/test_readers_*.py read them).
        world.dps.script(dps_query_path(DPS_ID.rsplit("/", 1)[1]), Reply(200, []))
        yield world


@pytest.fixture
def arm(live: StandIns) -> ArmServer:
    return live.arm


# --- records exactly like an upload ----------------------------------------------------------


def test_live_listing_records_exactly_like_the_uploaded_listing_with_source_live(
    app_runtime: handlers.Runtime, arm: ArmServer
) -> None:
    old, new = pair(1)
    hub_body = listing(HUB_ID, [("old", old, True), ("new", new, False)])
    dps_body = listing(DPS_ID, [("old", old, True), ("new", new, True)])
    arm.script(HUB_PATH, Reply(200, hub_body))
    arm.script(DPS_PATH, Reply(200, dps_body))
    upload(app_runtime, {"old.cer": old.der, "new.cer": new.der})
    process_pending(app_runtime)
    settings = settings_for(HUB_ID, DPS_ID)

    result = pull_registrations(app_runtime.store, settings, NOW)

    assert [o.to_json()["status"] for o in result.outcomes] == ["ok", "ok"]
    assert result.tenants == {tenant(1)}  # the listings concern tenant 1: re-timed
    live = {t: snapshot(app_runtime, t) for t in (HUB, DPS)}
    live_targets = targets(app_runtime)
    live_plan = plan(app_runtime, settings)
    assert {t["source"] for t in live_targets.values()} == {"live"}
    assert live_targets[HUB]["display_name"] == "Fleet-Hub" and live_targets[DPS]["kind"] == "dps"
    (item,) = live_plan
    assert item["registration"]["pending"] == [HUB]  # unverified in the hub only

    # The same bodies uploaded as listings record the same thing (only the source differs).
    app_runtime.store.delete_all()
    app_runtime.store.ensure_tables()
    upload(
        app_runtime,
        {
            "old.cer": old.der,
            "new.cer": new.der,
            "hub.json": json.dumps(hub_body).encode(),
            "dps.json": json.dumps(dps_body).encode(),
        },
    )
    process_pending(app_runtime)
    uploaded_targets = targets(app_runtime)
    for target in (HUB, DPS):
        uploaded = snapshot(app_runtime, target)
        assert uploaded.entries == live[target].entries
        assert (uploaded.kind, uploaded.display_name) == (
            live[target].kind,
            live[target].display_name,
        )
        # (The live DPS read its enrollment groups too; the uploaded certificate list did not.)
        assert {k: v for k, v in uploaded_targets[target].items() if not _when_or_where(k)} == {
            k: v for k, v in live_targets[target].items() if not _when_or_where(k)
        }
    assert _without_provenance(plan(app_runtime, settings)) == _without_provenance(live_plan)
    # Every ARM request carried the stand-in token through the SDK's auth policy.
    assert arm.count() == 2 and all(s.authorization for s in arm.seen)
    # ... a token the stand-in accepted only for ARM's own audience (it answers 401 else).


def test_next_link_pages_are_followed_and_an_empty_hub_is_evidence_too(
    app_runtime: handlers.Runtime, arm: ArmServer
) -> None:
    certs = [samples.tenant_ca(tenant(2), INSIDE, key_seed=3100 + n) for n in range(5)]
    entries = [arm_entry(HUB_ID, f"ca{n}", c, verified=n % 2 == 0) for n, c in enumerate(certs)]
    first = f"{arm.base_url}{HUB_PATH}?api-version=2023-06-30"
    arm.script(HUB_PATH, *pages(entries, 2, first))
    settings = settings_for(HUB_ID)

    result = pull_registrations(app_runtime.store, settings, NOW)

    assert result.outcomes[0].certificates == 5
    assert [s.query for s in arm.seen] == [
        "api-version=2023-06-30",
        "api-version=2023-06-30&$skiptoken=page1",
        "api-version=2023-06-30&$skiptoken=page2",
    ]
    recorded = snapshot(app_runtime, HUB)
    assert [e.verified for e in recorded.entries] == [True, False, True, False, True]
    # Later every CA was removed from the hub: an empty list replaces the snapshot.
    arm.script(HUB_PATH, Reply(200, {"value": []}))
    pull_registrations(app_runtime.store, settings, NOW + timedelta(hours=6))
    assert snapshot(app_runtime, HUB).entries == ()
    assert targets(app_runtime)[HUB]["certificates"] == 0


def test_a_body_the_reader_refuses_still_leaves_the_thumbprint_as_evidence(
    app_runtime: handlers.Runtime, arm: ArmServer
) -> None:
    """ARM's own examples carry a placeholder body ("####..."): the thumbprint still counts."""
    old, new = pair(9)
    hub = listing(HUB_ID, [("old", old, True), ("new", new, True)])
    hub["value"][0]["properties"]["certificate"] = "############################################"
    hub["value"][1]["properties"]["certificate"] = base64.b64encode(new.der).decode()
    arm.script(HUB_PATH, Reply(200, hub))

    result = pull_registrations(app_runtime.store, settings_for(HUB_ID), NOW)

    assert result.ok and result.outcomes[0].certificates == 2
    bodies = {e.name: e.sha256 for e in snapshot(app_runtime, HUB).entries}
    assert bodies == {"old": None, "new": sha(new)}  # a good body still counts


def test_a_next_link_to_another_host_is_refused_and_gets_no_token(
    app_runtime: handlers.Runtime, arm: ArmServer
) -> None:
    old, _ = pair(3)
    body = listing(HUB_ID, [("old", old, True)])
    body["nextLink"] = "https://attacker.example/steal?api-version=2023-06-30"
    arm.script(HUB_PATH, Reply(200, body))

    result = pull_registrations(app_runtime.store, settings_for(HUB_ID), NOW)

    assert result.outcomes[0].error is not None
    assert result.outcomes[0].error[0] == "malformed-listing"
    assert arm.count() == 1


# --- unreadable targets ------------------------------------------------------------------


def test_throttled_and_forbidden_targets_keep_their_snapshot_and_show_in_self_health(
    app_runtime: handlers.Runtime,
    arm: ArmServer,
    tmp_path: Path,
) -> None:
    old, new = pair(4)
    arm.script(HUB_PATH, Reply(200, listing(HUB_ID, [("old", old, True)])))
    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True)])))
    upload(app_runtime, {"old.cer": old.der})
    process_pending(app_runtime)
    settings = settings_for(HUB_ID, DPS_ID)
    pull_registrations(app_runtime.store, settings, NOW)
    good = {t: snapshot(app_runtime, t) for t in (HUB, DPS)}

    # Six hours later ARM throttles the hub for an hour and the identity lost Reader on
    # the DPS. The renewal is uploaded meanwhile.
    later = NOW + timedelta(hours=6)
    arm.clear()
    arm.script(
        HUB_PATH,
        Reply(429, arm_error("TooManyRequests", "throttled"), (("Retry-After", "3600"),)),
    )
    arm.script(
        DPS_PATH,
        Reply(
            403,
            arm_error(
                "AuthorizationFailed",
                "The client 'ca-watch-id' does not have authorization to perform action "
                "'Microsoft.Devices/provisioningServices/certificates/read'",
            ),
        ),
    )
    upload(app_runtime, {"new.cer": new.der})
    process_pending(app_runtime)
    started = time.monotonic()
    result = pull_registrations(app_runtime.store, settings, later)
    elapsed = time.monotonic() - started

    errors = {o.target: o.error for o in result.outcomes}
    assert errors[HUB] is not None and errors[HUB][0] == "throttled"
    assert errors[DPS] is not None and errors[DPS][0] == "forbidden"
    assert "AuthorizationFailed" in errors[DPS][1]
    # A Retry-After beyond the bound is not waited for (nor retried): one request each.
    assert arm.count(HUB_PATH) == 1 and arm.count(DPS_PATH) == 1
    assert elapsed < 30  # not the 3600 s asked for (a loaded machine is slow)
    # The last good snapshots stay in force, and the report carries the errors.
    for target in (HUB, DPS):
        kept = snapshot(app_runtime, target)
        assert (kept.entries, kept.seen_at) == (good[target].entries, good[target].seen_at)
    report = targets(app_runtime)
    assert report[HUB]["error"]["code"] == "throttled"
    assert report[DPS]["error"]["code"] == "forbidden"
    # So the renewal does not resolve: both targets still hold only the current CA.
    (item,) = plan(app_runtime, settings, later)
    assert sorted(item["registration"]["pending"]) == sorted([DPS, HUB])

    # The daily self-health alert names both targets and their errors, once a day.
    outbox = tmp_path / "health"
    health_settings = settings_for(
        HUB_ID, DPS_ID, ALERT_CHANNELS="outbox", ALERT_OUTBOX_DIR=str(outbox)
    )
    document = run_alerts(
        store=app_runtime.store, settings=health_settings, rules=app_runtime.rules, now=later
    )
    (problem,) = [p for p in document["self_health"] if p["problem"] == UNREADABLE]
    assert problem["channels"] == {"outbox": "sent"}
    text = "\n".join(p.read_text(encoding="utf-8") for p in outbox.glob("*.txt"))
    assert "2 registration target(s) could not be read" in text
    # Each named by its resource id too: two hubs may share a name across subscriptions.
    assert f"Fleet-Hub ({HUB}): throttled" in text
    assert f"Fleet-DPS ({DPS}): forbidden" in text and "AuthorizationFailed" in text
    again = run_alerts(
        store=app_runtime.store,
        settings=health_settings,
        rules=app_runtime.rules,
        now=later + timedelta(hours=1),
    )
    (problem,) = [p for p in again["self_health"] if p["problem"] == UNREADABLE]
    assert problem["channels"] == {"outbox": "already-sent"}

    # ARM recovers: a good read clears the error; a day later the problem is gone.
    arm.script(HUB_PATH, Reply(200, listing(HUB_ID, [("old", old, True), ("new", new, True)])))
    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True), ("new", new, True)])))
    assert pull_registrations(
        app_runtime.store,
        settings,
        later + timedelta(hours=6),
    ).ok
    assert all(t["error"] is None for t in targets(app_runtime).values())
    assert plan(app_runtime, settings, later + timedelta(hours=6)) == []
    healthy = run_alerts(
        store=app_runtime.store,
        settings=health_settings,
        rules=app_runtime.rules,
        now=later + timedelta(days=1, hours=1),
        dry_run=True,
    )
    assert UNREADABLE not in {p["problem"] for p in healthy["self_health"]}


def test_a_short_retry_after_is_honoured_then_the_read_succeeds(
    app_runtime: handlers.Runtime, arm: ArmServer
) -> None:
    old, _ = pair(5)
    arm.script(
        DPS_PATH,
        Reply(429, arm_error("TooManyRequests", "slow down"), (("Retry-After", "1"),)),
        Reply(200, listing(DPS_ID, [("old", old, True)])),
    )
    started = time.monotonic()
    result = pull_registrations(app_runtime.store, settings_for(DPS_ID), NOW)
    assert result.ok and result.outcomes[0].certificates == 1
    assert arm.count(DPS_PATH) == 2
    assert 0.9 <= time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("reply", "code", "requests"),
    [
        (None, "not-found", 1),  # the server knows no such hub: ARM's 404
        (DROP, "network", 4),  # the connection drops: retried (retry_total 3), then given up
        (Reply(500, arm_error("InternalServerError", "oops")), "server-error", 4),
        (
            Reply(200, {"value": [{"name": "x", "properties": {"isVerified": True}}]}),
            "malformed-listing",
            1,
        ),
    ],
)
def test_other_unreadable_targets_are_recorded_with_their_code(
    app_runtime: handlers.Runtime,
    arm: ArmServer,
    reply: Reply | str | None,
    code: str,
    requests: int,
) -> None:
    old, _ = pair(6)
    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True)])))
    if reply is not None:
        arm.script(HUB_PATH, reply)
    result = pull_registrations(app_runtime.store, settings_for(HUB_ID, DPS_ID), NOW)
    hub, dps = result.outcomes
    assert hub.error is not None and hub.error[0] == code
    assert dps.error is None and dps.certificates == 1  # one bad target never stops another
    assert arm.count(HUB_PATH) == requests
    assert targets(app_runtime)[HUB]["error"]["code"] == code
    assert targets(app_runtime)[HUB]["seen_at"] is None  # never read: no snapshot


# --- the timer ---------------------------------------------------------------------------


@pytest.fixture
def timer_env(
    app_runtime: handlers.Runtime, live: StandIns, monkeypatch: pytest.MonkeyPatch
) -> Iterator[handlers.Runtime]:
    """The function app's runtime with REGISTRATION_TARGETS set (as the app settings do)."""
    monkeypatch.setenv("REGISTRATION_TARGETS", f"{HUB_ID},{DPS_ID}")
    monkeypatch.setenv("REGISTRATION_REFRESH", "6h")
    handlers.reset_runtime()
    yield handlers.runtime()
    handlers.use_clock(None)


def test_the_timer_pulls_at_most_every_refresh(timer_env: handlers.Runtime, arm: ArmServer) -> None:
    from shared.local.runner import registered_function

    timer = registered_function("send_alerts")
    old, new = pair(7)
    upload(timer_env, {"old.cer": old.der, "new.cer": new.der})
    process_pending(timer_env)
    arm.script(HUB_PATH, Reply(200, listing(HUB_ID, [("old", old, True), ("new", new, True)])))
    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True)])))

    def run_timer(at: datetime) -> dict[str, Any]:
        from azure.functions.timer import TimerRequest

        handlers.use_clock(lambda: at)
        timer(TimerRequest(past_due=False))
        assert handlers.last_alert_result is not None
        return handlers.last_alert_result

    first = run_timer(NOW)
    assert arm.count() == 2
    # The pass ran first, on no registration evidence at all; the pull after it: the DPS
    # lacks the renewal, so the next pass finds the tenant pending in the DPS.
    assert all(not i["registration"]["evidence"] for i in first["items"])
    second = run_timer(NOW + timedelta(hours=1))
    assert [i["registration"]["pending"] for i in second["items"]] == [[DPS]]
    # The DPS gets the renewal; within 6 h the timer asks ARM nothing.
    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True), ("new", new, True)])))
    run_timer(NOW + timedelta(hours=5, minutes=59))
    assert arm.count() == 2
    # At 6 h it reads again, and the evidence resolves the tenant.
    run_timer(NOW + timedelta(hours=6))
    assert arm.count() == 4
    assert plan(timer_env, timer_env.settings, NOW + timedelta(hours=6)) == []


def test_concurrent_timer_runs_claim_the_refresh_once(
    timer_env: handlers.Runtime,
) -> None:
    store, settings = timer_env.store, timer_env.settings
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def claim() -> None:
        barrier.wait()
        wins.append(claim_refresh(store, settings, NOW))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(wins) == [False] * 7 + [True]
    # Later runs race again for the next refresh: still exactly one.
    wins.clear()
    threads = [threading.Thread(target=claim) for _ in range(8)]
    barrier = threading.Barrier(8)
    later = NOW + timedelta(hours=6)

    def claim_later() -> None:
        barrier.wait()
        wins.append(claim_refresh(store, settings, later))

    threads = [threading.Thread(target=claim_later) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(wins) == [False] * 7 + [True]


def test_without_targets_the_timer_imports_no_management_sdk(
    app_runtime: handlers.Runtime, azurite: Any
) -> None:
    """Cold start: with REGISTRATION_TARGETS unset, a timer run loads neither the pull
    module nor an ARM SDK (a fresh interpreter, as the worker starts)."""
    script = """
import json, sys
from azure.functions.timer import TimerRequest
from shared.local.runner import registered_function
from shared.app import handlers
registered_function("send_alerts")(TimerRequest(past_due=False))
assert handlers.last_alert_result is not None
print(json.dumps(sorted(m for m in sys.modules
                        if m.startswith(("azure.mgmt", "shared.app.registration_pull")))))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRATION_")}
    env["CertStorage"] = azurite.connection_string
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# --- the CLI -----------------------------------------------------------------------------


def test_cli_pull_prints_json_and_exits_1_when_a_target_is_unreadable(
    timer_env: handlers.Runtime,
    arm: ArmServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, _ = pair(8)
    arm.script(HUB_PATH, Reply(200, listing(HUB_ID, [("old", old, True)])))
    arm.script(DPS_PATH, Reply(403, arm_error("AuthorizationFailed", "no Reader role")))

    code = cli_main(["registrations", "pull", "--now", "2020-08-10T09:00:00Z", "--json"])

    out = capsys.readouterr()
    assert code == 1, out.err
    document = json.loads(out.out)
    assert out.out == json.dumps(document, indent=2) + "\n"  # indented, one final newline
    assert document["schema"] == "ca-watch/registrations-pull/v1"
    assert document["now"] == "2020-08-10T09:00:00Z"
    states = {t["target"]: (t["status"], t["certificates"]) for t in document["targets"]}
    assert states == {HUB: ("ok", 1), DPS: ("error", None)}
    assert document["targets"][1]["error"]["code"] == "forbidden"
    # The pull is on record: a timer run within the refresh asks ARM nothing.
    assert not claim_refresh(timer_env.store, timer_env.settings, NOW + timedelta(hours=1))

    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True)])))
    assert cli_main(["registrations", "pull", "--now", "2020-08-10T10:00:00Z"]) == 0
    text = capsys.readouterr().out
    assert "2 target(s) read, 0 unreadable" in text and "Fleet-DPS (dps): 1 certificate(s)" in text


def test_cli_pull_without_now_records_the_utc_moment(
    timer_env: handlers.Runtime,
    arm: ArmServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`registrations pull` without --now, on a machine whose zone is nine hours from UTC:
    the moment recorded and analysed is UTC now, not the local wall clock."""
    old, _ = pair(9)
    arm.script(HUB_PATH, Reply(200, listing(HUB_ID, [("old", old, True)])))
    arm.script(DPS_PATH, Reply(200, listing(DPS_ID, [("old", old, True)])))
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        code = cli_main(["registrations", "pull", "--json"])
    finally:
        monkeypatch.delenv("TZ")  # the zone of the rest of the session is UTC
        time.tzset()
    out = capsys.readouterr()
    assert code == 0, out.err
    moment = datetime.fromisoformat(json.loads(out.out)["now"].replace("Z", "+00:00"))
    assert abs(moment - datetime.now(UTC)) < timedelta(minutes=2)


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({}, ["--now", "2020-08-10"], "REGISTRATION_TARGETS is not set"),
        ({"REGISTRATION_TARGETS": HUB_ID}, ["--now", "last tuesday"], "--now"),
        ({"REGISTRATION_TARGETS": "my-hub"}, [], "REGISTRATION_TARGETS: 'my-hub'"),
        (
            {"REGISTRATION_TARGETS": HUB_ID, "REGISTRATION_REFRESH": "often"},
            [],
            "REGISTRATION_REFRESH",
        ),
    ],
)
def test_cli_usage_errors_are_one_line_and_exit_2(
    app_runtime: handlers.Runtime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("REGISTRATION_TARGETS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    code = cli_main(["registrations", "pull", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
