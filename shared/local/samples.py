"""Sample certificates shaped like the real Azure Sphere ones, for the demo, the tests and
the benchmarks: tenant CAs, device and verification certificates, and incident-shaped
certificates whose inner and outer signature AlgorithmIdentifiers differ.

The mismatches are made by editing the DER and signing the edited TBSCertificate again,
because no certificate builder will write a mismatch on purpose. Pure: no I/O.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from shared.analysis.der import TAG_SEQUENCE, children, element_bytes, expect, read_tlv

# AlgorithmIdentifier DER, as they appear in certificates.
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
ECDSA_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
ECDSA_SHA256_WITH_NULL = bytes.fromhex("300c06082a8648ce3d0403020500")

INCIDENT_START = datetime(2020, 6, 16, 21, 0, 0, tzinfo=UTC)
INCIDENT_END = datetime(2020, 7, 28, 0, 15, 0, tzinfo=UTC)


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


@dataclass(frozen=True)
class Issued:
    """A certificate and the key that certifies others under it."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)


def _name(*, cn: str, o: str | None = "Microsoft Corporation", full: bool = True) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]
    if full:
        attributes += [
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Washington"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Redmond"),
        ]
    if o is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


@lru_cache(maxsize=8)
def _key(seed: int) -> ec.EllipticCurvePrivateKey:
    # Keys are reused by seed: generating one per sample would dominate test time.
    return ec.derive_private_key(0x5EED0000 + seed, ec.SECP256R1())


def _build(
    subject: x509.Name,
    issuer: Issued | None,
    key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    not_after: datetime,
    *,
    ca: bool,
    serial: int | None = None,
) -> Issued:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), True
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def azure_sphere_pca(seed: int = 1) -> Issued:
    """A stand-in for ``Microsoft Azure Sphere PCA01`` (self-signed here)."""
    return _build(
        _name(cn="Microsoft Azure Sphere PCA01"),
        None,
        _key(seed),
        datetime(2018, 1, 1, tzinfo=UTC),
        datetime(2038, 1, 1, tzinfo=UTC),
        ca=True,
        serial=seed,
    )


def tenant_ca(
    tenant_id: str | None = None,
    not_before: datetime = datetime(2019, 4, 27, 7, 42, 26, tzinfo=UTC),
    *,
    issuer: Issued | None = None,
    lifetime: timedelta = timedelta(days=730, hours=3),
    key_seed: int = 2,
    organization: str = "Microsoft Corporation",
    serial: int | None = None,
) -> Issued:
    tenant_id = tenant_id or str(uuid.uuid4())
    return _build(
        _name(cn=f"Microsoft Azure Sphere {tenant_id}", o=organization),
        issuer or azure_sphere_pca(),
        _key(key_seed),
        not_before,
        not_before + lifetime,
        ca=True,
        serial=serial,
    )


def look_alike_tenant_ca(
    tenant_id: str, not_before: datetime = datetime(2020, 8, 5, tzinfo=UTC), key_seed: int = 99
) -> Issued:
    """A certificate with a tenant CA's exact name, self-signed: anyone can make one, and it
    must never count as the tenant's renewal (issue 21, the look-alike)."""
    return _build(
        _name(cn=f"Microsoft Azure Sphere {tenant_id}"),
        None,
        _key(key_seed),
        not_before,
        not_before + timedelta(days=730),
        ca=True,
    )


def device_certificate(tenant: Issued, device_id: str | None = None, key_seed: int = 3) -> Issued:
    device_id = device_id or (uuid.uuid4().hex * 4)
    start = tenant.certificate.not_valid_before_utc + timedelta(days=1)
    with warnings.catch_warnings():
        # Real device ids are 128 hex digits, over X.520's 64-character CN bound.
        warnings.simplefilter("ignore")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id, _validate=False)])
    return _build(
        name,
        tenant,
        _key(key_seed),
        start,
        start + timedelta(days=1),
        ca=False,
    )


def verification_certificate(
    tenant: Issued, code: str = "BFF18CC17D19D7E3B7884091981E0190F8E84181"
) -> Issued:
    start = tenant.certificate.not_valid_before_utc + timedelta(days=2)
    return _build(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code)]),
        tenant,
        _key(4),
        start,
        start + timedelta(hours=1, minutes=5),
        ca=False,
    )


def with_algorithms(
    certificate_der: bytes,
    signer: ec.EllipticCurvePrivateKey,
    *,
    inner: bytes | None = None,
    outer: bytes | None = None,
    sign_hash: hashes.HashAlgorithm | None = None,
) -> bytes:
    """The certificate with its inner and/or outer AlgorithmIdentifier replaced, the edited
    TBSCertificate signed again by ``signer`` (ECDSA with ``sign_hash``, SHA-256 default)."""
    cert = read_tlv(certificate_der, 0, len(certificate_der))
    tbs_tlv, outer_tlv, _bits = children(certificate_der, cert)
    fields = children(certificate_der, expect(tbs_tlv, TAG_SEQUENCE, "TBSCertificate"))
    index = 1 if fields[0][0] == 0xA0 else 0
    parts = [element_bytes(certificate_der, field) for field in fields]
    if inner is not None:
        parts[index + 1] = inner
    tbs = encode(TAG_SEQUENCE, b"".join(parts))
    outer_der = outer if outer is not None else element_bytes(certificate_der, outer_tlv)
    signature = signer.sign(tbs, ec.ECDSA(sign_hash or hashes.SHA256()))
    return encode(TAG_SEQUENCE, tbs + outer_der + encode(0x03, b"\x00" + signature))


# The four ways the 2020 certificates may have differed (DESIGN §1: detect both kinds,
# on either side). Each verifies under the algorithm that the signer really used.
MISMATCH_KINDS: dict[str, dict[str, bytes]] = {
    "oid-outer": {"outer": ECDSA_SHA384},  # signed SHA-256, labelled SHA-384 outside
    "oid-inner": {"inner": ECDSA_SHA384},  # signed SHA-256, labelled SHA-384 inside
    "null-outer": {"outer": ECDSA_SHA256_WITH_NULL},  # NULL parameters only outside
    "null-inner": {"inner": ECDSA_SHA256_WITH_NULL},  # NULL parameters only inside
}


def mismatched(issued: Issued, signer: Issued, kind: str) -> bytes:
    return with_algorithms(issued.der, signer.key, **MISMATCH_KINDS[kind])


def pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode("ascii")


# --- The demo's sample set (``make run``) -------------------------------------------
TENANT_OID = "a1b2c3d4-0000-4000-8000-000000000001"  # affected, OID mismatch
TENANT_PARAMS = "a1b2c3d4-0000-4000-8000-000000000002"  # affected, parameters mismatch
TENANT_DEVICES = "a1b2c3d4-0000-4000-8000-000000000003"  # fine, with a device chain


def incident_sample_files() -> dict[str, bytes]:
    """Generated files shaped like the 2020 incident, by blob name."""
    from cryptography.hazmat.primitives.serialization import pkcs7

    pca = azure_sphere_pca()
    affected_oid = tenant_ca(TENANT_OID, datetime(2020, 7, 1, 12, 0, tzinfo=UTC), key_seed=11)
    affected_params = tenant_ca(
        TENANT_PARAMS, datetime(2020, 7, 20, 8, 30, tzinfo=UTC), key_seed=12
    )
    fine = tenant_ca(TENANT_DEVICES, datetime(2020, 3, 2, 10, 0, tzinfo=UTC), key_seed=13)
    device = device_certificate(fine, key_seed=14)
    chain = pkcs7.serialize_certificates([fine.certificate, device.certificate], Encoding.DER)
    return {
        f"tenant-{TENANT_OID}/CAcertificate.cer": mismatched(affected_oid, pca, "oid-outer"),
        f"tenant-{TENANT_PARAMS}/ca.pem": pem(mismatched(affected_params, pca, "null-outer")),
        f"tenant-{TENANT_DEVICES}/CAcertificateChain.p7b": chain,
        "misc/notes.txt": b"These are not the certificates you are looking for.\n",
    }


def renewed_tenant_file(tenant_id: str = TENANT_OID) -> tuple[str, bytes]:
    """The renewed tenant CA Microsoft issued on 2020-08-05 (no mismatch)."""
    renewed = tenant_ca(tenant_id, datetime(2020, 8, 5, 0, 0, tzinfo=UTC), key_seed=21)
    return f"tenant-{tenant_id}/CAcertificate-renewed.cer", renewed.der
