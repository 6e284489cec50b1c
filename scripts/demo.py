"""`make run`: the local demo on Azurite.

Builds the sample set (the kit's real Azure Sphere certificates plus generated ones shaped
like the July 2020 incident), uploads it, runs the blob function on every upload, prints
the report, then replays the incident: the alert timer at each date of summer 2020, into
the outbox. Finally the renewed certificate is uploaded for one tenant and its alerts stop.
Everything goes through the `ca-watch` CLI and the registered functions of function_app.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.app import handlers  # noqa: E402
from shared.local import samples  # noqa: E402
from shared.local.azurite import Azurite  # noqa: E402
from shared.local.cli import main as ca_watch  # noqa: E402
from shared.local.runner import registered_function  # noqa: E402

REPLAY = [
    datetime(2020, 7, 30, 9, 0, tzinfo=UTC),
    datetime(2020, 8, 4, 9, 0, tzinfo=UTC),
    datetime(2020, 8, 5, 9, 0, tzinfo=UTC),
    datetime(2020, 8, 17, 9, 0, tzinfo=UTC),
    datetime(2020, 8, 18, 9, 0, tzinfo=UTC),
    datetime(2020, 8, 25, 9, 0, tzinfo=UTC),
]
AFTER_RENEWAL = datetime(2020, 9, 1, 9, 0, tzinfo=UTC)


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)))


def build_sample_tree(target: Path) -> int:
    shutil.rmtree(target, ignore_errors=True)
    real = ROOT / "tests" / "data" / "azure-sphere-public"
    files = {f"real/{p.name}": p.read_bytes() for p in real.iterdir() if p.suffix != ".md"}
    files.update(samples.incident_sample_files())
    for name, data in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return len(files)


def run_timer_at(moment: datetime) -> dict:
    """Invoke the registered timer function with the clock set to ``moment``."""
    handlers.use_clock(lambda: moment)
    try:
        registered_function("send_alerts")(SimpleNamespace(past_due=False))
    finally:
        handlers.use_clock(None)
    return handlers.last_alert_result or {"items": []}


def print_timeline_entry(moment: datetime, document: dict) -> None:
    sent = [
        item
        for item in document["items"]
        if any(status == "sent" for status in item["channels"].values())
    ]
    print(f"{moment:%Y-%m-%d %H:%M}Z  {len(sent)} alert(s) sent")
    for item in sent:
        deadline = item["deadline"].split("/")[-1]
        due = item["due"][:10]
        print(f"    tenant {item['tenant_id']}  {deadline:<18} stage {item['stage']:<8} due {due}")


def main() -> int:
    started = time.monotonic()
    os.chdir(ROOT)  # relative paths in what the demo prints
    azurite = Azurite(ROOT / ".azurite")
    azurite.wipe()  # the demo starts from empty storage every time
    outbox = ROOT / ".outbox" / "demo"
    shutil.rmtree(outbox, ignore_errors=True)
    azurite.start()
    os.environ.update(azurite.environment())
    os.environ.update({"ALERT_CHANNELS": "outbox", "ALERT_OUTBOX_DIR": str(outbox)})
    os.environ.pop("RULES_FILE", None)
    try:
        heading("1. Sample certificates")
        count = build_sample_tree(ROOT / ".sample")
        print(f"{count} files in .sample/: the kit's real certificates and generated ones "
              "shaped like the July 2020 incident")  # fmt: skip
        ca_watch(["scan", "--now", "2020-07-30T09:00:00Z", ".sample"])

        heading("2. Upload, process (blob function), report")
        ca_watch(["upload", "-q", ".sample"])
        ca_watch(["process", "--once", "--now", "2020-07-30T09:00:00Z"])
        ca_watch(["report"])

        heading("3. The incident replayed: the alert timer, summer 2020")
        for moment in REPLAY:
            print_timeline_entry(moment, run_timer_at(moment))
        again = run_timer_at(REPLAY[-1])
        resent = sum(1 for i in again["items"] if "sent" in i["channels"].values())
        print(f"(the {REPLAY[-1]:%Y-%m-%d} run again: {resent} sent)")

        heading("4. The renewed certificate is uploaded for one tenant")
        name, data = samples.renewed_tenant_file(samples.TENANT_OID)
        renewed = ROOT / ".sample" / name
        renewed.parent.mkdir(parents=True, exist_ok=True)
        renewed.write_bytes(data)
        ca_watch(["upload", "-q", "--prefix", str(Path(name).parent), str(renewed)])
        ca_watch(["process", "--once", "--now", "2020-08-26T09:00:00Z"])
        document = run_timer_at(AFTER_RENEWAL)
        print_timeline_entry(AFTER_RENEWAL, document)
        silenced = [i for i in document["items"] if i["tenant_id"] == samples.TENANT_OID]
        print(f"tenant {samples.TENANT_OID}: {len(silenced)} alert(s) after its renewal")
        written = len(list(outbox.glob("*.json")))
        print(f"\nMessages written: {written} in {outbox.relative_to(ROOT)}/ (.json, .txt, .html)")
        print(f"Done in {time.monotonic() - started:.1f} s.")
        return 0
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
