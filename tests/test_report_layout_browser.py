"""The fleet report's layout in a real browser (issue 24 §4): in the demo's report and in a
1,000-tenant fleet, no two text boxes of the timeline overlap (getBoundingClientRect of
every SVG text node), no line or band of the timeline runs through a label, no word wraps
inside a table cell, and the page names no absolute path. scripts/screenshots.py checks
the same pages with the same functions before it refreshes docs/*.png."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ci_support import require_command
from fleet_samples import NOW, incident_fleet, synthetic_fleet

from shared.alerts.rules import load_rules
from shared.app import handlers
from shared.report.fleet import build_fleet
from shared.report.fleet_page import render_fleet_html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import screenshots

RULES = load_rules()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_command(
        "chromium", "chromium-browser", install="make test installs it when run as root"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, args=screenshots.CHROMIUM_ARGS
        )
        yield instance
        instance.close()


def layout_of(browser: Any, path: Path) -> dict[str, Any]:
    page = browser.new_page(viewport=screenshots.VIEWPORT)
    try:
        page.route("http://**/*", lambda route: route.abort())
        page.route("https://**/*", lambda route: route.abort())
        page.goto(path.as_uri())
        return screenshots.check_layout(page)
    finally:
        page.close()


def assert_clear(found: dict[str, Any]) -> None:
    assert found["texts"] > 5
    assert found["overlaps"] == []
    assert found["crossings"] == []
    assert found["broken_words"] == []


def test_the_demo_report_has_no_label_on_another(
    browser: Any, app_runtime: handlers.Runtime, tmp_path: Path
) -> None:
    report = tmp_path / "fleet.html"
    screenshots.run_demo_story(report)
    page = report.read_text(encoding="utf-8")
    assert "Rules: built-in rules." in page
    assert "/work/" not in page and str(Path.cwd()) not in page  # no absolute path
    assert_clear(layout_of(browser, report))


def test_a_thousand_tenants_have_no_label_on_another(browser: Any, tmp_path: Path) -> None:
    report = tmp_path / "big.html"
    report.write_text(render_fleet_html(build_fleet(synthetic_fleet(1000), RULES, NOW)))
    found = layout_of(browser, report)
    assert_clear(found)
    assert found["texts"] > 100  # 50 rows with a label and a stage each


def test_the_check_sees_an_overlap_and_a_line_through_a_label(browser: Any, tmp_path: Path) -> None:
    """The check itself: the old layout ran the today line from its own label down through
    every label below it; two labels at one place overlap."""
    page = render_fleet_html(build_fleet(incident_fleet(), RULES, NOW))
    broken = page.replace('y1="', 'y1="1" data-y1="').replace(
        "</svg>", '<text x="10" y="300">overlap</text><text x="12" y="301">me</text></svg>'
    )
    broken = broken.replace('<td class="nowrap">', '<td style="width:1px">', 1)
    report = tmp_path / "broken.html"
    report.write_text(broken)
    found = layout_of(browser, report)
    assert ["overlap", "me"] in found["overlaps"]
    assert found["crossings"]  # the lines now start at the top, through the header labels
