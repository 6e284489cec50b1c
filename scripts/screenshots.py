"""Refresh docs/fleet-report.png and docs/alert-email.png: the demo's story on a private
Azurite (the 2020 incident's sample files and an IoT Hub listing, the alert timer on Aug 4
and Aug 18, the renewals: one registered and verified, one still to register), its fleet
report as of 2020-09-01 and the alert e-mail of Aug 18, each opened in headless Chromium
(Playwright driving Debian's chromium, never a downloaded browser). The fleet report is
checked first: no two text boxes of its timeline overlap and no line of the timeline runs
through a label (tests/test_report_layout_browser.py checks the same pages with the same
functions).

Run: ``.venv/bin/python scripts/screenshots.py`` (needs `npm ci` for Azurite and
`apt-get install chromium`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"
HUB = "/subscriptions/0000/resourceGroups/fleet-rg/providers/Microsoft.Devices/IotHubs/fleet-hub"
REPORT_AT = "2020-09-01T09:00:00Z"
TIMER_AT = (datetime(2020, 8, 4, 9, tzinfo=UTC), datetime(2020, 8, 18, 9, tzinfo=UTC))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}

# Every text box of the timeline against every other, and every vertical line or band
# against every text box: the pairs that touch (a 0.5 px tolerance for anti-aliasing).
OVERLAPS_JS = """() => {
  const svg = document.querySelector('svg.timeline');
  if (!svg) return {texts: 0, overlaps: [], crossings: []};
  const box = (el) => { const r = el.getBoundingClientRect();
    return {x0: r.left, x1: r.right, y0: r.top, y1: r.bottom, text: el.textContent.trim()}; };
  const hit = (a, b) => a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5
                     && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5;
  const texts = [...svg.querySelectorAll('text')].map(box).filter(b => b.text);
  const lines = [...svg.querySelectorAll('line.today, line.dl, line.ms, rect.band')].map(box);
  const overlaps = [], crossings = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (hit(texts[i], texts[j])) overlaps.push([texts[i].text, texts[j].text]);
    }
    for (const line of lines) {
      if (hit(texts[i], line)) crossings.push(texts[i].text);
    }
  }
  return {texts: texts.length, overlaps, crossings};
}"""

# Cells whose text wraps inside a word ("unreadabl/e"): one line box per word expected.
# Identifiers (hashes, blob names: class "mono") may break anywhere; they are not words.
BROKEN_WORDS_JS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest('.mono, code')) continue;
      const re = /[A-Za-z]{4,}/g; let m;
      while ((m = re.exec(node.data))) {
        const range = document.createRange();
        range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
}"""


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    return path


def run_demo_story(report: Path) -> None:
    """The demo's story through the CLI and the registered functions, on the storage the
    environment names (CertStorage); writes the fleet report to ``report``."""
    from demo import der_of, listing  # the demo's own listing maker (scripts/demo.py)

    from shared.app import handlers
    from shared.local import samples
    from shared.local.cli import main as ca_watch
    from shared.local.runner import registered_function

    rt = handlers.runtime()
    handlers.ensure_containers(rt)
    container = rt.blobs.get_container_client(rt.settings.cert_container)

    def upload(files: dict[str, bytes], now: str) -> None:
        for name, data in files.items():
            container.upload_blob(name, data, overwrite=True)
        ca_watch(["process", "--once", "-q", "--now", now])

    def timer(moment: datetime) -> None:
        handlers.use_clock(lambda: moment)
        try:
            registered_function("send_alerts")(SimpleNamespace(past_due=False))
        finally:
            handlers.use_clock(None)

    files = samples.incident_sample_files()
    current = {
        tenant: der_of(next(data for name, data in files.items() if tenant in name))
        for tenant in (samples.TENANT_OID, samples.TENANT_PARAMS)
    }
    renewed = {t: samples.renewed_tenant_file(t) for t in current}
    hub = "listings/fleet-hub.json"
    files[hub] = listing(HUB, [(f"ca-{t[-4:]}", der, True) for t, der in current.items()])
    upload(files, "2020-07-30T09:00:00Z")
    timer(TIMER_AT[0])
    upload(dict(renewed.values()), "2020-08-10T09:00:00Z")  # on record, not yet registered
    timer(TIMER_AT[1])
    # One tenant registers and verifies its renewal in the hub: it closes; the other waits.
    entries = [(f"ca-{t[-4:]}", der, True) for t, der in current.items()]
    entries.append(("ca-0001-renewed", renewed[samples.TENANT_OID][1], True))
    upload({hub: listing(HUB, entries)}, "2020-08-26T09:00:00Z")
    ca_watch(["report", "--html", str(report), "--now", REPORT_AT])


def check_layout(page: Any) -> dict[str, Any]:
    """What the browser laid out: text boxes that overlap, labels a line runs through,
    words broken inside a table cell."""
    found = page.evaluate(OVERLAPS_JS)
    found["broken_words"] = page.evaluate(BROKEN_WORDS_JS)
    return found


def main() -> int:
    from playwright.sync_api import sync_playwright

    from shared.app import handlers
    from shared.local.azurite import Azurite

    work = Path(tempfile.mkdtemp(prefix="ca-watch-screenshots-"))
    azurite = Azurite(work / "azurite").start()
    try:
        os.environ.update(azurite.environment())
        os.environ.update(
            {
                "ALERT_CHANNELS": "outbox",
                "ALERT_OUTBOX_DIR": str(work / "outbox"),
                "ALERT_EMAIL_TO": "ops@example.com",
            }
        )
        os.environ.pop("RULES_FILE", None)
        handlers.reset_runtime()
        report = work / "fleet.html"
        run_demo_story(report)
        emails = [  # the tenants' alerts, not the operator's
            path
            for path in sorted((work / "outbox").glob("*.html"))
            if "operator alert" not in path.read_text(encoding="utf-8")
        ]
        if not emails:
            raise SystemExit("the demo story sent no e-mail: nothing to photograph")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(report.as_uri())
            found = check_layout(page)
            if found["overlaps"] or found["crossings"] or found["broken_words"]:
                raise SystemExit(f"the fleet report's layout is broken: {found}")
            page.screenshot(path=str(DOCS / "fleet-report.png"), full_page=True)
            page.goto(emails[-1].as_uri())  # the Aug 18 pass: the activation is due
            page.screenshot(path=str(DOCS / "alert-email.png"), full_page=True)
            browser.close()
        print(f"wrote {DOCS / 'fleet-report.png'} and {DOCS / 'alert-email.png'}")
        print(f"timeline: {found['texts']} text boxes, none overlapping")
        return 0
    finally:
        azurite.stop()
        handlers.reset_runtime()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
