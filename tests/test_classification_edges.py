"""Edges of the classification that a one-line bug would slip past: the rotation actions of
a tenant CA, and basicConstraints read from what the certificate says (an explicit cA FALSE
is not a CA)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from shared.alerts.rules import load_rules
from shared.analysis.classify import Role, classify_certificate
from shared.analysis.facts import extract_facts
from shared.local import samples

RULES = load_rules()
TENANT = "d00dfeed-1111-4222-8333-944445555666"


def routine_tenant_ca() -> tuple[bytes, datetime]:
    """A tenant CA outside the 2020 window: (DER, its notAfter)."""
    issued = samples.tenant_ca(TENANT, not_before=datetime(2023, 3, 1, tzinfo=UTC))
    facts = extract_facts(issued.der)
    return issued.der, facts.not_after


def test_a_tenant_ca_in_its_rotation_window_gets_the_rotation_actions() -> None:
    der, not_after = routine_tenant_ca()
    assert RULES.rotation is not None and RULES.rotation.actions
    inside = classify_certificate(extract_facts(der), RULES, not_after - timedelta(days=60))
    assert inside.role is Role.TENANT_CA and str(inside.verdict) == "ok"
    assert inside.actions == RULES.rotation.actions
    assert any("Rotation under way; next:" in reason for reason in inside.reasons)


def test_a_tenant_ca_before_its_rotation_window_gets_no_actions() -> None:
    der, not_after = routine_tenant_ca()
    early = classify_certificate(extract_facts(der), RULES, not_after - timedelta(days=200))
    assert early.actions == ()
    assert not any("Rotation under way" in reason for reason in early.reasons)
    expired = classify_certificate(extract_facts(der), RULES, not_after + timedelta(days=1))
    assert any(reason.startswith("Expired on") for reason in expired.reasons)


def _with_basic_constraints(value: bytes) -> bytes:
    """A certificate named like a tenant CA whose basicConstraints extension holds exactly
    ``value`` (DER forbids an explicit cA FALSE, but BER encoders write one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Microsoft Corporation"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Microsoft Azure Sphere {TENANT}"),
        ]
    )
    start = datetime(2023, 3, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=730))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, value), critical=True
        )
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def test_an_explicit_ca_false_is_not_a_ca_and_not_a_tenant_ca() -> None:
    facts = extract_facts(_with_basic_constraints(bytes.fromhex("3003010100")))
    assert facts.is_ca is False
    # Not a tenant CA; named by a tenant CA's name as issuer, it reads as one it issued.
    role = classify_certificate(facts, RULES, datetime(2024, 1, 1, tzinfo=UTC)).role
    assert role is Role.VERIFICATION


def test_an_explicit_ca_true_is_a_tenant_ca() -> None:
    facts = extract_facts(_with_basic_constraints(bytes.fromhex("30030101ff")))
    assert facts.is_ca is True
    classification = classify_certificate(facts, RULES, datetime(2024, 1, 1, tzinfo=UTC))
    assert classification.role is Role.TENANT_CA and classification.tenant_id == TENANT


def test_an_empty_basic_constraints_is_not_a_ca() -> None:
    assert extract_facts(_with_basic_constraints(bytes.fromhex("3000"))).is_ca is False
