"""A DPS, live: its certificate list (ARM, shared/readers/arm_certificates.py) and its
enrollment groups (data plane), as ONE Listing, so resolution checks both clauses of
DESIGN §4 rule 1 against one moment of the DPS.

Groups: ``POST {DPS_ENDPOINT}/enrollmentGroups/query?api-version=2021-10-01`` with
``{"query": "SELECT *"}``, paged by the ``x-ms-continuation`` response header (sent back as a
request header), Entra scope ``https://azure-devices-provisioning.net/.default``, role
*Device Provisioning Service Data Reader*. The objects are parsed by the same pure
``dps_groups`` as an uploaded ``az iot dps enrollment-group list``.

Client: a small one on azure-core (shared/readers/http.py), not the
``azure-iot-deviceprovisioning`` 1.0.0b1 beta: that package has had no release since 2023,
and one POST with a continuation header needs nothing it adds; our client shares the
budget, origin guard and retry bounds of every other reader.

Either part failing fails the read: a certificate list without its groups would leave the
group clause unchecked (the very false all-clear issue 22 is about), so the last good
snapshot stays instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.analysis.enrollment_listings import dps_groups
from shared.analysis.listings import ListingError
from shared.readers.arm_certificates import ArmCertificateReader
from shared.readers.base import MAX_PAGES, Budget, ReadOutcome, failed
from shared.readers.http import DataPlaneClient, json_body
from shared.settings import RegistrationTarget, Settings

DPS_SCOPE = "https://azure-devices-provisioning.net/.default"
DPS_API_VERSION = "2021-10-01"
CONTINUATION = "x-ms-continuation"
PAGE_SIZE = "100"  # x-ms-max-item-count: the service's own page size is ~100 as well
SERVICE = "DPS"


def dps_endpoint(settings: Settings, name: str) -> str:
    return settings.dps_endpoint.replace("{name}", name)


class DpsReader:
    kind = "dps"

    def __init__(
        self, settings: Settings, credential: Any, budget: Budget, arm: ArmCertificateReader
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._budget = budget
        self._arm = arm

    def read(self, target: RegistrationTarget) -> ReadOutcome:
        service = "ARM"
        try:
            listing = self._arm.listing(target)
            service = SERVICE
            groups = self.groups(target)
        except Exception as exc:  # every failure is the outcome: the pull goes on
            return failed(target.target, target.kind, target.name, exc, service)
        listing = dataclasses.replace(listing, groups=groups)
        return ReadOutcome(target.target, target.kind, target.name, listing=listing)

    def groups(self, target: RegistrationTarget) -> tuple[Any, ...]:
        endpoint = dps_endpoint(self._settings, target.name)
        client = DataPlaneClient(endpoint, self._credential, DPS_SCOPE, self._budget, SERVICE)
        try:
            objects: list[Any] = []
            continuation: str | None = None
            url = f"{endpoint}/enrollmentGroups/query?api-version={DPS_API_VERSION}"
            for _ in range(MAX_PAGES):
                headers = {"x-ms-max-item-count": PAGE_SIZE}
                if continuation:
                    headers[CONTINUATION] = continuation
                response = client.send("POST", url, body={"query": "SELECT *"}, headers=headers)
                assert response is not None
                page = json_body(response, SERVICE)
                if not isinstance(page, list):
                    raise ListingError(
                        "malformed-listing", "the DPS group query did not answer an array"
                    )
                objects.extend(page)
                continuation = response.headers.get(CONTINUATION)
                if not continuation:
                    return dps_groups(objects)
            raise ListingError("malformed-listing", f"more than {MAX_PAGES} pages of groups")
        finally:
            client.close()
