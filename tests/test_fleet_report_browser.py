"""The fleet report in a real browser: Playwright driving the system's Chromium (never a
downloaded one). The page renders with no console error and no network request, the
timeline is on screen with every tenant label clear of the next, hostile values show as
text and run nothing, and a 1,000-tenant fleet renders within 5 s from a file under 2 MB.
A screenshot of the demo report is kept in the test's output folder."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ci_support import require_command
from fleet_samples import HOSTILE, NOW, incident_fleet, synthetic_fleet

from shared.alerts.rules import load_rules
from shared.app import handlers
from shared.local import samples
from shared.local.cli import main as ca_watch
from shared.local.runner import registered_function
from shared.report.fleet import build_fleet
from shared.report.fleet_page import render_fleet_html

RULES = load_rules()
# Kept after the run for a person to look at (git-ignored; pytest's tmp folders are pruned).
OUTPUT = Path(__file__).resolve().parent.parent / ".outbox" / "test-output"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium() -> str:
    """The system's Chromium (Debian's package); Playwright never downloads a browser here."""
    return require_command(
        "chromium", "chromium-browser", install="make test installs it when run as root"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield instance
        instance.close()


class Visit:
    """One page opened from a file, with everything it logged or tried to fetch."""

    def __init__(self, browser: Any, path: Path, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def refuse(route: Any) -> None:
            route.abort()

        self.page.route("http://**/*", refuse)
        self.page.route("https://**/*", refuse)
        started = time.perf_counter()
        self.page.goto(path.as_uri(), wait_until="load")
        self.seconds = time.perf_counter() - started
        self.url = path.as_uri()

    def assert_clean(self) -> None:
        assert self.console == []
        assert self.requests == [self.url]  # the file itself, nothing else

    def close(self) -> None:
        self.context.close()


def write(tmp_path: Path, name: str, page: str) -> Path:
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    return path


def assert_timeline_readable(page: Any) -> None:
    svg = page.locator("svg.timeline")
    assert svg.is_visible()
    box = svg.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 50
    labels = page.locator("svg.timeline text.row-label")
    boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
    assert boxes and all(b and b["width"] > 0 and b["height"] > 0 for b in boxes)
    width = page.viewport_size["width"]
    for above, below in itertools.pairwise(boxes):
        assert above["y"] + above["height"] <= below["y"] + 0.5  # no overlap with the next
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= width for b in boxes)  # on screen


def _timer_at(moment: datetime) -> None:
    handlers.use_clock(lambda: moment)
    try:
        registered_function("send_alerts")(SimpleNamespace(past_due=False))
    finally:
        handlers.use_clock(None)


def test_demo_report_renders_cleanly_and_is_kept_as_a_screenshot(
    browser: Any, app_runtime: handlers.Runtime, tmp_path: Path
) -> None:
    """The demo's story on Azurite: upload, process, the timer in summer 2020, the renewal
    for one tenant, then ``report --html`` as of 2020-09-01."""
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    for name, data in samples.incident_sample_files().items():
        container.upload_blob(name, data)
    ca_watch(["process", "--once", "-q", "--now", "2020-07-30T09:00:00Z"])
    for moment in (datetime(2020, 8, 4, 9, tzinfo=UTC), datetime(2020, 8, 18, 9, tzinfo=UTC)):
        _timer_at(moment)
    name, data = samples.renewed_tenant_file(samples.TENANT_OID)
    container.upload_blob(name, data)
    # The chain that authenticates it (no target lists the old CA here: DESIGN §4 rule 2).
    container.upload_blob("chain/pca01.cer", samples.azure_sphere_pca().der)
    ca_watch(["process", "--once", "-q", "--now", "2020-08-26T09:00:00Z"])
    out = tmp_path / "fleet.html"
    ca_watch(["report", "--html", str(out), "--now", "2020-09-01T09:00:00Z"])

    visit = Visit(browser, out, viewport={"width": 1280, "height": 900})
    try:
        visit.assert_clean()
        assert_timeline_readable(visit.page)
        svg_text = visit.page.locator("svg.timeline").text_content() or ""
        for needle in (
            "incident window 2020-06-16",
            "2020-08-05",
            "2020-08-18",
            "today 2020-09-01",
        ):
            assert needle in svg_text
        states = dict(
            zip(
                visit.page.locator("#tenants tbody > tr > th").all_inner_texts(),
                visit.page.locator("#tenants tbody > tr > td.st").all_inner_texts(),
                strict=True,
            )
        )
        assert states[samples.TENANT_OID] == "✔ resolved"  # the renewal closed it
        assert states[samples.TENANT_PARAMS] == "⚠ affected"  # still pending
        assert visit.page.locator("svg.timeline > title").text_content()
        OUTPUT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, OUTPUT / "fleet-report.html")
        visit.page.screenshot(path=str(OUTPUT / "fleet-report.png"), full_page=True)
        visit.page.emulate_media(color_scheme="dark")
        visit.page.screenshot(path=str(OUTPUT / "fleet-report-dark.png"))
        print(f"screenshots of the demo report: {OUTPUT}")
    finally:
        visit.close()
    assert (OUTPUT / "fleet-report.png").stat().st_size > 10_000


def test_hostile_subject_and_blob_name_show_as_text_and_run_nothing(
    browser: Any, tmp_path: Path
) -> None:
    document = synthetic_fleet(12, hostile=HOSTILE)
    page = render_fleet_html(build_fleet(document, RULES, NOW))
    visit = Visit(browser, write(tmp_path, "hostile.html", page))
    try:
        visit.assert_clean()
        assert "pwned" not in visit.page.title()
        assert visit.page.locator("script, img, iframe, object, embed").count() == 0
        details = visit.page.locator("#tenants details").first
        details.locator("summary").click()
        shown = details.inner_text()
        assert f"L={HOSTILE}" in shown  # the subject, as text
        assert f"/{HOSTILE}CAcertificate.cer" in shown  # the blob name, as text
        failed = visit.page.locator("#failed").inner_text()
        assert f"junk/{HOSTILE}7.txt" in failed
        assert "pwned" not in visit.page.title()
    finally:
        visit.close()


def test_a_thousand_tenants_render_within_5_s_from_under_2_mb(browser: Any, tmp_path: Path) -> None:
    page = render_fleet_html(build_fleet(synthetic_fleet(1000), RULES, NOW))
    assert len(page.encode()) < 2_000_000
    visit = Visit(
        browser, write(tmp_path, "big.html", page), viewport={"width": 1280, "height": 900}
    )
    try:
        # The browser's own clock (navigation start to the load event): the parse, style
        # and layout of the page, not the test driver's round trips on a busy machine.
        loaded_ms = visit.page.evaluate(
            "() => performance.getEntriesByType('navigation')[0].loadEventEnd"
        )
        assert 0 < loaded_ms < 5000, f"{loaded_ms:.0f} ms to load ({visit.seconds:.1f} s wall)"
        visit.assert_clean()
        assert_timeline_readable(visit.page)
        assert visit.page.locator("svg.timeline text.row-label").count() == 50
        assert visit.page.locator("#tenants tbody > tr[id]").count() > 900
    finally:
        visit.close()


def test_print_and_dark_mode_keep_the_page_readable(browser: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path, "fleet.html", render_fleet_html(build_fleet(incident_fleet(), RULES, NOW))
    )
    visit = Visit(browser, path, color_scheme="dark")
    try:
        visit.assert_clean()
        colors = visit.page.evaluate(
            "() => [getComputedStyle(document.body).color,"
            " getComputedStyle(document.body).backgroundColor]"
        )
        assert colors == ["rgb(232, 232, 232)", "rgb(22, 24, 28)"]
        visit.page.emulate_media(media="print", color_scheme="dark")
        printed = visit.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert printed == "rgb(255, 255, 255)"
        assert_timeline_readable(visit.page)
    finally:
        visit.close()
