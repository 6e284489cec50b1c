"""An IoT Central API token instead of the app's identity (issue 22 §2): kept as a Key
Vault secret (`IOT_CENTRAL_API_TOKENS`), sent as the Authorization header, never shown, and
its own expiry (about a year) reminded daily by self-health from 30 days before."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from shared.app.self_health import _expiring_tokens
from shared.readers.base import Budget
from shared.readers.iot_central import IotCentralReader, token_expiry
from shared.settings import Settings, SettingsError
from shared.storage.connections import app_credential
from tests.arm_server import Reply
from tests.live_standins import StandIns, central_groups_path

APP = "fleet-app"
END = datetime(2021, 8, 1, tzinfo=UTC)
TOKEN = f"SharedAccessSignature sr=0a1b&sig=c2VjcmV0&skn=ca-watch&se={int(END.timestamp() * 1000)}"


def test_the_token_is_sent_as_it_is_instead_of_an_identity_token(world: StandIns) -> None:
    world.central.script(central_groups_path(APP), Reply(200, {"value": []}))
    settings = Settings.from_env(
        {**os.environ, "IOT_CENTRAL_APPS": APP, "IOT_CENTRAL_API_TOKENS": json.dumps({APP: TOKEN})}
    )
    IotCentralReader(settings, app_credential(), Budget(30)).read(APP)
    (seen, *_) = world.central.seen
    assert seen.authorization == TOKEN  # (the stand-in answers 401: it knows no API token)
    assert TOKEN not in repr(settings) and "c2VjcmV0" not in repr(settings)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (TOKEN, END),
        (TOKEN.replace(str(int(END.timestamp() * 1000)), str(int(END.timestamp()))), END),
        ("SharedAccessSignature sr=0a1b&sig=x&skn=y", None),
        ("SharedAccessSignature sr=0a1b&se=soon", None),
    ],
)
def test_token_expiry(token: str, expected: datetime | None) -> None:
    assert token_expiry(token) == expected


def test_a_value_that_is_no_json_object_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"IOT_CENTRAL_API_TOKENS": "sig=c2VjcmV0"})
    assert "c2VjcmV0" not in str(caught.value)


@pytest.mark.parametrize(
    ("now", "reminded"),
    [
        (END - timedelta(days=31), False),
        (END - timedelta(days=29), True),
        (END + timedelta(days=1), True),  # expired: the live read fails from now on
    ],
)
def test_self_health_reminds_of_a_token_ending_within_30_days(
    now: datetime, reminded: bool
) -> None:
    settings = Settings.from_env({"IOT_CENTRAL_API_TOKENS": json.dumps({APP: TOKEN})})
    problems = _expiring_tokens(SimpleNamespace(settings=settings, now=now))  # type: ignore[arg-type]
    assert bool(problems) is reminded
    if reminded:
        (problem,) = problems
        assert problem.id == f"iot-central-token/{APP}" and "2021-08-01" in problem.title
        assert "c2VjcmV0" not in problem.title + "".join(problem.lines)
