"""Azure Sphere catalogs, live: every tenant CA of each ``SPHERE_CATALOGS`` catalog with its
body (base64 DER), ``status`` (Active, Inactive, Expired, Revoked) and thumbprint, through
``azure-mgmt-sphere`` ``certificates.list_by_catalog`` (role *Azure Sphere Reader*; plain
Reader does not work), bounded as every reader is. ``az sphere ca-certificate list`` prints
the same objects.

The reader only reads; the pull (shared/app/registration_pull.py) records each CA as an
upload would (the same analysis) and its catalog status on its tenant CA row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from shared.analysis.listings import MAX_ENTRIES, ListingError, normalize_thumbprint
from shared.readers.base import MAX_PAGES, Budget, ReadOutcome, SphereCa, close_all, failed
from shared.readers.http import sdk_options
from shared.settings import Settings, SphereCatalog

KIND = "sphere-catalog"
SERVICE = "ARM"
STATUSES = ("Active", "Inactive", "Expired", "Revoked")


class SphereCatalogReader:
    kind = KIND

    def __init__(self, settings: Settings, credential: Any, budget: Budget) -> None:
        self._credential = credential
        self._budget = budget
        self._options = sdk_options(settings.arm_endpoint, budget, SERVICE)
        self._clients: dict[str, Any] = {}

    def read(self, catalog: SphereCatalog) -> ReadOutcome:
        try:
            cas = self.tenant_cas(catalog)
        except Exception as exc:  # every failure is the outcome: the pull goes on
            return failed(catalog.target, KIND, catalog.name, exc, SERVICE)
        return ReadOutcome(catalog.target, KIND, catalog.name, catalog=cas)

    def tenant_cas(self, catalog: SphereCatalog) -> tuple[SphereCa, ...]:
        client = self._client(catalog.subscription_id)
        pages = client.certificates.list_by_catalog(
            catalog.resource_group, catalog.name, cls=_require_value
        ).by_page()
        out: list[SphereCa] = []
        for n, page in enumerate(pages):
            if n >= MAX_PAGES:
                raise ListingError("malformed-listing", f"more than {MAX_PAGES} pages")
            out.extend(catalog_ca(item) for item in page)
            if len(out) > MAX_ENTRIES:
                raise ListingError("malformed-listing", f"more than {MAX_ENTRIES} certificates")
            self._budget.check()
        return tuple(out)

    def _client(self, subscription_id: str) -> Any:
        client = self._clients.get(subscription_id.lower())
        if client is None:
            from azure.mgmt.sphere import AzureSphereMgmtClient

            client = AzureSphereMgmtClient(self._credential, subscription_id, **self._options)
            self._clients[subscription_id.lower()] = client
        return client

    def close(self) -> None:
        close_all(self._clients.values())


def _require_value(items: Any) -> Any:
    """The SDK's page hook: ``{}``, ``{"value": null}`` or a 200 error body deserialise to
    no list; that is an answer we cannot read, never "no tenant CA"."""
    if items is None:
        raise ListingError("malformed-listing", 'the catalog answer has no "value" array')
    return items


def catalog_ca(item: Any) -> SphereCa:
    """One ``Certificate`` of the catalog: its DER body, which must match its thumbprint."""
    props = getattr(item, "properties", None)
    body = getattr(props, "certificate", None)
    status = getattr(props, "status", None)
    if not isinstance(body, str) or not body:
        raise ListingError("malformed-listing", "a catalog certificate has no body")
    if status not in STATUSES:
        raise ListingError("malformed-listing", "a catalog certificate has no known status")
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ListingError("malformed-listing", "a catalog certificate is not base64") from None
    if not der.startswith(b"\x30"):
        raise ListingError("malformed-listing", "a catalog certificate is not DER")
    thumbprint = getattr(props, "thumbprint", None)
    sha1 = hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
    if thumbprint is not None and normalize_thumbprint(thumbprint) != sha1:
        raise ListingError(
            "malformed-listing", "a catalog certificate's thumbprint is not its body's"
        )
    return SphereCa(der=der, status=status, name=str(getattr(item, "name", "") or ""))
