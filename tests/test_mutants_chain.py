"""Chain links as `ca-watch scan` reports them ("verifies_with", DESIGN §2): RSA and EdDSA
issuers, algorithms only one side names or neither can check, a key the label does not
fit, the per-file budget of signature checks to the exact check, and which of several
same-name issuers is tried first. Kills mutants of chain.py that the golden corpus (P-256
only, small files) does not reach (issue 16). Equivalent survivors: tests/MUTANTS.md.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from shared.analysis.chain import UNCHECKED_REASON, ChainLink, VerifiesWith, chain_links
from shared.analysis.facts import CertificateFacts, extract_facts
from shared.local.samples import ECDSA_SHA256, encode, with_algorithms

_START = datetime(2020, 1, 1, tzinfo=UTC)
_RSA_SHA256 = bytes.fromhex("300d06092a864886f70d01010b0500")
_UNKNOWN = encode(0x30, encode(0x06, bytes.fromhex("2a0304")))  # 1.2.3.4

_Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: _Key,
    issuer: str | None = None,
    signer: _Key | None = None,
    *,
    key_ids: tuple[_Key | None, _Key | None] | None = None,
) -> bytes:
    """A certificate of ``subject`` for ``key``, signed by ``signer`` in the name of
    ``issuer`` (self-signed by default); ``key_ids``: (subject key, authority key) ids."""
    signer = signer or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer or subject))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(_START)
        .not_valid_after(_START + timedelta(days=30))
    )
    if key_ids is not None:
        own, authority = key_ids
        if own is not None:
            ski = x509.SubjectKeyIdentifier.from_public_key(own.public_key())
            builder = builder.add_extension(ski, False)
        if authority is not None:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.public_key())
            builder = builder.add_extension(aki, False)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm).public_bytes(Encoding.DER)


@functools.cache
def _ec(seed: int, curve: type[ec.EllipticCurve] = ec.SECP256R1) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0xC4A1 + seed, curve())


@functools.cache
def _rsa(number: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def _links(*ders: bytes, max_checks: int = 512) -> tuple[list[CertificateFacts], list[ChainLink]]:
    facts = [extract_facts(der) for der in ders]
    links = chain_links(facts, max_checks)
    return facts, [links.get(f.sha256_fingerprint) for f in facts]  # type: ignore[misc]


def _verdicts(*ders: bytes, max_checks: int = 512) -> list[VerifiesWith | None]:
    return [
        link.verifies_with if link else None for link in _links(*ders, max_checks=max_checks)[1]
    ]


# --- what verifies under which algorithm ---------------------------------------------
def test_rsa_and_ed25519_issuers_are_checked() -> None:
    rsa_root = _issue("RSA Root", _rsa())
    rsa_child = _issue("RSA child", _ec(1), "RSA Root", _rsa())
    assert _verdicts(rsa_child, rsa_root) == [VerifiesWith.BOTH, VerifiesWith.BOTH]
    ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    ed_root = _issue("Ed Root", ed_key)
    ed_child = _issue("Ed child", _ec(2), "Ed Root", ed_key)
    assert _verdicts(ed_child, ed_root) == [VerifiesWith.BOTH, VerifiesWith.BOTH]


def test_a_signature_that_does_not_hold_under_an_rsa_key_verifies_with_neither() -> None:
    rsa_root = _issue("RSA Root", _rsa())
    impostor = _issue("RSA child", _ec(1), "RSA Root", _rsa(1))
    assert _verdicts(impostor, rsa_root)[0] is VerifiesWith.NEITHER


def test_a_label_that_does_not_fit_the_issuer_key_cannot_be_checked() -> None:
    """An ECDSA signature labelled RSA (inside and out) under an EC key, and an RSA-signed
    certificate labelled ECDSA under an RSA key: nothing to check, never an error."""
    root = _issue("Root", _ec(1))
    child = _issue("child", _ec(2), "Root", _ec(1))
    labelled_rsa = with_algorithms(child, _ec(1), inner=_RSA_SHA256, outer=_RSA_SHA256)
    assert _verdicts(labelled_rsa, root)[0] is VerifiesWith.UNSUPPORTED
    rsa_root = _issue("RSA Root", _rsa())
    rsa_child = _issue("RSA child", _ec(3), "RSA Root", _rsa())
    body = extract_facts(rsa_child)
    facts = body._replace(
        inner_algorithm=extract_facts(child).inner_algorithm,
        outer_algorithm=extract_facts(child).outer_algorithm,
    )
    links = chain_links([facts, extract_facts(rsa_root)])
    assert links[facts.sha256_fingerprint].verifies_with is VerifiesWith.UNSUPPORTED


def test_only_the_algorithm_that_can_be_checked_decides() -> None:
    root = _issue("Root", _ec(1))
    child = _issue("child", _ec(2), "Root", _ec(1))
    inner_unknown = with_algorithms(child, _ec(1), inner=_UNKNOWN, outer=ECDSA_SHA256)
    outer_unknown = with_algorithms(child, _ec(1), inner=ECDSA_SHA256, outer=_UNKNOWN)
    both_unknown = with_algorithms(child, _ec(1), inner=_UNKNOWN, outer=_UNKNOWN)
    assert _verdicts(inner_unknown, root)[0] is VerifiesWith.OUTER
    assert _verdicts(outer_unknown, root)[0] is VerifiesWith.INNER
    facts, links = _links(both_unknown, root)
    assert links[0] == ChainLink(facts[1].sha256_fingerprint, VerifiesWith.UNSUPPORTED)
    assert links[0].to_json() == {
        "issuer": facts[1].sha256_fingerprint,
        "verifies_with": "unsupported",
        "reason": None,
    }


# --- the budget of signature checks per file ---------------------------------------------
def test_the_budget_counts_one_check_per_algorithm_and_more_for_costlier_keys() -> None:
    root = _issue("Root", _ec(1))
    child = _issue("child", _ec(2), "Root", _ec(1))
    both = [VerifiesWith.BOTH, VerifiesWith.BOTH]
    # One algorithm: one check a link; the budget is spent to the last check.
    assert _verdicts(child, root, max_checks=2) == both
    assert _verdicts(child, root, max_checks=1) == [VerifiesWith.BOTH, VerifiesWith.UNCHECKED]
    # Inner and outer differ: two checks for that link.
    relabelled = with_algorithms(child, _ec(1), outer=bytes.fromhex("300a06082a8648ce3d040303"))
    assert _verdicts(relabelled, root, max_checks=3) == [VerifiesWith.INNER, VerifiesWith.BOTH]
    assert _verdicts(relabelled, root, max_checks=2) == [
        VerifiesWith.INNER,
        VerifiesWith.UNCHECKED,
    ]
    # A P-384 check counts as five P-256 checks.
    big = _ec(3, ec.SECP384R1)
    big_root = _issue("Big Root", big)
    big_child = _issue("big child", _ec(4), "Big Root", big)
    assert _verdicts(big_child, big_root, max_checks=10) == both
    assert _verdicts(big_child, big_root, max_checks=6) == [
        VerifiesWith.BOTH,
        VerifiesWith.UNCHECKED,
    ]
    assert _verdicts(big_child, max_checks=4) == [None]  # its issuer is not in the file


def test_an_unchecked_link_names_its_issuer_and_the_rest_of_the_file_is_still_checked() -> None:
    big = _ec(3, ec.SECP384R1)
    big_root = _issue("Big Root", big)
    big_child = _issue("big child", _ec(4), "Big Root", big)
    root = _issue("Root", _ec(1))
    facts, links = _links(big_child, root, big_root, max_checks=4)
    assert links[0] == ChainLink(
        facts[2].sha256_fingerprint, VerifiesWith.UNCHECKED, UNCHECKED_REASON
    )
    assert links[1] == ChainLink(facts[1].sha256_fingerprint, VerifiesWith.BOTH)
    assert links[0].to_json()["reason"] == UNCHECKED_REASON


# --- which same-name issuer is tried first ------------------------------------------------
def test_the_issuer_the_key_id_names_is_tried_first() -> None:
    """Two CAs of one name (a renewed CA, the new one an intermediate under a top CA):
    the child's authority key id picks the new one, so one check is enough."""
    old, new, top = _ec(11), _ec(12), _ec(13)
    old_ca = _issue("Renewed CA", old, key_ids=(old, old))
    new_ca = _issue("Renewed CA", new, "Top", top, key_ids=(new, top))
    child = _issue("device", _ec(14), "Renewed CA", new, key_ids=(_ec(14), new))
    facts, links = _links(child, old_ca, new_ca, max_checks=1)
    assert links[0] == ChainLink(facts[2].sha256_fingerprint, VerifiesWith.BOTH)


def test_a_candidate_without_a_key_id_comes_before_one_that_names_another_key() -> None:
    other, real = _ec(21), _ec(22)
    other_ca = _issue("Fleet CA", other, key_ids=(other, None))
    real_ca = _issue("Fleet CA", real, key_ids=(None, None))
    child = _issue("device", _ec(23), "Fleet CA", real, key_ids=(None, _ec(24)))
    facts, links = _links(child, other_ca, real_ca, max_checks=1)
    assert links[0] == ChainLink(facts[2].sha256_fingerprint, VerifiesWith.BOTH)


def test_a_self_signed_ca_is_its_own_first_candidate() -> None:
    """An old and a new root of one name: each is tried under itself first, so two checks
    give both their link (file order would spend one on the wrong root)."""
    old_root, new_root = _issue("Root", _ec(31)), _issue("Root", _ec(32))
    facts, links = _links(old_root, new_root, max_checks=2)
    assert links == [
        ChainLink(facts[0].sha256_fingerprint, VerifiesWith.BOTH),
        ChainLink(facts[1].sha256_fingerprint, VerifiesWith.BOTH),
    ]
