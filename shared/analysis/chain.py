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

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
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


class VerifiesWith(StrEnum):
    BOTH = "both"  # inner and outer are the same algorithm and the signature holds
    INNER = "inner"  # only the algorithm inside the signed part gives a valid signature
    OUTER = "outer"
    NEITHER = "neither"
    UNSUPPORTED = "unsupported"  # an algorithm we cannot check (e.g. RSASSA-PSS)


@dataclass(frozen=True, slots=True)
class ChainLink:
    issuer_sha256: str
    verifies_with: VerifiesWith

    def to_json(self) -> dict[str, str]:
        return {"issuer": self.issuer_sha256, "verifies_with": str(self.verifies_with)}


def _verify(
    issuer: CertificateFacts, subject: CertificateFacts, alg: AlgorithmIdentifier
) -> bool | None:
    """True/False when checkable under ``alg``; None when the algorithm is not supported."""
    try:
        key = load_der_public_key(issuer.layout.spki)
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


def chain_links(certificates: Sequence[CertificateFacts]) -> dict[str, ChainLink]:
    """For each certificate whose issuer is in the same file: its link, by sha256."""
    by_subject: dict[str, list[CertificateFacts]] = {}
    for facts in certificates:
        by_subject.setdefault(facts.subject, []).append(facts)
    links: dict[str, ChainLink] = {}
    for facts in certificates:
        for issuer in by_subject.get(facts.issuer, ()):
            link = link_to_issuer(facts, issuer)
            links[facts.sha256_fingerprint] = link
            if link.verifies_with is not VerifiesWith.NEITHER:
                break  # several candidates (a renewed issuer): keep the one that verifies
    return links
