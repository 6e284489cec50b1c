"""`make run`: the local demo on Azurite.

Builds the sample set (the kit's real Azure Sphere certificates plus generated ones shaped
like the July 2020 incident), uploads it, runs the blob function on every upload, prints
the report, then replays the incident: the alert timer at each date of summer 2020, into
the outbox. Then the renewed certificates are uploaded for two tenants with a fresh IoT
Hub listing: one tenant closes, the other stays open because its DPS lacks the renewed CA,
until a DPS listing shows it verified.
Everything goes through the `ca-watch` CLI and the registered functions of function_app.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.analysis.reader import read_certificates  # noqa: E402
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
DEMO_STORE = ".azurite-demo"  # never .azurite/, the store of `ca-watch azurite start`
AFTER_DPS = datetime(2020, 9, 2, 9, 0, tzinfo=UTC)
ARM = "/subscriptions/00000000-0000-4000-8000-00000000d3e0/resourceGroups/fleet-rg/providers"
HUB = f"{ARM}/Microsoft.Devices/IotHubs/fleet-hub"
DPS = f"{ARM}/Microsoft.Devices/provisioningServices/fleet-dps"
OLD_FILES = {
    samples.TENANT_OID: f"tenant-{samples.TENANT_OID}/CAcertificate.cer",
    samples.TENANT_PARAMS: f"tenant-{samples.TENANT_PARAMS}/ca.pem",
}


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)))


def build_sample_tree(target: Path) -> int:
    shutil.rmtree(target, ignore_errors=True)
    real = ROOT / "tests" / "data" / "azure-sphere-public"
    files = {f"real/{p.name}": p.read_bytes() for p in real.iterdir() if p.suffix != ".md"}
    files.update(samples.incident_sample_files())
    # Where the two affected tenants' CAs are trusted: both in the hub, one in a DPS too.
    old_oid, old_params = (der_of(files[OLD_FILES[t]]) for t in OLD_FILES)
    files["listings/fleet-hub.json"] = listing(
        HUB, [("tenant-oid", old_oid, True), ("tenant-params", old_params, True)]
    )
    files["listings/fleet-dps.json"] = listing(DPS, [("tenant-params", old_params, True)])
    for name, data in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return len(files)


def der_of(data: bytes) -> bytes:
    return read_certificates(data).certificates[0]


def listing(parent: str, entries: list[tuple[str, bytes, bool]]) -> bytes:
    """What `az iot hub|dps certificate list` prints, for these (name, DER, verified)."""
    value = []
    for name, der, verified in entries:
        thumbprint = hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
        kind = "IotHubs" if "/IotHubs/" in parent else "ProvisioningServices"
        value.append({
            "id": f"{parent}/certificates/{name}", "name": name,
            "type": f"Microsoft.Devices/{kind}/Certificates",
            "properties": {"thumbprint": thumbprint, "isVerified": verified,
                           "expiry": "Sat, 05 Aug 2022 00:00:00 GMT"},
        })  # fmt: skip
    return json.dumps({"value": value}, indent=2).encode()


def write(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run_timer_at(moment: datetime) -> dict:
    """Invoke the registered timer function with the clock set to ``moment``."""
    handlers.use_clock(lambda: moment)
    try:
        registered_function("send_alerts")(SimpleNamespace(past_due=False))
    finally:
        handlers.use_clock(None)
    return handlers.last_alert_result or {"items": []}


def print_timeline_entry(moment: datetime, document: dict) -> tuple[int, int]:
    """One run of the timer: its alerts, its operator (self-health) alerts and how many
    messages carried them. Returns (alerts sent, messages sent)."""
    sent = [
        item
        for item in document["items"]
        if any(status == "sent" for status in item["channels"].values())
    ]
    health = [p for p in document.get("self_health", []) if "sent" in p["channels"].values()]
    messages = sum(1 for m in document.get("messages", []) if not m["error"])
    print(
        f"{moment:%Y-%m-%d %H:%M}Z  {len(sent)} alert(s) sent"
        + (f" + {len(health)} operator alert(s)" if health else "")
        + f", in {messages} message(s)"
    )
    for item in sent:
        deadline = item["deadline"].split("/")[-1]
        due = item["due"][:10]
        print(f"    tenant {item['tenant_id']}  {deadline:<18} stage {item['stage']:<8} due {due}")
    for problem in health:
        print(f"    operator (self-health): {problem['summary']}")
    return len(sent), messages


def explain_affected(folder: Path) -> None:
    """Why each affected tenant CA is affected: its notBefore inside the incident window,
    and which signature AlgorithmIdentifier part differs."""
    from shared.alerts.rules import load_rules
    from shared.analysis.scan import analyze_bytes

    rules = load_rules()
    windows = {i.id: i for i in rules.incidents}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        result = analyze_bytes(str(path), path.read_bytes(), rules, REPLAY[0])
        for cert in result.certificates:
            incident = windows.get(cert.classification.incident_id or "")
            if str(cert.classification.verdict) != "affected" or incident is None:
                continue
            mismatch = str(cert.facts.mismatch)
            kind = {
                "oid": "the outer and inner signature algorithm OIDs differ",
                "parameters": "same OID, but the algorithm parameters differ (NULL on one side)",
            }.get(mismatch, "no mismatch, but Microsoft replaces every CA from the window")
            print(
                f"  tenant {cert.classification.tenant_id}: notBefore "
                f"{cert.facts.not_before:%Y-%m-%d %H:%M} is inside the window "
                f"{incident.window_start:%Y-%m-%d %H:%M} .. {incident.window_end:%Y-%m-%d %H:%M} "
                f"UTC; mismatch: {mismatch} ({kind})"
            )


def upload_dps_groups(folder: Path, certificates: bytes, secondary: str | None) -> None:
    """What `az iot dps enrollment-group list` and `az iot dps certificate list` print for
    fleet-dps, uploaded with `ca-watch upload --dps` (the envelope names the DPS)."""
    shutil.rmtree(folder, ignore_errors=True)
    group = {
        "enrollmentGroupId": "fleet-devices",
        "provisioningStatus": "enabled",
        "attestation": {
            "type": "x509",
            "x509": {"caReferences": {"primary": "tenant-params", "secondary": secondary}},
        },
        "etag": '"demo"',
    }
    groups = write(folder, "groups.json", json.dumps([group], indent=2).encode())
    certs = write(folder, "certificates.json", certificates)
    ca_watch(["upload", "-q", "--dps", DPS, str(groups), str(certs)])


def print_states(tenant: str) -> None:
    """Each CA of ``tenant`` with its state, as `ca-watch report --json` has it."""
    handlers.reset_runtime()
    for cert in handlers.runtime().store.report()["certificates"]:
        if cert["azure_sphere"] == {"role": "tenant-ca", "tenant_id": tenant}:
            check = cert.get("renewal_check") or "-"
            print(
                f"  {cert['sha1_thumbprint'][:12]}…  issued {cert['not_before'][:10]}  "
                f"state {cert.get('state', '-'):<10} renewal check: {check}"
            )


def print_notice(outbox: Path) -> None:
    """The newest resolution notice: which CA replaced which, on what evidence."""
    notices = [p for p in outbox.glob("*.txt") if ": notice:" in p.read_text(encoding="utf-8")]
    if not notices:
        print("(no resolution notice was written)")
        return
    newest = max(notices, key=lambda path: path.stat().st_mtime)
    print(f"\nThe resolution notice ({newest.relative_to(ROOT)}):")
    print(newest.read_text(encoding="utf-8").rstrip())


def main() -> int:
    started = time.monotonic()
    os.chdir(ROOT)  # relative paths in what the demo prints
    # Its own store: `ca-watch azurite start` keeps an operator's data in .azurite/.
    azurite = Azurite(ROOT / DEMO_STORE)
    azurite.wipe()  # the demo starts from empty storage every time
    outbox = ROOT / ".outbox" / "demo"
    shutil.rmtree(outbox, ignore_errors=True)
    azurite.start()
    os.environ.update(azurite.environment())
    os.environ.update(
        {
            "ALERT_CHANNELS": "outbox",
            "ALERT_OUTBOX_DIR": str(outbox),
            "ALERT_EMAIL_TO": "ops@example.com",  # the outbox stands in for the e-mail
        }
    )
    os.environ.pop("RULES_FILE", None)
    try:
        heading("1. Sample certificates")
        count = build_sample_tree(ROOT / ".sample")
        print(f"{count} files in .sample/: the kit's real certificates and generated ones "
              "shaped like the July 2020 incident")  # fmt: skip
        ca_watch(["scan", "--now", "2020-07-30T09:00:00Z", ".sample"])
        print("\nWhy the affected tenant CAs are affected:")
        explain_affected(ROOT / ".sample")

        heading("2. Upload, process (blob function), report")
        ca_watch(["upload", "-q", ".sample"])
        ca_watch(["process", "--once", "--now", "2020-07-30T09:00:00Z"])
        ca_watch(["report"])

        heading("3. The incident replayed: the alert timer, summer 2020")
        print(
            "Each run sends one digest per channel (here the outbox, to ops@example.com)\n"
            "listing every alert due. Stage 7d is the 7-day notice: it goes out once the\n"
            "deadline is 7 days or fewer away, and the message counts the actual days left.\n"
            "The daily operator alert (self-health) reports the upload that failed analysis.\n"
        )
        alerts = messages = 0
        for moment in REPLAY:
            sent, carried = print_timeline_entry(moment, run_timer_at(moment))
            alerts, messages = alerts + sent, messages + carried
        again = run_timer_at(REPLAY[-1])
        resent = sum(1 for i in again["items"] if "sent" in i["channels"].values())
        print(f"(the {REPLAY[-1]:%Y-%m-%d} run again: {resent} sent)")

        heading("4. Renewed CAs for two tenants, and the hub has both verified")
        sample = ROOT / ".sample"
        renewed = {t: samples.renewed_tenant_file(t) for t in OLD_FILES}
        old = {t: der_of((sample / OLD_FILES[t]).read_bytes()) for t in OLD_FILES}
        step4 = sample / "step4"
        shutil.rmtree(step4, ignore_errors=True)
        for name, data in renewed.values():
            write(step4, name, data)
        write(step4, "listings/fleet-hub.json", listing(HUB, [
            ("tenant-oid", old[samples.TENANT_OID], True),
            ("tenant-params", old[samples.TENANT_PARAMS], True),
            ("tenant-oid-2020-08", renewed[samples.TENANT_OID][1], True),
            ("tenant-params-2020-08", renewed[samples.TENANT_PARAMS][1], True),
        ]))  # fmt: skip
        ca_watch(["upload", "-q", "--replace", str(step4)])  # a newer listing, same name
        ca_watch(["process", "--once", "--now", "2020-08-26T09:00:00Z"])
        document = run_timer_at(AFTER_RENEWAL)
        sent, carried = print_timeline_entry(AFTER_RENEWAL, document)
        alerts, messages = alerts + sent, messages + carried
        for tenant in OLD_FILES:
            items = [i for i in document["items"] if i["tenant_id"] == tenant]
            pending = sorted({t for i in items for t in i["registration"]["pending"]})
            names = [p.rsplit("/", 1)[-1] for p in pending]
            print(f"tenant {tenant}: {len(items)} alert(s); pending in: {', '.join(names) or '-'}")
        alerts_only = [p for p in outbox.glob("*.txt") if ": notice:" not in p.read_text("utf-8")]
        newest = max(alerts_only, key=lambda path: path.stat().st_mtime)
        text = newest.read_text(encoding="utf-8")
        print(f"\nWhat the alert says ({newest.relative_to(ROOT)}):")
        print(text[text.rindex("    Registered in") :].rstrip())
        print_notice(outbox)

        heading("4b. A look-alike renewal is refused")
        print(
            "Anyone can make a certificate with a tenant's exact name. This one is self-signed;\n"
            "a renewal counts only when a target lists it verified, or its signature verifies\n"
            "under the key that signed the current CA (the chain `azsphere ca download-chain`\n"
            "writes).\n"
        )
        fake = samples.look_alike_tenant_ca(samples.TENANT_DEVICES)
        step4b = sample / "step4b"
        shutil.rmtree(step4b, ignore_errors=True)
        write(step4b, f"tenant-{samples.TENANT_DEVICES}/renewed-from-email.cer", fake.der)
        ca_watch(["upload", "-q", str(step4b)])
        ca_watch(["process", "--once", "--now", "2020-08-26T09:00:00Z"])
        print_states(samples.TENANT_DEVICES)

        heading("5. The DPS verified the renewed CA, but no enrollment group names it")
        print(
            "A DPS provisions a device only through an enabled enrollment group that names a\n"
            "CA in its chain. The renewed CA is uploaded and verified in fleet-dps, but the\n"
            "group `fleet-devices` still names only the old one: the tenant stays pending.\n"
        )
        dps_certs = listing(DPS, [
            ("tenant-params", old[samples.TENANT_PARAMS], True),
            ("tenant-params-2020-08", renewed[samples.TENANT_PARAMS][1], True),
        ])  # fmt: skip
        upload_dps_groups(sample / "step5", dps_certs, secondary=None)
        ca_watch(["process", "--once", "--now", "2020-09-01T12:00:00Z"])
        document = run_timer_at(AFTER_DPS)
        sent, carried = print_timeline_entry(AFTER_DPS, document)
        alerts, messages = alerts + sent, messages + carried
        alerts_only = [p for p in outbox.glob("*.txt") if ": notice:" not in p.read_text("utf-8")]
        newest = max(alerts_only, key=lambda path: path.stat().st_mtime)
        command = [
            line.strip()
            for line in newest.read_text(encoding="utf-8").splitlines()
            if "enrollment-group update" in line
        ]
        print(f"\nThe step the alert gives ({newest.relative_to(ROOT)}):")
        print("\n".join(f"    {line}" for line in command[:1]) or "    (none)")

        heading("5b. The group names the renewed CA as its secondary: resolved")
        upload_dps_groups(sample / "step5b", dps_certs, secondary="tenant-params-2020-08")
        ca_watch(["process", "--once", "--now", "2020-09-02T08:00:00Z"])
        document = run_timer_at(AFTER_DPS + timedelta(hours=1))
        sent, carried = print_timeline_entry(AFTER_DPS + timedelta(hours=1), document)
        alerts, messages = alerts + sent, messages + carried
        left = [i for i in document["items"] if i["tenant_id"] in OLD_FILES]
        print(f"renewed tenants: {len(left)} alert(s) left")
        print_notice(outbox)
        again = run_timer_at(AFTER_DPS + timedelta(hours=1))
        print(f"(the same run again: {len(again['messages'])} message(s))")
        written = len(list(outbox.glob("*.json")))
        print(
            f"\n{alerts} alerts went out in {messages} messages (one digest per channel and "
            f"run, the operator alert included).\nMessages written: {written} in "
            f"{outbox.relative_to(ROOT)}/ (.json, .txt, .html)"
        )

        heading("6. The fleet report")
        report = outbox / "fleet.html"
        ca_watch(["report", "--html", str(report), "--now", AFTER_RENEWAL.isoformat()])
        print(f"Done in {time.monotonic() - started:.1f} s.")
        print(
            f"\nTo keep exploring the demo data (kept in {DEMO_STORE}/):\n"
            f"  .venv/bin/ca-watch azurite start --location {DEMO_STORE}   # default ports\n"
            "  .venv/bin/ca-watch report\n"
            "  .venv/bin/ca-watch report --json          # ca-watch/report/v1\n"
            "  ls .outbox/demo/                           # the messages, as .txt, .html, .json\n"
            f"  .venv/bin/ca-watch azurite stop --location {DEMO_STORE}"
        )
        print(f"\nThe fleet report (open it in a browser): {report.relative_to(ROOT)}")
        return 0
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
