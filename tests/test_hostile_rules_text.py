"""Rule texts are operators' words: a deadline title, message and actions written into a
rules file reach the e-mail, the Teams card and the outbox as text, escaped for each, and
run nothing in a browser. End to end: the rules file, an upload, the registered timer."""

from __future__ import annotations

import html
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import markupsafe
import pytest
from ci_support import require_command

from shared.alerts.rules import DEFAULT_RULES_PATH, clear_rules_cache
from shared.app import handlers
from shared.local import samples
from shared.local.runner import process_pending, registered_function

HOSTILE_TITLE = "<script>document.title='pwned'</script>Renewed CA activates"
HOSTILE_ACTION = "<img src=x onerror=\"document.title='pwned'\">[click](http://evil.example)"
HOSTILE_MESSAGE = "**bold** <b>tag</b> ${cardData}"


def hostile_rules(folder: Path) -> Path:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    text = text.replace(
        'title = "Renewed tenant CA available"', f"title = {json.dumps(HOSTILE_TITLE)}"
    )
    text = text.replace(
        'message = "Microsoft has created the renewed tenant CA certificate by 2020-08-05.',
        f"message = {json.dumps(HOSTILE_MESSAGE)[:-1]} Microsoft has created the renewed "
        "tenant CA certificate by 2020-08-05.",
    )
    first_action = text.index("actions = [\n") + len("actions = [\n")
    text = text[:first_action] + f"  {json.dumps(HOSTILE_ACTION)},\n" + text[first_action:]
    path = folder / "hostile-rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def hostile_alert(app_runtime, monkeypatch, tmp_path: Path) -> dict[str, str]:
    """The outbox files of one alert pass under the hostile rules: suffix -> text."""
    monkeypatch.setenv("RULES_FILE", str(hostile_rules(tmp_path)))
    clear_rules_cache()
    handlers.reset_runtime()
    rt = handlers.runtime()
    tenant = samples.tenant_ca(
        "bad0bad0-1111-4222-8333-944445555666", datetime(2020, 7, 1, tzinfo=UTC)
    )
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    container.upload_blob("tenant.cer", tenant.der)
    handlers.use_clock(lambda: datetime(2020, 7, 30, 9, tzinfo=UTC))
    process_pending(rt)
    handlers.use_clock(lambda: datetime(2020, 8, 4, 9, tzinfo=UTC))
    try:
        registered_function("send_alerts")(SimpleNamespace(past_due=False))
    finally:
        handlers.use_clock(None)
        clear_rules_cache()
    outbox = Path(rt.settings.alert_outbox_dir)
    files = {p.suffix: p.read_text(encoding="utf-8") for p in outbox.iterdir()}
    assert set(files) >= {".html", ".json", ".txt"}, sorted(outbox.iterdir())
    return files


def test_rule_texts_are_escaped_in_the_e_mail_html(hostile_alert) -> None:
    page = hostile_alert[".html"]
    assert "<script>document.title" not in page and "<img src=x" not in page
    assert "<b>tag</b>" not in page
    # Any correct escaping of the title (the e-mail template escapes quotes too, as &#39;).
    escaped = (html.escape(HOSTILE_TITLE, quote=False), html.escape(HOSTILE_TITLE))
    assert any(form in page for form in (*escaped, str(markupsafe.escape(HOSTILE_TITLE))))


def test_rule_texts_are_plain_text_in_the_card(hostile_alert) -> None:
    record = json.loads(hostile_alert[".json"])  # the outbox keeps the card as Teams gets it
    texts = card_texts(record["teams_payload"])
    # Adaptive Card TextBlocks render markdown: the link and emphasis syntax is escaped.
    assert not any("[click](http://evil.example)" in t or "**bold**" in t for t in texts)
    assert any(r"\[click\]\(http://evil\.example\)" in t for t in texts)


def card_texts(node: object) -> list[str]:
    if isinstance(node, dict):
        return [t for value in node.values() for t in card_texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in card_texts(value)]
    return [node] if isinstance(node, str) else []


def test_rule_texts_run_nothing_in_a_browser(hostile_alert, tmp_path: Path) -> None:
    page = tmp_path / "alert.html"
    page.write_text(hostile_alert[".html"], encoding="utf-8")
    chromium = require_command("chromium", "chromium-browser", install="apt-get install chromium")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    title = dom.split("<title>", 1)[-1].split("</title>", 1)[0]
    assert title != "pwned" and title.startswith("CA Rotation Watch")
    assert "<script>document.title" not in dom and '<img src="x"' not in dom
    assert "Renewed CA activates" in dom  # the text is there, as text
