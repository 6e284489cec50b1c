"""Chain facts within one file: does each certificate's signature verify under its issuer's
key with the inner algorithm, the outer one, both, or neither?

No peer tool says this, and it is what tells an operator *why* OpenSSL refused a chain:
a certificate that verifies under its inner algorithm but carries a different outer one
was signed correctly and only mislabelled. Pure: certificate facts in, values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key

from shared.analysis.der import TAG_CONTEXT_3, AlgorithmIdentifier, DerError, children, read_tlv
from shared.analysis.facts import CertificateFacts

_ECDSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.10045.4.1": hashes.SHA1,
    "1.2.840.10045.4.3.1": hashes.SHA224,
    "1.2.840.10045.4.3.2": hashes.SHA256,
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
_RSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.113549.1.1.5": hashes.SHA1,
    "1.2.840.113549.1.1.14": hashes.SHA224,
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}

_EDDSA: dict[str, type] = {
    "1.3.101.112": ed25519.Ed25519PublicKey,
    "1.3.101.113": ed448.Ed448PublicKey,
}


# Signature work one file may cost (DESIGN §2: a bound on the work per file), counted in
# P-256 checks: a check under a costlier key counts for more (``check_weight``), so the
# bound holds whatever keys a hostile file picks. A P-256 check costs 0.1-0.3 ms here,
# so the whole budget stays well under a second, and a real chain file needs a handful.
# Past the budget a link says ``unchecked`` and why: never a guess.
MAX_SIGNATURE_CHECKS = 512
UNCHECKED_REASON = (
    "not checked: the file needs more signature checks than the limit per file "
    f"({MAX_SIGNATURE_CHECKS} P-256 equivalents); upload the chain on its own to have it checked"
)


class VerifiesWith(StrEnum):
    BOTH = "both"  # inner and outer are the same algorithm and the signature holds
    INNER = "inner"  # only the algorithm inside the signed part gives a valid signature
    OUTER = "outer"
    NEITHER = "neither"
    UNSUPPORTED = "unsupported"  # an algorithm we cannot check (e.g. RSASSA-PSS)
    UNCHECKED = "unchecked"  # the per-file limit of signature checks was reached


@dataclass(frozen=True, slots=True)
class ChainLink:
    issuer_sha256: str
    verifies_with: VerifiesWith
    reason: str | None = None  # why a link is unchecked

    def to_json(self) -> dict[str, str | None]:
        return {
            "issuer": self.issuer_sha256,
            "verifies_with": str(self.verifies_with),
            "reason": self.reason,
        }


def _verify(
    issuer: CertificateFacts, subject: CertificateFacts, alg: AlgorithmIdentifier
) -> bool | None:
    """True/False when checkable under ``alg``; None when the algorithm is not supported.
    The one place a signature is checked: the work bound counts calls here."""
    try:
        key = _public_key(issuer.layout.spki)
    except (ValueError, UnsupportedAlgorithm):
        return None
    signature, data = subject.layout.signature, subject.layout.tbs
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and alg.oid in _ECDSA_HASHES:
            key.verify(signature, data, ec.ECDSA(_ECDSA_HASHES[alg.oid]()))
        elif isinstance(key, rsa.RSAPublicKey) and alg.oid in _RSA_HASHES:
            key.verify(signature, data, padding.PKCS1v15(), _RSA_HASHES[alg.oid]())
        elif _EDDSA.get(alg.oid) is not None and isinstance(key, _EDDSA[alg.oid]):
            key.verify(signature, data)  # type: ignore[call-arg]
        else:
            return None
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=64)  # an issuer's key is loaded once for all the certificates it signed
def _public_key(spki: bytes) -> PublicKeyTypes:
    return load_der_public_key(spki)


def checks_needed(subject: CertificateFacts) -> int:
    """Signature checks one link costs: two when inner and outer name other algorithms."""
    return 1 if subject.inner_algorithm.oid == subject.outer_algorithm.oid else 2


# Measured cost of one verification relative to P-256 (OpenSSL 3.0 on this machine):
# P-384 ~5x, P-521 ~6x, Ed448 ~2x; RSA grows with the square of the modulus (4096 bits ~1x)
# and with the public exponent's length (OpenSSL allows up to 64 bits above 3072-bit keys).
_EC_WEIGHTS = {"secp256r1": 1, "secp384r1": 5, "secp521r1": 6}


@lru_cache(maxsize=64)
def check_weight(spki: bytes) -> int:
    """What one signature check under this key costs, in P-256 checks (at least 1)."""
    try:
        key = _public_key(spki)
    except (ValueError, UnsupportedAlgorithm):
        return 1  # not checkable: _verify returns at once
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_WEIGHTS.get(key.curve.name, 6)
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        blocks = -(-key.key_size // 4096)  # 4096-bit blocks, rounded up
        return blocks * blocks * max(1, -(-numbers.e.bit_length() // 17))
    if isinstance(key, ed448.Ed448PublicKey):
        return 2
    return 1


def link_to_issuer(subject: CertificateFacts, issuer: CertificateFacts) -> ChainLink:
    inner = _verify(issuer, subject, subject.inner_algorithm)
    same = subject.inner_algorithm.oid == subject.outer_algorithm.oid
    outer = inner if same else _verify(issuer, subject, subject.outer_algorithm)
    if inner is None and outer is None:
        verdict = VerifiesWith.UNSUPPORTED
    elif inner and outer:
        verdict = VerifiesWith.BOTH
    elif inner:
        verdict = VerifiesWith.INNER
    elif outer:
        verdict = VerifiesWith.OUTER
    else:
        verdict = VerifiesWith.NEITHER
    return ChainLink(issuer.sha256_fingerprint, verdict)


_OID_SUBJECT_KEY_ID = b"\x55\x1d\x0e"  # 2.5.29.14
_OID_AUTHORITY_KEY_ID = b"\x55\x1d\x23"  # 2.5.29.35


@lru_cache(maxsize=4096)
def key_identifiers(der: bytes) -> tuple[bytes | None, bytes | None]:
    """(subjectKeyIdentifier, authorityKeyIdentifier.keyIdentifier) when present. Read
    here, off the hot path: only files with several same-name candidates need them."""
    subject_key_id = authority_key_id = None
    try:
        cert = read_tlv(der, 0, len(der))
        for field in children(der, read_tlv(der, cert[1], cert[2])):
            if field[0] != TAG_CONTEXT_3:
                continue
            for ext in children(der, read_tlv(der, field[1], field[2])):
                parts = children(der, ext)
                oid, value = der[parts[0][1] : parts[0][2]], parts[-1]
                inner = read_tlv(der, value[1], value[2])
                if oid == _OID_SUBJECT_KEY_ID:
                    subject_key_id = der[inner[1] : inner[2]]
                elif oid == _OID_AUTHORITY_KEY_ID:
                    for item in children(der, inner):
                        if item[0] == 0x80:  # [0] keyIdentifier
                            authority_key_id = der[item[1] : item[2]]
    except (DerError, IndexError):
        pass  # the certificate parsed already; odd extensions only lose the hint
    return subject_key_id, authority_key_id


def _ordered(facts: CertificateFacts, candidates: list[CertificateFacts]) -> list[CertificateFacts]:
    """Likeliest issuers first: the one whose key id the certificate names, then the
    certificate itself when self-issued, then the rest (key ids are hints, not proof)."""
    authority_key_id = key_identifiers(facts.der)[1]

    def rank(candidate: CertificateFacts) -> int:
        if authority_key_id is not None:
            subject_key_id = key_identifiers(candidate.der)[0]
            if subject_key_id == authority_key_id:
                return 0
            if subject_key_id is not None:
                return 3  # names another key
        return 1 if candidate is facts else 2

    return sorted(candidates, key=rank)


def chain_links(
    certificates: Sequence[CertificateFacts], max_checks: int = MAX_SIGNATURE_CHECKS
) -> dict[str, ChainLink]:
    """For each certificate whose issuer is in the same file: its link, by sha256.

    Identical certificates are one (keyed by fingerprint); candidate issuers are indexed
    by subject name and tried likeliest first (``_ordered``: key ids, then self); each
    (certificate, issuer) pair is checked at most once; at most ``max_checks``
    P-256-equivalent signature checks run per file. A certificate whose candidates were
    not all tried when the limit is reached gets an ``unchecked`` link (unless one
    already verified)."""
    unique = {facts.sha256_fingerprint: facts for facts in certificates}
    by_subject: dict[str, list[CertificateFacts]] = {}
    for facts in unique.values():
        by_subject.setdefault(facts.subject, []).append(facts)
    links: dict[str, ChainLink] = {}
    checks_left = max_checks
    for sha256, facts in unique.items():
        candidates = by_subject.get(facts.issuer)
        if not candidates:
            continue
        if len(candidates) > 1:
            candidates = _ordered(facts, candidates)
        for issuer in candidates:
            cost = checks_needed(facts) * check_weight(issuer.layout.spki)
            if cost > checks_left:
                links[sha256] = ChainLink(
                    issuer.sha256_fingerprint, VerifiesWith.UNCHECKED, UNCHECKED_REASON
                )
                break
            checks_left -= cost
            link = link_to_issuer(facts, issuer)
            links[sha256] = link
            if link.verifies_with is not VerifiesWith.NEITHER:
                break  # several candidates (a renewed issuer): keep the one that verifies
    return links
