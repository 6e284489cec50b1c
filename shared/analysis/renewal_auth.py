"""Is a renewal authentic? (DESIGN §4 "Resolved", rule 2): a renewed tenant CA counts without
registration evidence only when its signature verifies under the key that signed the
current CA, as an issuer certificate on record shows (what `azsphere ca download-chain`
writes). Pure: DER in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache

from shared.analysis.chain import VerifiesWith, link_to_issuer
from shared.analysis.facts import CertificateError, CertificateFacts, extract_facts

_SIGNED = (VerifiesWith.BOTH, VerifiesWith.INNER, VerifiesWith.OUTER)


class RenewalCheck(StrEnum):
    AUTHENTICATED = "authenticated"  # verifies under an issuer that signed the current CA
    UNAUTHENTICATED = "unauthenticated"  # no issuer of the current CA is on record
    LOOK_ALIKE = "look-alike"  # self-signed, or signed by none of the current CA's issuers


@lru_cache(maxsize=1024)  # the same pairs are checked on every refresh of a tenant
def _facts(der: bytes) -> CertificateFacts | None:
    try:
        return extract_facts(der)
    except CertificateError:
        return None


@lru_cache(maxsize=4096)
def _signed_by(subject_der: bytes, issuer_der: bytes) -> bool:
    """Whether ``subject``'s signature verifies under ``issuer``'s key, with either of its
    algorithm identifiers: an affected CA carries mismatched ones and is still signed."""
    subject, issuer = _facts(subject_der), _facts(issuer_der)
    if subject is None or issuer is None:
        return False
    return link_to_issuer(subject, issuer).verifies_with in _SIGNED


def check_renewal(current: bytes, renewed: bytes, issuers: Sequence[bytes]) -> RenewalCheck:
    """Judge ``renewed`` (DER) as a replacement of ``current`` (DER), given the issuer
    certificates on record (DER)."""
    if _signed_by(renewed, renewed):
        return RenewalCheck.LOOK_ALIKE  # Microsoft never self-signs a tenant CA
    signers = [issuer for issuer in issuers if _signed_by(current, issuer)]
    if not signers:
        return RenewalCheck.UNAUTHENTICATED
    if any(_signed_by(renewed, issuer) for issuer in signers):
        return RenewalCheck.AUTHENTICATED
    renewed_facts = _facts(renewed)
    claimed = renewed_facts.issuer if renewed_facts else None
    if any((facts := _facts(issuer)) and facts.subject == claimed for issuer in signers):
        return RenewalCheck.LOOK_ALIKE  # names the current CA's issuer, not signed by it
    # Signed by some other issuer (a rotation to a new policy CA): not proven, not forged.
    return RenewalCheck.UNAUTHENTICATED
