"""The live readers' world on loopback, reached by the UNMODIFIED app through settings
alone: ARM, the DPS data plane and IoT Central as HTTPS stand-ins (tests/arm_server.py,
one test CA for all three, trusted through ``REQUESTS_CA_BUNDLE``), and the App Service
managed identity endpoint (tests/identity_endpoint.py, the one fake: Entra ID cannot run
here) handing out tokens whose ``aud`` is the resource asked, which each stand-in checks.

Paths: ``DPS_ENDPOINT`` and ``IOT_CENTRAL_ENDPOINT`` carry a path prefix (``/dps/{name}``,
``/central/{name}``): on loopback the name cannot be a host name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.storage import connections
from tests.arm_server import ArmServer, Reply
from tests.identity_endpoint import IDENTITY_HEADER, IdentityEndpoint
from tests.tls_samples import make_tls_files

DPS_AUDIENCE = "https://azure-devices-provisioning.net"
CENTRAL_AUDIENCE = "https://apps.azureiotcentral.com"
DPS_API = "2021-10-01"
CENTRAL_API = "2022-07-31"


@dataclass
class StandIns:
    arm: ArmServer
    dps: ArmServer
    central: ArmServer
    identity: IdentityEndpoint
    ca_file: Path

    @property
    def env(self) -> dict[str, str]:
        """The app settings that point the app at the stand-ins."""
        return {
            "ARM_ENDPOINT": self.arm.base_url,
            "DPS_ENDPOINT": f"{self.dps.base_url}/dps/{{name}}",
            "IOT_CENTRAL_ENDPOINT": f"{self.central.base_url}/central/{{name}}",
            "IDENTITY_ENDPOINT": self.identity.url,
            "IDENTITY_HEADER": IDENTITY_HEADER,
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
        }


@contextmanager
def stand_ins(directory: Path) -> Iterator[StandIns]:
    tls = make_tls_files(directory)
    with ExitStack() as stack:
        arm = stack.enter_context(ArmServer(directory, tls=tls))
        arm.audience = arm.base_url  # ARM's scope is its endpoint's: "{ARM_ENDPOINT}/.default"
        dps = stack.enter_context(ArmServer(directory, tls=tls, audience=DPS_AUDIENCE))
        central = stack.enter_context(ArmServer(directory, tls=tls, audience=CENTRAL_AUDIENCE))
        identity = IdentityEndpoint()
        stack.callback(identity.close)
        yield StandIns(arm, dps, central, identity, tls[0])


@contextmanager
def app_settings_for(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIns]:
    """The stand-ins, and the settings that point the app at them (nothing else)."""
    with stand_ins(directory) as world:
        for name, value in world.env.items():
            monkeypatch.setenv(name, value)
        connections.shared_credential.cache_clear()  # the identity endpoint is new
        try:
            yield world
        finally:
            connections.shared_credential.cache_clear()


def dps_query_path(dps_name: str) -> str:
    return f"/dps/{dps_name}/enrollmentGroups/query"


def central_groups_path(app: str) -> str:
    return f"/central/{app}/api/enrollmentGroups"


def central_slot_path(app: str, group_id: str, slot: str) -> str:
    return f"/central/{app}/api/enrollmentGroups/{group_id}/certificates/{slot}"


def dps_pages(groups: list[dict[str, Any]], size: int) -> list[Reply]:
    """``groups`` as query pages of ``size``, chained by ``x-ms-continuation``."""
    chunks = [groups[i : i + size] for i in range(0, len(groups), size)] or [[]]
    replies = []
    for n, chunk in enumerate(chunks):
        more = n + 1 < len(chunks)
        headers = (("x-ms-continuation", f"token-{n + 1}"),) if more else ()
        replies.append(Reply(200, chunk, headers))
    return replies


def central_pages(base_url: str, app: str, groups: list[dict[str, Any]], size: int) -> list[Reply]:
    """``groups`` as ``{"value", "nextLink"}`` pages of ``size`` (nextLink on the same origin)."""
    chunks = [groups[i : i + size] for i in range(0, len(groups), size)] or [[]]
    replies = []
    for n, chunk in enumerate(chunks):
        body: dict[str, Any] = {"value": chunk}
        if n + 1 < len(chunks):
            body["nextLink"] = (
                f"{base_url}{central_groups_path(app)}?api-version={CENTRAL_API}&$skip={n + 1}"
            )
        replies.append(Reply(200, body))
    return replies
