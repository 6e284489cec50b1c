"""The outbox channel (the local default): one readable set of files per message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alert_samples import NOW, rendered

from shared.alerts.model import RenderedMessage
from shared.alerts.teams_card import teams_payload
from shared.channels import Channel, ChannelError, build_channels
from shared.channels.outbox import OutboxChannel
from shared.settings import Settings


def message(n: int = 1) -> RenderedMessage:
    return rendered(n, "CN=Microsoft Azure Sphere Zürich <b>")


def test_writes_one_readable_set_of_files_per_message(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"  # created on first send
    channel = OutboxChannel(outbox, clock=lambda: NOW)
    assert isinstance(channel, Channel)
    first, second = message(1), message(2)
    name1 = channel.send(first, ("ops@example.com",))
    name2 = channel.send(second, ())
    assert name1 and name2 and name1 != name2
    assert name1.startswith("20200804T090000000000Z-") and name1.endswith(".json")

    files = sorted(p.name for p in outbox.iterdir())
    assert len(files) == 6  # .json, .txt and .html for each; no temporary file left
    assert sorted(p.name for p in outbox.glob("*.json")) == sorted([name1, name2])

    record = json.loads((outbox / name1).read_text(encoding="utf-8"))
    assert record["schema"] == "ca-watch/outbox/v1"
    assert record["subject"] == first.subject
    assert record["recipients"] == ["ops@example.com"]
    assert record["text"] == first.text and record["html"] == first.html
    assert record["teams_payload"] == teams_payload(first.adaptive_card)
    assert record["item_count"] == 1 and record["omitted_count"] == 0
    assert "Zürich" in (outbox / name1).read_text(encoding="utf-8")  # UTF-8, not \u escapes

    stem = name1.removesuffix(".json")
    assert (outbox / f"{stem}.txt").read_text(encoding="utf-8").endswith(first.text)
    assert (outbox / f"{stem}.html").read_text(encoding="utf-8") == first.html


def test_a_failed_write_leaves_no_partial_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills up while the JSON (the last file) is being written.
    real_fsync = os.fsync
    calls = iter(range(100))

    def fsync(fd: int) -> None:
        if next(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(ChannelError, match="No space left") as caught:
        OutboxChannel(tmp_path).send(message(), ())
    assert caught.value.retryable is True
    assert list(tmp_path.iterdir()) == []  # neither the .txt/.html nor a temporary file


def test_outbox_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("not a directory")
    with pytest.raises(ChannelError, match="outbox"):
        OutboxChannel(tmp_path / "outbox").send(message(), ())


def test_temporary_files_are_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every final name appears through os.replace, never by writing in place.
    replaced: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str | os.PathLike[str]) -> None:
        assert Path(src).name.startswith(".") and Path(src).name.endswith(".tmp")
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    name = OutboxChannel(tmp_path).send(message(), ())
    assert replaced[-1] == name  # the JSON, which readers list, comes last
    assert sorted(replaced) == sorted(p.name for p in tmp_path.iterdir())


def test_build_channels_outbox_is_the_default(tmp_path: Path) -> None:
    channels = build_channels(Settings(alert_outbox_dir=str(tmp_path / "o")))
    assert list(channels) == ["outbox"]
    assert channels["outbox"].send(message(), ())


def test_channel_modules_load_only_when_chosen() -> None:
    # A fresh interpreter: the outbox default must not load requests or the Azure SDKs.
    code = (
        "import sys\n"
        "from shared.channels import build_channels\n"
        "from shared.settings import Settings\n"
        "build_channels(Settings())\n"
        "heavy = [m for m in ('requests', 'azure.communication.email', 'azure.identity',"
        " 'shared.channels.teams', 'shared.channels.acs_email') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
