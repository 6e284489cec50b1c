"""Facts about one certificate (DESIGN §3): identity, names, validity, and both signature
AlgorithmIdentifiers compared byte for byte. Pure: bytes in, a frozen value out."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from shared.analysis.der import (
    AlgorithmIdentifier,
    CertificateLayout,
    DerError,
    parse_certificate,
    parse_name,
)

# Signature algorithms seen on IoT and web PKI certificates; anything else keeps its OID.
SIGNATURE_ALGORITHM_NAMES: dict[str, str] = {
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassa-pss",
    "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448",
}
PUBLIC_KEY_NAMES: dict[str, str] = {
    "1.2.840.10045.2.1": "ec",
    "1.2.840.113549.1.1.1": "rsa",
    "1.2.840.113549.1.1.10": "rsa-pss",
    "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448",
}
CURVE_NAMES: dict[bytes, str] = {
    bytes.fromhex("06082a8648ce3d030107"): "P-256",
    bytes.fromhex("06052b81040022"): "P-384",
    bytes.fromhex("06052b81040023"): "P-521",
}


class Mismatch(StrEnum):
    NONE = "none"
    OID = "oid"  # the two algorithms differ
    PARAMETERS = "parameters"  # same OID, parameters differ (e.g. NULL present vs absent)


_NO_MISMATCH = Mismatch.NONE  # a global: ~8x cheaper than the Enum lookup per certificate


class CertificateError(ValueError):
    """The bytes are not a certificate we can read; the message says why."""


class CertificateFacts(NamedTuple):
    """Immutable; a NamedTuple rather than a frozen dataclass because it is built once per
    certificate on the hot path, and a frozen dataclass's __init__ costs ~1 µs more."""

    der: bytes
    sha256_fingerprint: str
    sha1_thumbprint: str  # upper-case hex, as the Azure portal shows it
    subject: str
    issuer: str
    subject_cn: str | None
    subject_o: str | None
    issuer_cn: str | None
    issuer_o: str | None
    serial_number: str
    not_before: datetime
    not_after: datetime
    is_ca: bool
    outer_algorithm: AlgorithmIdentifier
    inner_algorithm: AlgorithmIdentifier
    mismatch: Mismatch
    public_key: str  # e.g. "ec P-384", "rsa"
    layout: CertificateLayout

    def signature_algorithm_json(self) -> dict[str, object]:
        return {
            "outer": algorithm_json(self.outer_algorithm),
            "inner": algorithm_json(self.inner_algorithm),
            "mismatch": str(self.mismatch),
        }


def algorithm_json(algorithm: AlgorithmIdentifier) -> dict[str, object]:
    return {
        "oid": algorithm.oid,
        "name": SIGNATURE_ALGORITHM_NAMES.get(algorithm.oid, algorithm.oid),
        "parameters": algorithm.parameters.hex() if algorithm.parameters is not None else None,
    }


@lru_cache(maxsize=64)  # a handful of key types exist; name each once
def public_key_name(spki_algorithm: AlgorithmIdentifier) -> str:
    curve = CURVE_NAMES.get(spki_algorithm.parameters or b"")
    key_name = PUBLIC_KEY_NAMES.get(spki_algorithm.oid, spki_algorithm.oid)
    return f"{key_name} {curve}" if curve else key_name


def compare_algorithms(outer: AlgorithmIdentifier, inner: AlgorithmIdentifier) -> Mismatch:
    if outer.der == inner.der:
        return Mismatch.NONE
    return Mismatch.OID if outer.oid != inner.oid else Mismatch.PARAMETERS


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def extract_facts(der: bytes) -> CertificateFacts:
    """All facts of one DER certificate. Raises CertificateError with a reason."""
    try:
        layout = parse_certificate(der)
        # Names in certificate order (C=US,…,CN=…) as openssl and Azure show them.
        subject = parse_name(der, layout.subject)
        issuer = parse_name(der, layout.issuer)
    except DerError as exc:
        raise CertificateError(f"malformed certificate: {exc}") from None
    # Everything comes from our own DER walk: cryptography refuses to load certificates
    # like the ones this product exists for (e.g. ECDSA with NULL parameters).
    serial = layout.serial_number
    outer, inner = layout.outer_algorithm, layout.inner_algorithm
    # Positional, in field order (names in the comments): keyword arguments cost a NamedTuple
    # ~0.5 µs more, and this runs once per certificate.
    return CertificateFacts(
        der,  # der
        hashlib.sha256(der).hexdigest(),  # sha256_fingerprint
        hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),  # sha1_thumbprint
        subject.text,  # subject
        issuer.text,  # issuer
        subject.common_name,  # subject_cn
        subject.organization,  # subject_o
        issuer.common_name,  # issuer_cn
        issuer.organization,  # issuer_o
        format(serial, "x"),  # serial_number: hex; format signs a negative one ("-c8")
        layout.not_before,  # not_before
        layout.not_after,  # not_after
        bool(layout.is_ca),  # is_ca
        outer,  # outer_algorithm
        inner,  # inner_algorithm
        # Identifiers are interned by the DER reader: equal bytes are the same object.
        _NO_MISMATCH if outer is inner else compare_algorithms(outer, inner),  # mismatch
        public_key_name(layout.spki_algorithm),  # public_key
        layout,  # layout
    )


def facts_json(facts: CertificateFacts) -> dict[str, object]:
    """The per-certificate fields of ``ca-watch/scan/v1`` that come from the certificate."""
    return {
        "sha256_fingerprint": facts.sha256_fingerprint,
        "sha1_thumbprint": facts.sha1_thumbprint,
        "subject": facts.subject,
        "issuer": facts.issuer,
        "serial_number": facts.serial_number,
        "not_before": _iso(facts.not_before),
        "not_after": _iso(facts.not_after),
        "is_ca": facts.is_ca,
        "public_key": facts.public_key,
        "signature_algorithm": facts.signature_algorithm_json(),
    }
