"""Issue 14, item 2: a bound on the work per file, by algorithm, counted (signature checks,
key-derivation iterations, PEM scans) so that no test depends on the machine's speed.

Before: a PKCS#12 with 2^31-1 iterations never ended; 1,000 copies of one broken
self-signed certificate cost 69 s of signature checks; 58,222 BEGIN lines cost 28 s."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from analyzer_samples import rules
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from hostile_samples import (
    flipped,
    hostile_corpus,
    many_encrypted_safes,
    openssl_pkcs12,
    self_signed,
    signed_data,
    with_iterations,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.analysis import chain, pem, pkcs12_crypto
from shared.analysis.chain import MAX_SIGNATURE_CHECKS, VerifiesWith, key_identifiers
from shared.analysis.facts import extract_facts
from shared.analysis.pkcs12_crypto import MAX_ITERATIONS, MAX_TOTAL_ITERATIONS
from shared.analysis.reader import DEFAULT_MAX_UPLOAD_BYTES, ErrorCode, Status
from shared.analysis.scan import analyze_bytes
from shared.local import samples

needs_openssl = pytest.mark.usefixtures("openssl_command")  # fails under CI when missing


@dataclass
class Work:
    signature_checks: int = 0
    kdf_iterations: int = 0  # the largest total one file's budget reached
    pem_scans: int = 0
    files: list[str] = field(default_factory=list)


@contextlib.contextmanager
def counting() -> Iterator[Work]:
    """Counts the expensive steps at the one place each happens."""
    tally = Work()
    real_verify = chain._verify
    real_spend = pkcs12_crypto.WorkBudget.spend
    real_marker = pem._PEM_MARKER

    def verify(*args: object) -> bool | None:
        tally.signature_checks += 1
        return real_verify(*args)  # type: ignore[arg-type]

    def spend(self: pkcs12_crypto.WorkBudget, iterations: int, blocks: int = 1) -> None:
        real_spend(self, iterations, blocks)
        tally.kdf_iterations = max(tally.kdf_iterations, self.spent)

    class CountingMarker:
        def findall(self, text: bytes) -> list[tuple[bytes, bytes]]:
            tally.pem_scans += 1
            return real_marker.findall(text)

        def finditer(self, text: bytes) -> Iterator[object]:
            tally.pem_scans += 1
            return real_marker.finditer(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain, "_verify", verify)
        patch.setattr(pkcs12_crypto.WorkBudget, "spend", spend)
        patch.setattr(pem, "_PEM_MARKER", CountingMarker())
        yield tally


@pytest.fixture
def work() -> Iterator[Work]:
    with counting() as tally:
        yield tally


def _analyze(name: str, data: bytes) -> object:
    return analyze_bytes(name, data, rules())


# --- PKCS#12 iteration counts ------------------------------------------------------------
@needs_openssl
@pytest.mark.parametrize(
    ("mac", "bags"),
    [(2**31 - 1, None), (None, 2**31 - 1), (2**24, 2**24), (MAX_ITERATIONS + 1, None)],
)
def test_pkcs12_iterations_above_the_cap_are_refused_before_any_work(
    work: Work, mac: int | None, bags: int | None
) -> None:
    data = with_iterations(openssl_pkcs12([self_signed(0x51)]), mac, bags)
    result = _analyze("huge.p12", data)
    assert result.status is Status.REJECTED
    # Not read to its end, so not proven key-free: refused as key material.
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert "key-derivation iterations" in result.error.message
    assert "`openssl pkcs12" in result.error.message
    assert work.kdf_iterations == 0  # refused on sight, nothing derived


@needs_openssl
def test_pkcs12_at_the_cap_is_read(work: Work) -> None:
    """Old Java keytool's MAC default (100,000) is the largest count real tools write."""
    data = openssl_pkcs12([self_signed(0x52)], ("-iter", str(MAX_ITERATIONS)))
    result = _analyze("java.p12", data)
    assert result.status is Status.ANALYZED, result.error
    assert 2 * MAX_ITERATIONS <= work.kdf_iterations <= MAX_TOTAL_ITERATIONS


@needs_openssl
def test_pkcs12_total_iterations_are_capped(work: Work) -> None:
    """Many encrypted safes, each under the per-count cap, add up: refused at the total."""
    result = _analyze("many.p12", many_encrypted_safes(8, 90_000))
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert "in all" in result.error.message
    assert work.kdf_iterations <= MAX_TOTAL_ITERATIONS


# --- chain work --------------------------------------------------------------------------
def test_identical_certificates_are_checked_once(work: Work) -> None:
    cert = flipped(self_signed(0x60))
    result = _analyze("copies.pem", samples.pem(cert) * 1000)
    assert result.status is Status.ANALYZED and len(result.certificates) == 1000
    assert work.signature_checks == 1
    links = {c.chain for c in result.certificates}
    assert len(links) == 1 and next(iter(links)).verifies_with is VerifiesWith.NEITHER


def test_signature_checks_are_capped_and_the_rest_say_unchecked(work: Work) -> None:
    count = 40
    ders = [self_signed(0x2000 + i, key_seed=1 + i % 5, signer_seed=98) for i in range(count)]
    result = analyze_bytes(
        "distinct.p7b", signed_data(ders), rules()
    )  # every one names every other as a candidate issuer
    assert result.status is Status.ANALYZED and len(result.certificates) == count
    assert work.signature_checks <= MAX_SIGNATURE_CHECKS
    unchecked = [c for c in result.certificates if c.chain.verifies_with is VerifiesWith.UNCHECKED]
    # 40 certificates x 40 candidates = 1,600 pairs: most cannot be tried.
    assert unchecked and all(c.chain.reason and "limit" in c.chain.reason for c in unchecked)
    body = unchecked[0].to_json()["chain"]
    assert body["verifies_with"] == "unchecked" and body["reason"]


def test_a_real_chain_needs_few_checks(work: Work) -> None:
    from analyzer_samples import INSIDE, pca, tenant

    issued = tenant(INSIDE)
    device = samples.device_certificate(issued)
    result = _analyze("chain.pem", device.pem + issued.pem + pca().pem)
    assert [c.chain.verifies_with for c in result.certificates[:2]] == [VerifiesWith.BOTH] * 2
    assert work.signature_checks <= 3


# --- PEM ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        b"-----BEGIN X-----\n" * 58222,
        b"-----BEGIN X-----\n-----END Y-----\n" * 29000,
        b"-----BEGIN CERTIFICATE-----\n" + b"-----END X-----\n" * 60000,
    ],
)
def test_pem_markers_are_found_in_one_pass(work: Work, text: bytes) -> None:
    result = _analyze("begins.pem", text)
    assert result.status is Status.UNREADABLE
    assert work.pem_scans <= 2  # one findall, at most one finditer: never one per BEGIN


# --- the property ------------------------------------------------------------------------
_CERT = flipped(self_signed(0x70))


@functools.cache
def _pkcs12_template(legacy: bool) -> bytes:
    return openssl_pkcs12([_CERT], ("-legacy",) if legacy else ())


_SHAPES: dict[str, Callable[[int, int], bytes]] = {  # (count, iterations) -> file
    "pem-copies": lambda n, _: samples.pem(_CERT) * n,
    "pem-distinct": lambda n, _: b"".join(
        samples.pem(self_signed(0x3000 + i, 1 + i % 3, 97)) for i in range(min(n, 300))
    ),
    "pkcs7-distinct": lambda n, _: signed_data(
        [self_signed(0x4000 + i, 1 + i % 3, 97) for i in range(min(n, 300))]
    ),
    "pkcs7-pem-blocks": lambda n, _: samples.pem(signed_data([_CERT]), "PKCS7") * n,
    "begin-lines": lambda n, _: b"-----BEGIN X-----\n" * (n * 40),
    "begin-end-mix": lambda n, _: b"-----BEGIN A-----\nQUJD\n-----END B-----\n" * (n * 20),
    "ber-nesting": lambda n, _: b"\x30\x80" * (n * 350),
    "pkcs12-mac": lambda _, i: with_iterations(_pkcs12_template(False), mac=i),
    "pkcs12-bags": lambda _, i: with_iterations(_pkcs12_template(False), bags=i),
    "pkcs12-legacy-bags": lambda _, i: with_iterations(_pkcs12_template(True), bags=i),
}
# Cheap counts (read for real) and counts above the cap (refused on sight).
_ITERATIONS = st.one_of(st.integers(1, 3000), st.integers(MAX_ITERATIONS + 1, 2**31 - 1))


@needs_openssl
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    shape=st.sampled_from(sorted(_SHAPES)),
    count=st.integers(min_value=1, max_value=1500),
    iterations=_ITERATIONS,
    junk=st.binary(max_size=64),
)
def test_any_input_up_to_the_limit_costs_a_bounded_amount_of_work(
    shape: str, count: int, iterations: int, junk: bytes
) -> None:
    """Whatever the shape, size (up to MAX_UPLOAD_BYTES) and iteration counts: at most
    the per-file budgets of signature checks and KDF iterations, at most two PEM scans."""
    data = _SHAPES[shape](count, iterations)
    if not shape.startswith("pkcs12"):
        data += junk
    data = data[:DEFAULT_MAX_UPLOAD_BYTES]
    with counting() as tally:
        result = analyze_bytes("hostile", data, rules())
    assert result.status in (Status.ANALYZED, Status.UNREADABLE, Status.REJECTED)
    assert tally.signature_checks <= MAX_SIGNATURE_CHECKS
    assert tally.kdf_iterations <= MAX_TOTAL_ITERATIONS
    assert tally.pem_scans <= 2
    if shape.startswith("pkcs12") and iterations > MAX_ITERATIONS:
        assert result.error is not None
        assert result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL  # not proven key-free
        assert tally.kdf_iterations == 0


@needs_openssl
def test_the_hostile_corpus_stays_within_every_bound(work: Work) -> None:
    """The issue's files, shrunk (the full size runs in `make bench`)."""
    for name, make in hostile_corpus(scale=0.2).items():
        before = work.signature_checks
        result = _analyze(name, make())
        assert result.status in (Status.ANALYZED, Status.UNREADABLE, Status.REJECTED), name
        assert work.signature_checks - before <= MAX_SIGNATURE_CHECKS, name
    assert work.kdf_iterations <= MAX_TOTAL_ITERATIONS


def _issued_with_key_ids(
    subject: str, key_seed: int, issuer: tuple[str, int] | None = None
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A certificate with a subjectKeyIdentifier and, when issued, the issuer's key id."""
    key = ec.derive_private_key(0xC0FFEE + key_seed, ec.SECP256R1())
    signer = ec.derive_private_key(0xC0FFEE + issuer[1], ec.SECP256R1()) if issuer else key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else name
    )
    start = datetime(2020, 1, 1, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(key_seed)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    return builder.sign(signer, hashes.SHA256()).public_bytes(Encoding.DER), key


def test_candidate_issuers_are_tried_by_key_id_first() -> None:
    """Two issuers of one name (a renewed CA): the child's authority key id picks the
    right one first, so even a budget of one check gives the right answer."""
    old, _ = _issued_with_key_ids("Renewed CA", 1)
    new, _ = _issued_with_key_ids("Renewed CA", 2)
    child, _ = _issued_with_key_ids("device", 3, issuer=("Renewed CA", 2))
    facts = [extract_facts(der) for der in (child, old, new)]
    assert key_identifiers(child)[1] == key_identifiers(new)[0] != key_identifiers(old)[0]
    links = chain.chain_links(facts, max_checks=1 + 2)  # the child, then the two roots
    assert links[facts[0].sha256_fingerprint].verifies_with is VerifiesWith.BOTH
    assert links[facts[0].sha256_fingerprint].issuer_sha256 == facts[2].sha256_fingerprint
    # Without the hint, file order tries the old CA first: one check says only "unchecked".
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain, "key_identifiers", lambda der: (None, None))
        links = chain.chain_links(facts, max_checks=1)
    assert links[facts[0].sha256_fingerprint].verifies_with is VerifiesWith.UNCHECKED


def test_a_costlier_key_counts_for_more() -> None:
    def spki(key: object) -> bytes:
        return key.public_key().public_bytes(  # type: ignore[attr-defined]
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )

    assert chain.check_weight(spki(ec.derive_private_key(5, ec.SECP256R1()))) == 1
    assert chain.check_weight(spki(ec.derive_private_key(5, ec.SECP384R1()))) == 5
    assert chain.check_weight(spki(ec.derive_private_key(5, ec.SECP521R1()))) == 6
    assert chain.check_weight(spki(rsa.generate_private_key(65537, 2048))) == 1
    assert chain.check_weight(b"\x30\x00") == 1  # not a key: nothing to check
