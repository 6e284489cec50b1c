"""`make run` explains itself: the demo, run whole on its own Azurite, in a copy of the
project root (so it never wipes a developer's .azurite, .outbox or .sample)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from demo_root import project_copy, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = project_copy(tmp_path_factory.mktemp("demo-root"))
    done = run_demo(root, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout, root


def test_the_demo_says_alerts_go_out_as_one_digest_per_channel_and_run(
    demo: tuple[str, Path],
) -> None:
    out, root = demo
    assert "one digest per channel" in out
    assert "Stage 7d is the 7-day notice" in out and "actual days left" in out
    # The totals it states are the real ones (15 alerts in 8 messages when it was written):
    # the alerts its timeline lists, the messages the outbox holds.
    found = re.search(r"^(\d+) alerts went out in (\d+) messages", out, re.MULTILINE)
    assert found, out
    listed = sum(int(n) for n in re.findall(r"Z  (\d+) alert\(s\) sent", out))
    written = len(list((root / ".outbox" / "demo").glob("*.json")))
    assert (int(found[1]), int(found[2])) == (listed, written)
    assert listed > written  # several alerts share a digest


def test_the_timeline_shows_the_self_health_alert(demo: tuple[str, Path]) -> None:
    out, _root = demo
    first_run = out.split("2020-07-30 09:00Z", 1)[1].split("2020-08-04 09:00Z", 1)[0]
    assert "+ 1 operator alert(s), in 2 message(s)" in first_run
    assert "operator (self-health): 1 upload(s) failed analysis" in first_run


def test_the_demo_says_why_each_affected_tenant_ca_is_affected(demo: tuple[str, Path]) -> None:
    out, _root = demo
    why = [line for line in out.splitlines() if "is inside the window" in line]
    assert len(why) == 2
    assert any("mismatch: oid" in line for line in why)
    assert any("mismatch: parameters" in line for line in why)
    assert all("2020-06-16 21:00 .. 2020-07-28 00:15 UTC" in line for line in why)


def test_the_demo_outbox_has_a_recipient(demo: tuple[str, Path]) -> None:
    _out, root = demo
    records = [json.loads(p.read_text()) for p in (root / ".outbox" / "demo").glob("*.json")]
    assert records
    assert all(record["recipients"] == ["ops@example.com"] for record in records)


def test_the_demo_says_how_to_keep_exploring(demo: tuple[str, Path]) -> None:
    out, _root = demo
    assert "ca-watch azurite start" in out and "ca-watch report" in out
