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

from shared.analysis.der import AlgorithmIdentifier
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


# Signature checks one file may cost (DESIGN §2: a bound on the work per file). One check
# costs 0.05-2 ms (P-256 to RSA-16384), so 256 stay well under a second, and a real chain
# file needs a handful. Past the cap a link says ``unchecked`` and why: never a guess.
MAX_SIGNATURE_CHECKS = 256
UNCHECKED_REASON = (
    f"not checked: the file needs more than {MAX_SIGNATURE_CHECKS} signature checks, "
    "the limit per file; upload the chain on its own to have it checked"
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


def chain_links(
    certificates: Sequence[CertificateFacts], max_checks: int = MAX_SIGNATURE_CHECKS
) -> dict[str, ChainLink]:
    """For each certificate whose issuer is in the same file: its link, by sha256.

    Identical certificates are one (keyed by fingerprint), candidate issuers are indexed
    by subject name (a certificate that names itself as issuer is tried first: the
    common self-signed root), each (certificate, issuer) pair is checked at most once,
    and at most ``max_checks`` signature checks run per file. A certificate whose
    candidates were not all tried when the limit is reached gets an ``unchecked`` link
    (unless one already verified)."""
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
        if facts.issuer == facts.subject and len(candidates) > 1:
            candidates = [facts, *(c for c in candidates if c is not facts)]
        for issuer in candidates:
            cost = checks_needed(facts)
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
