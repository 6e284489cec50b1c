"""The local channel: each message becomes files in ``ALERT_OUTBOX_DIR``.

``<stamp>-<id>.json`` holds everything (subject, recipients, text, HTML, the Teams
payload); ``.txt`` and ``.html`` beside it are for reading. Each file is written to a
temporary name and renamed, and the JSON goes last, so a reader that lists ``*.json``
never sees a half-written message.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from shared.alerts.model import RenderedMessage
from shared.alerts.teams_card import teams_payload
from shared.channels.base import ChannelError

OUTBOX_SCHEMA = "ca-watch/outbox/v1"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutboxChannel:
    name = "outbox"

    def __init__(
        self, directory: str | os.PathLike[str], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.directory = Path(directory)
        self._clock = clock or _utc_now

    def __repr__(self) -> str:
        return f"OutboxChannel({str(self.directory)!r})"

    def send(
        self,
        message: RenderedMessage,
        recipients: tuple[str, ...] = (),
        *,
        deadline: float | None = None,
    ) -> str | None:
        """Write the message; returns the JSON file's name (a local disk: no deadline)."""
        moment = self._clock()
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        stem = f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"
        record = {
            "schema": OUTBOX_SCHEMA,
            "id": stem,
            "written_at": moment.isoformat().replace("+00:00", "Z"),
            "subject": message.subject,
            "recipients": list(recipients),
            "item_count": message.item_count,
            "omitted_count": message.omitted_count,
            "text": message.text,
            "html": message.html,
            "teams_payload": teams_payload(message.adaptive_card),
        }
        header = f"Subject: {message.subject}\nTo: {', '.join(recipients)}\n\n"
        files = [
            (self.directory / f"{stem}.txt", (header + message.text).encode()),
            (self.directory / f"{stem}.html", message.html.encode()),
            (
                self.directory / f"{stem}.json",
                json.dumps(record, ensure_ascii=False, indent=2).encode(),
            ),
        ]
        written: list[Path] = []
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path, data in files:
                write_atomic(path, data)
                written.append(path)
        except OSError as exc:
            for path in written:  # all of a message or none of it
                path.unlink(missing_ok=True)
            # A full disk may clear; a missing permission will not, but costs little to retry.
            raise ChannelError(f"outbox {self.directory}: {exc}", retryable=True) from None
        return f"{stem}.json"
