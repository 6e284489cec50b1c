"""Shared fixtures: a real Azurite per test worker, and the app's runtime pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azurite_pool import borrow
from ci_support import require_command

from shared.app import handlers
from shared.local.azurite import Azurite

DATA = Path(__file__).parent / "data"
REAL_CERTS = DATA / "azure-sphere-public"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for this test worker (xdist workers each start their own), or one lent by
    `make mutation` (tests/azurite_pool.py)."""
    lent = borrow()
    if lent is not None:
        try:
            yield lent.server
        finally:
            lent.release()
        return
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.wipe()


@pytest.fixture
def app_runtime(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[handlers.Runtime]:
    """The function app's runtime on clean tables and fresh containers."""
    monkeypatch.setenv("CertStorage", azurite.connection_string)
    monkeypatch.setenv("CERT_CONTAINER", f"certs{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("RESULTS_CONTAINER", f"results{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("ALERT_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("RULES_FILE", raising=False)
    handlers.reset_runtime()
    handlers.use_clock(None)
    runtime = handlers.runtime()
    runtime.store.delete_all()
    runtime.store.ensure_tables()
    handlers.ensure_containers(runtime)
    yield runtime
    handlers.use_clock(None)
    handlers.reset_runtime()


@pytest.fixture(scope="session")
def openssl_command() -> str:
    """The openssl command (the differential and wrapper tests run it): a test that needs it
    fails under CI when it is missing, and skips elsewhere."""
    return require_command("openssl", install="apt-get install openssl")


@pytest.fixture
def world(
    app_runtime: handlers.Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The loopback HTTPS stand-ins for ARM, the DPS data plane, IoT Central and the
    identity endpoint, with the app's settings pointed at them (tests/live_standins.py)."""
    from tests.live_standins import app_settings_for

    with app_settings_for(tmp_path, monkeypatch) as standins:
        yield standins
    handlers.use_clock(None)
