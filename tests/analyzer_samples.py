"""Shared inputs for the analyzer tests: the real public certificates and generated ones.

Not a test module (no ``test_`` prefix); the analyzer test modules import it. Everything
is deterministic (fixed keys from ``shared.local.samples``) so xdist workers agree.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from shared.alerts.rules import Rules, load_rules
from shared.local import samples

DATA = Path(__file__).parent / "data" / "azure-sphere-public"
GLOVEBOXES_DER = DATA / "gloveboxes-tenant-ca-9d7e79eb-2019.der"
AZPS_TENANT_PEM = DATA / "azps-tenant-ca-be51057e-2023.pem"
AZPS_POP_PEM = DATA / "azps-pop-be51057e-2023.pem"

NOW = datetime(2020, 8, 4, 9, 0, 0, tzinfo=UTC)
INSIDE = datetime(2020, 7, 1, 12, 0, 0, tzinfo=UTC)
OUTSIDE = datetime(2019, 4, 27, 7, 42, 26, tzinfo=UTC)
TENANT = "9d7e79eb-e021-43ce-9f2b-fa944b447494"
OPENSSL = shutil.which("openssl")


@cache
def rules() -> Rules:
    return load_rules()


@cache
def pca() -> samples.Issued:
    return samples.azure_sphere_pca()


@cache
def tenant(not_before: datetime = OUTSIDE, tenant_id: str = TENANT) -> samples.Issued:
    return samples.tenant_ca(tenant_id, not_before, issuer=pca(), serial=0x1234)


def der_to_pem(der: bytes) -> bytes:
    return samples.pem(der)


def certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def pem_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)
