"""Benchmark (issue 22): one live pull of 10 IoT hubs, 10 DPS (100 enrollment groups each,
two pages) and 10 IoT Central apps (10 X.509 groups each, both slots read) against the
loopback HTTPS stand-ins of the tests (tests/live_standins.py: ARM, DPS data plane, IoT
Central, a loopback identity endpoint), reached through settings alone, and the alert
pass after it at 100k alert-index rows (bench_alerts' set-up, 1% due).

Printed as ratios against the same alert pass with no targets configured:
- the pull (what the timer adds after its pass), and
- the pass after the pull (the recorded snapshots are read by every pass).

Run: ``.venv/bin/python scripts/bench_pull.py [ROWS]``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_alerts  # noqa: E402

# shared.readers is imported up front (not at the first pull, after minutes of set-up), so
# the figures come from the code as it was when the run began.
from shared.alerts.rules import load_rules  # noqa: E402
from shared.app.registration_pull import pull_registrations  # noqa: E402
from shared.local.azurite import Azurite  # noqa: E402
from shared.readers import arm_certificates, dps, iot_central, sphere  # noqa: E402, F401
from shared.settings import Settings  # noqa: E402
from shared.storage import connections  # noqa: E402
from shared.storage.connections import table_service  # noqa: E402
from shared.storage.store import TableStore  # noqa: E402
from tests import enrollment_samples  # noqa: E402
from tests.arm_server import Reply, certificate_entry, certificates_path  # noqa: E402
from tests.live_standins import (  # noqa: E402
    StandIns,
    central_groups_path,
    central_slot_path,
    dps_pages,
    dps_query_path,
    stand_ins,
)

ROWS = 100_000
HUBS = DPSES = APPS = 10
GROUPS_PER_DPS = 100
GROUPS_PER_APP = 10
CAS_PER_TARGET = 20
REPEATS = 3
SUB = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/Bench-RG"


def _thumbprints(size: int) -> list[str]:
    """The due tenant CAs' thumbprints (bench_alerts' certificates): listed verified."""
    every = round(1 / bench_alerts.DUE_FRACTION)
    return [bench_alerts._certificate(n, due=True).sha1_thumbprint for n in range(0, size, every)]


def _hub(n: int) -> str:
    return f"{SUB}/providers/Microsoft.Devices/IotHubs/bench-hub-{n}"


def _dps(n: int) -> str:
    return f"{SUB}/providers/Microsoft.Devices/provisioningServices/bench-dps-{n}"


def script(world: StandIns, thumbs: list[str]) -> dict[str, str]:
    """Every stand-in's answers for one pull; returns the settings naming the targets."""
    for n in range(HUBS):
        entries = [
            certificate_entry(_hub(n), f"ca-{k}", thumbs[(n + k) % len(thumbs)], True)
            for k in range(CAS_PER_TARGET)
        ]
        world.arm.script(certificates_path(_hub(n)), Reply(200, {"value": entries}))
    for n in range(DPSES):
        entries = [
            certificate_entry(_dps(n), f"ca-{k}", thumbs[(n + k) % len(thumbs)], True)
            for k in range(CAS_PER_TARGET)
        ]
        world.arm.script(certificates_path(_dps(n)), Reply(200, {"value": entries}))
        groups = [
            enrollment_samples.dps_ca_reference_group(
                f"group-{g}", f"ca-{g % CAS_PER_TARGET}", f"ca-{(g + 1) % CAS_PER_TARGET}"
            )
            for g in range(GROUPS_PER_DPS)
        ]
        world.dps.script(dps_query_path(f"bench-dps-{n}"), *dps_pages(groups, 50))
    for n in range(APPS):
        app = f"bench-app-{n}"
        groups = [enrollment_samples.central_group(f"group-{g}") for g in range(GROUPS_PER_APP)]
        world.central.script(central_groups_path(app), Reply(200, {"value": groups}))
        for g in range(GROUPS_PER_APP):
            for k, slot in enumerate(("primary", "secondary")):
                thumb = thumbs[(n + g + k) % len(thumbs)]
                world.central.script(
                    central_slot_path(app, f"group-{g}", slot),
                    Reply(200, enrollment_samples.central_slot(thumb)),
                )
    return {
        "REGISTRATION_TARGETS": ",".join(
            [_hub(n) for n in range(HUBS)] + [_dps(n) for n in range(DPSES)]
        ),
        "IOT_CENTRAL_APPS": ",".join(f"bench-app-{n}" for n in range(APPS)),
        "REGISTRATION_PULL_BUDGET": "10m",
    }


def run(rows: int = ROWS, repeats: int = REPEATS) -> dict[str, Any]:
    rules = load_rules()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    azurite = Azurite(workdir / "azurite").start()
    saved = dict(os.environ)
    try:
        service = table_service({"CertStorage": azurite.connection_string})
        store = TableStore(service, rules, prefix=f"p{rows}")
        store.ensure_tables()
        bench_alerts.populate(store, rows)
        no_targets = bench_alerts.measure(store, rows, workdir / "outbox-none")
        thumbs = _thumbprints(rows)
        with stand_ins(workdir) as world:
            os.environ.update(world.env)
            connections.shared_credential.cache_clear()
            pulls: list[float] = []
            requests = 0
            for r in range(repeats):
                env = script(world, thumbs)
                settings = Settings.from_env({**os.environ, **env})
                before = world.arm.count() + world.dps.count() + world.central.count()
                started = time.perf_counter()
                result = pull_registrations(store, settings, bench_alerts.NOW + timedelta(hours=r))
                pulls.append(time.perf_counter() - started)
                requests = world.arm.count() + world.dps.count() + world.central.count() - before
                failed = [o.to_json() for o in result.outcomes if o.error]
                assert not failed, failed
            after = bench_alerts.measure(store, rows, workdir / "outbox-after")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        connections.shared_credential.cache_clear()
        azurite.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    pull_s = statistics.median(pulls)
    return {
        "benchmark": "live pull and the alert pass after it",
        "rows": rows,
        "targets": {"hubs": HUBS, "dps": DPSES, "iot_central_apps": APPS},
        "groups": {"per_dps": GROUPS_PER_DPS, "per_app": GROUPS_PER_APP},
        "requests_per_pull": requests,
        "pull_s": pull_s,
        "pull_runs_s": pulls,
        "pass_no_targets_first_s": no_targets["first_pass_s"],
        "pass_no_targets_steady_s": no_targets["steady_pass_s"],
        "pass_after_pull_first_s": after["first_pass_s"],
        "pass_after_pull_steady_s": after["steady_pass_s"],
        "ratio_pull_to_pass": pull_s / no_targets["first_pass_s"],
        "ratio_timer_to_pass": (no_targets["first_pass_s"] + pull_s) / no_targets["first_pass_s"],
        "ratio_pass_after_pull_first": after["first_pass_s"] / no_targets["first_pass_s"],
        "ratio_pass_after_pull_steady": after["steady_pass_s"] / no_targets["steady_pass_s"],
    }


def print_summary(result: dict[str, Any]) -> None:
    rows = result["rows"]
    print(
        f"pull of {HUBS} hubs, {DPSES} DPS x {GROUPS_PER_DPS} groups, {APPS} IoT Central apps "
        f"({result['requests_per_pull']} requests): {result['pull_s'] * 1000:8.1f} ms "
        f"= x{result['ratio_pull_to_pass']:.2f} the alert pass with no targets "
        f"(timer pass + pull: x{result['ratio_timer_to_pass']:.2f})"
    )
    print(
        f"alert pass after it at {rows:,} rows: "
        f"first {result['pass_after_pull_first_s'] * 1000:8.1f} ms "
        f"(x{result['ratio_pass_after_pull_first']:.2f}), steady "
        f"{result['pass_after_pull_steady_s'] * 1000:8.1f} ms "
        f"(x{result['ratio_pass_after_pull_steady']:.2f}) vs the same pass with no targets"
    )


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    result = run(rows)
    print_summary(result)
    print(json.dumps(result, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
