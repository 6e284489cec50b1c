"""The alert e-mail's HTML rendered by a real browser (headless Chromium): certificate
values carrying HTML and script must show as text and never run."""

from __future__ import annotations

import subprocess
from pathlib import Path

from alert_samples import rendered
from ci_support import require_command

HOSTILE = (
    "CN=Microsoft Azure Sphere <script>document.title='pwned'</script>"
    "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
)


def chromium() -> str:
    return require_command(
        "chromium", "chromium-browser", install="make test installs it when run as root"
    )


def dump_dom(html_file: Path, profile: Path) -> str:
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            html_file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_hostile_subject_shows_as_text_and_runs_nothing(tmp_path: Path) -> None:
    message = rendered(3, HOSTILE)
    page = tmp_path / "alert.html"
    page.write_text(message.html, encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")

    assert "pwned" not in dom.split("</title>")[0]  # no injected script ran
    assert "<script" not in dom.lower()  # no script element made it into the page
    assert "<img" not in dom.lower() and "<b>bold</b>" not in dom
    # The values are there, as text the operator can read.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert dom.count("Microsoft Azure Sphere") >= 3
