"""The storage of analysed uploads, one part per table family (a thin facade the handlers
and the CLI hold; each part owns its table and its keys):

- ``uploads``       (``uploads``, ``uploadcerts``,
                     ``uploadfailures``)               shared.storage.uploads
- ``certificates``  (``certificates``, ``certsources``) shared.storage.certificates
- ``tenants``       (``tenantcas``)                    shared.storage.tenants
- ``index``, ``gate`` (``alertindex``)                 shared.storage.alert_index, .gate
- ``acks``          (``acks``)                         shared.storage.acks
- ``registrations`` (``regtargets``, ``thumbtenants``)  shared.storage.registrations
- the ledger        (``ledger``)                       shared.storage.ledger
- the report read model                                shared.storage.report
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from azure.data.tables import TableServiceClient

from shared.alerts.notice_message import Notice
from shared.alerts.rules import Rules
from shared.storage.acks import AckStore
from shared.storage.alert_index import AlertIndex
from shared.storage.certificates import CertificateStore
from shared.storage.gate import NextLookGate
from shared.storage.issuers import IssuerStore
from shared.storage.keys import iso
from shared.storage.notices import NoticeStore
from shared.storage.registrations import RegistrationStore
from shared.storage.report import build_report
from shared.storage.tables import TABLES, SelfCreatingTable, Tables
from shared.storage.tenants import TenantStore
from shared.storage.uploads import UploadStore

__all__ = ["TABLES", "TableStore"]


class TableStore:
    def __init__(self, service: TableServiceClient, rules: Rules, prefix: str = "") -> None:
        self.service = service  # the account's client (tests build a second store on it)
        self.tables = Tables(service, prefix)  # a prefix: tests' tables of their own
        self.gate = NextLookGate(self.tables)
        self.index = AlertIndex(self.tables, rules, self.gate)
        self.acks = AckStore(self.tables)
        self.registrations = RegistrationStore(self.tables)
        self.notices = NoticeStore(self.tables)
        self.issuers = IssuerStore(self.tables)
        self.tenants = TenantStore(
            self.tables,
            rules,
            self.index,
            self.acks,
            self.registrations,
            self.notices,
            self.issuers,
        )
        self.certificates = CertificateStore(self.tables, self.tenants)
        self.uploads = UploadStore(self.tables, self.certificates, self.tenants)

    def table(self, name: str) -> SelfCreatingTable:
        return self.tables(name)

    def ensure_tables(self) -> None:
        self.tables.ensure()

    def delete_all(self, tables: Iterable[str] = TABLES) -> None:
        """Drop the tables (tests and `make run` start clean)."""
        self.tables.drop(tables)

    def iter_rows(self, table: str) -> Iterator[dict[str, Any]]:
        return self.tables.rows(table)

    def acknowledge(
        self,
        tenant_id: str,
        sha256: str | None,
        by: str,
        note: str | None,
        now: datetime,
        until: datetime | None = None,
    ) -> list[str]:
        """Silence one tenant CA, or (sha256 None) every CA of the tenant on record now, and
        never one first seen later (DESIGN §4 rule 3). Announced; returns the SHA-256s."""
        if sha256 is None:
            shas = [c.sha256 for c in self.tenants.tenant_certificates(tenant_id)]
            scope = "tenant"
        else:
            shas, scope = [sha256], "certificate"
        done = self.acks.record(tenant_id, shas, by, note, now, until=until, scope=scope)
        for sha in done:
            self.notices.add(
                Notice(tenant_id, sha, "acknowledged", iso(now), now, by=by, until=until)
            )
        self.tenants.refresh_tenant(tenant_id, now)
        return done

    def withdraw_acknowledgement(
        self, tenant_id: str, sha256: str | None, by: str, now: datetime
    ) -> list[str]:
        """End acknowledgements now (of one CA, or every one of the tenant); announced."""
        gone = self.acks.withdraw(tenant_id, None if sha256 is None else [sha256])
        for key in gone:
            self.notices.add(Notice(tenant_id, key, "ack-withdrawn", iso(now), now, by=by))
        self.tenants.refresh_tenant(tenant_id, now)
        return gone

    def retire_certificate(
        self, tenant_id: str, sha256: str, by: str, note: str | None, now: datetime
    ) -> None:
        """Take a tenant CA out of the inventory (audited on its row, announced)."""
        self.tenants.retire(tenant_id, sha256, by, note, now)
        self.notices.add(Notice(tenant_id, sha256, "retired", iso(now), now, by=by))
        self.tenants.refresh_tenant(tenant_id, now)

    def report(self) -> dict[str, Any]:
        return build_report(
            self.tables,
            self.tenants,
            self.acks,
            self.certificates,
            self.uploads,
            self.registrations,
        )
