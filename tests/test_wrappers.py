"""Issue 14, item 1: an incident tenant CA inside any wrapper is read as ``affected`` with
its mismatch kind, next to the other certificates of the file. Before, ``cryptography``
refused the NULL-parameters certificate when it loaded the PKCS#7 (``malformed-pkcs7``) or
the PKCS#12 (``password-protected``), and every certificate of the file was lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from analyzer_samples import INSIDE, OUTSIDE, pca, rules, tenant
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, pkcs7, pkcs12
from hostile_samples import openssl_crl2pkcs7, openssl_pkcs12, signed_data

from shared.analysis.facts import Mismatch
from shared.analysis.pkcs12_crypto import EMPTY_BMP_PASSWORD, NULL_PASSWORD
from shared.analysis.reader import ErrorCode, Status, read_certificates
from shared.analysis.scan import analyze_bytes
from shared.local import samples

needs_openssl = pytest.mark.usefixtures("openssl_command")  # fails under CI when missing

KINDS = {
    "oid-outer": Mismatch.OID,
    "oid-inner": Mismatch.OID,
    "null-outer": Mismatch.PARAMETERS,
    "null-inner": Mismatch.PARAMETERS,
}


def _files(kind: str) -> list[bytes]:
    """The incident tenant CA, then its issuer and an unaffected tenant CA."""
    incident = samples.mismatched(tenant(INSIDE), pca(), kind)
    other = tenant(OUTSIDE, "0b0e0c0a-0000-4000-8000-0000000000aa").der
    return [incident, pca().der, other]


def _pkcs7_pem(ders: list[bytes]) -> bytes:
    return samples.pem(signed_data(ders), "PKCS7")


WRAPPERS: dict[str, tuple[Callable[[list[bytes]], bytes], str, bool]] = {
    # name: (maker, format, needs openssl)
    "pem-bundle": (lambda ders: b"".join(samples.pem(d) for d in ders), "pem", False),
    "pkcs7-der": (signed_data, "pkcs7-der", False),
    "pkcs7-pem": (_pkcs7_pem, "pkcs7-pem", False),
    "openssl-crl2pkcs7-der": (openssl_crl2pkcs7, "pkcs7-der", True),
    "openssl-crl2pkcs7-pem": (lambda d: openssl_crl2pkcs7(d, "PEM"), "pkcs7-pem", True),
    # OpenSSL 3 default: PBES2 (PBKDF2-SHA256, AES-256-CBC) bags, SHA-256 MAC
    "openssl-pkcs12": (openssl_pkcs12, "pkcs12", True),
    # OpenSSL 1.x default: RC2-40 certificate bags, SHA-1 MAC
    "openssl-pkcs12-legacy": (lambda d: openssl_pkcs12(d, ("-legacy",)), "pkcs12", True),
    "openssl-pkcs12-3des": (
        lambda d: openssl_pkcs12(d, ("-certpbe", "PBE-SHA1-3DES")),
        "pkcs12",
        True,
    ),
    "openssl-pkcs12-aes128-sha1-mac": (
        lambda d: openssl_pkcs12(d, ("-certpbe", "AES-128-CBC", "-macalg", "sha1")),
        "pkcs12",
        True,
    ),
    "openssl-pkcs12-no-mac": (lambda d: openssl_pkcs12(d, ("-nomac",)), "pkcs12", True),
    "openssl-pkcs12-clear-bags": (
        lambda d: openssl_pkcs12(d, ("-certpbe", "NONE")),
        "pkcs12",
        True,
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_incident_certificate_inside_a_wrapper_is_affected(
    kind: str, wrapper: str, request: pytest.FixtureRequest
) -> None:
    make, fmt, openssl_needed = WRAPPERS[wrapper]
    if openssl_needed:
        request.getfixturevalue("openssl_command")  # fails under CI, skips elsewhere
    ders = _files(kind)
    data = make(ders)
    result = analyze_bytes(f"chain.{wrapper}", data, rules())
    assert result.error is None, result.error
    assert result.status is Status.ANALYZED and result.format == fmt
    by_der = {cert.facts.der: cert for cert in result.certificates}
    assert set(by_der) == set(ders)  # nothing lost
    incident = by_der[ders[0]]
    assert str(incident.classification.verdict) == "affected"
    assert incident.facts.mismatch is KINDS[kind]
    body = incident.to_json()
    assert body["signature_algorithm"]["mismatch"] == str(KINDS[kind])
    assert str(by_der[ders[2]].classification.verdict) == "ok"
    # The chain fact still comes: the tenant CA links to its issuer in the same file.
    assert incident.chain is not None and incident.chain.issuer_sha256 == by_der[ders[1]].sha256


@pytest.mark.parametrize("kind", ["oid-outer", "oid-inner"])
def test_cryptography_serializers_where_they_load_the_certificate(kind: str) -> None:
    """``cryptography`` loads an OID-mismatch certificate (not a NULL one), so its own
    PKCS#7 and PKCS#12 writers can wrap it: the reader reads both."""
    ders = _files(kind)
    certs = [x509.load_der_x509_certificate(der) for der in ders]
    for data in (
        pkcs7.serialize_certificates(certs, Encoding.DER),
        pkcs12.serialize_key_and_certificates(None, None, certs[0], certs[1:], NoEncryption()),
    ):
        result = read_certificates(data)
        assert result.status is Status.ANALYZED, result.error
        assert sorted(result.certificates) == sorted(ders)


def test_one_unreadable_certificate_in_a_pkcs7_keeps_the_others() -> None:
    good = _files("null-outer")
    broken = good[1][:4] + b"\x02" + good[1][5:]  # TBSCertificate tag replaced: malformed
    result = analyze_bytes("chain.p7b", signed_data([good[0], broken, good[2]]), rules())
    assert result.status is Status.UNREADABLE
    assert result.error is not None and result.error.code is ErrorCode.MALFORMED_CERTIFICATE
    assert "certificate 2 of 3" in result.error.message
    assert [c.facts.der for c in result.certificates] == [good[0], good[2]]
    assert str(result.certificates[0].classification.verdict) == "affected"


@needs_openssl
def test_pkcs12_with_a_password_is_key_material() -> None:
    data = openssl_pkcs12(_files("null-outer"), password="correct horse")
    result = read_certificates(data)
    assert result.status is Status.REJECTED
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert "protected by a password" in result.error.message


@needs_openssl
@pytest.mark.parametrize("extra", [(), ("-legacy",)])
def test_pkcs12_with_an_incident_certificate_and_a_key_is_refused(extra: tuple[str, ...]) -> None:
    from cryptography.hazmat.primitives.serialization import PrivateFormat

    issued = tenant(INSIDE)
    key_pem = issued.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    incident = samples.mismatched(issued, pca(), "null-outer")
    data = openssl_pkcs12([incident], extra, key_pem=key_pem)
    result = read_certificates(data)
    assert result.status is Status.REJECTED
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert result.certificates == ()


@needs_openssl
@pytest.mark.parametrize("password", [EMPTY_BMP_PASSWORD, NULL_PASSWORD])
def test_mac_under_either_empty_password_convention(password: bytes) -> None:
    """RFC 7292 B.1 leaves "no password" open: OpenSSL writes the BMPString terminator
    (00 00), others no bytes at all. A MAC made under either one reads."""
    import hashlib
    import hmac

    from asn1crypto import pkcs12 as asn1_pkcs12

    from shared.analysis.pkcs12_crypto import KDF_MAC, WorkBudget, pkcs12_kdf

    ders = _files("null-inner")
    pfx = asn1_pkcs12.Pfx.load(openssl_pkcs12(ders, ("-certpbe", "NONE", "-macalg", "sha1")))
    content = pfx["auth_safe"]["content"].native
    salt = pfx["mac_data"]["mac_salt"].native
    key = pkcs12_kdf("sha1", password, salt, KDF_MAC, 2048, 20, WorkBudget())
    pfx["mac_data"]["mac"]["digest"] = hmac.new(key, content, hashlib.sha1).digest()
    result = read_certificates(pfx.dump(force=True))
    assert result.status is Status.ANALYZED, result.error
    assert sorted(result.certificates) == sorted(ders)
    # The same file with a MAC under no empty password needs a password: key material.
    pfx["mac_data"]["mac"]["digest"] = b"\x00" * 20
    result = read_certificates(pfx.dump(force=True))
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert "protected by a password" in result.error.message


@needs_openssl
def test_pkcs12_kdf_agrees_with_openssl() -> None:
    """The hand-written RFC 7292 KDF gives the MAC OpenSSL wrote (SHA-1 and SHA-256):
    the 'openssl-pkcs12*' cases above verify it, this says so on its own."""
    from asn1crypto import pkcs12 as asn1_pkcs12

    from shared.analysis.pkcs12 import _mac_password
    from shared.analysis.pkcs12_crypto import WorkBudget

    for macalg in ("sha1", "sha256", "sha512"):
        data = openssl_pkcs12(_files("oid-outer"), ("-macalg", macalg))
        pfx = asn1_pkcs12.Pfx.load(data)
        content = pfx["auth_safe"]["content"].native
        assert _mac_password(pfx["mac_data"], content, WorkBudget()) == EMPTY_BMP_PASSWORD


@needs_openssl
def test_the_fast_der_walk_and_asn1crypto_agree() -> None:
    """PKCS#7 in strict DER is walked by the project's DER reader (fast); everything else
    by asn1crypto. Where both read a file they give the same certificates."""
    from shared.analysis import pkcs7 as pkcs7_reader

    ders = _files("null-outer")
    oid_certs = [x509.load_der_x509_certificate(der) for der in _files("oid-outer")]
    inputs = [
        signed_data(ders),
        signed_data(ders[:1]),
        pkcs7.serialize_certificates(oid_certs, Encoding.DER),
        openssl_crl2pkcs7(ders),
    ]
    for data in inputs:
        fast = pkcs7_reader._read_der(data)
        assert fast is not None
        assert fast == pkcs7_reader._read_with_asn1crypto(data)
    # BER (indefinite lengths) is left to asn1crypto.
    ber = b"\x30\x80" + signed_data(ders)[2 + 2 :] + b"\x00\x00"
    assert pkcs7_reader._read_der(ber) is None


@needs_openssl
def test_pkcs12_bags_fast_der_walk_and_asn1crypto_agree() -> None:
    """SafeContents in strict DER are walked by the project's DER reader; asn1crypto reads
    the rest (BER). Both give the same certificates, and both refuse a key bag."""
    from asn1crypto import pkcs12 as asn1_pkcs12
    from cryptography.hazmat.primitives.serialization import PrivateFormat

    from shared.analysis import pkcs12 as pkcs12_reader
    from shared.analysis.der import read_tlv
    from shared.analysis.read_result import ReadError

    def safe_contents(data: bytes, index: int = 0) -> bytes:
        pfx = asn1_pkcs12.Pfx.load(data)
        safes = asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native)
        return safes[index]["content"].native  # an unencrypted SafeContents

    ders = _files("null-outer")
    plain = safe_contents(openssl_pkcs12(ders, ("-certpbe", "NONE")))
    fast: list[bytes] = []
    pkcs12_reader._walk_bags(plain, read_tlv(plain, 0, len(plain)), fast, 0)
    slow: list[bytes] = []
    pkcs12_reader._collect(asn1_pkcs12.SafeContents.load(plain), slow, 0)
    assert fast == slow == ders
    # The same bags in BER (indefinite length) take the asn1crypto path.
    ber = b"\x30\x80" + plain[4:] + b"\x00\x00"
    assert pkcs12_reader._bags(ber) == ders

    issued = tenant(INSIDE)
    key_pem = issued.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    keyed = safe_contents(
        openssl_pkcs12([issued.der], ("-keypbe", "NONE", "-certpbe", "NONE"), key_pem=key_pem),
        -1,  # OpenSSL writes the key's SafeContents last
    )
    for walk in (
        lambda: pkcs12_reader._walk_bags(keyed, read_tlv(keyed, 0, len(keyed)), [], 0),
        lambda: pkcs12_reader._collect(asn1_pkcs12.SafeContents.load(keyed), [], 0),
    ):
        with pytest.raises(ReadError) as refused:
            walk()
        assert refused.value.code is ErrorCode.PRIVATE_KEY_MATERIAL
