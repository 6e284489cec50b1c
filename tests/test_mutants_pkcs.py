"""What a user sees for each odd PKCS#7 / PKCS#12 file: the certificates read, or the exact
status, code and message of the refusal (DESIGN §2-§3), one table row per shape.

Issue 16 (mutation testing of pkcs7.py and pkcs12.py): every row is a file some writer
makes or a hostile upload could be, built byte by byte (tests/pkcs_samples.py) or by
``openssl pkcs12 -export``. Each row pins one decision of the walk: which error wins, how
deep SafeContents may nest, which password the MAC names, which cipher reads which bag.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hostile_samples import openssl_pkcs12, self_signed, signed_data
from pkcs_samples import (
    OID_DATA,
    OID_ENVELOPED_DATA,
    OID_SIGNED_DATA,
    PBE_2KEY_3DES,
    PBE_RC2_40,
    PBE_RC2_128,
    bag,
    cert_bag,
    content_info,
    data_info,
    enc,
    encrypted_info,
    indefinite,
    integer,
    legacy_algorithm,
    legacy_info,
    mac_data,
    nested,
    oid,
    other_bag,
    pbes2_info,
    pfx,
    rc5_info,
    safe,
    signed_data_with,
)

from shared.analysis.pkcs12_crypto import KDF_IV, KDF_KEY, WorkBudget, pkcs12_kdf
from shared.analysis.reader import ErrorCode, Status, read_certificates
from shared.local import samples

needs_openssl = pytest.mark.usefixtures("openssl_command")  # fails under CI when missing


@cache
def certs() -> tuple[bytes, bytes]:
    return self_signed(0x7001), self_signed(0x7002)


def _c1() -> bytes:
    return certs()[0]


def _c2() -> bytes:
    return certs()[1]


_EXPORT = (
    "export the certificate without its key (e.g. `openssl pkcs12 -in FILE -nokeys -out cert.pem`)"
)
PASSWORD = f"the PKCS#12 file is protected by a password; {_EXPORT}"
RECIPIENT = (
    f"the PKCS#12 file is protected by a password (encrypted to a recipient's key); {_EXPORT}"
)
KEY = (
    "the PKCS#12 file holds a private key; it was not stored. "
    "Export the certificate only (`openssl pkcs12 -in FILE -nokeys`)"
)
P12_UNREADABLE = "the PKCS#12 structure could not be read"
P12_NONE = "the PKCS#12 file holds no certificate"
NESTED = "SafeContents nested too deep"
P7_UNREADABLE = "the PKCS#7 structure could not be read"
P7_NOT_SIGNED = "the PKCS#7 file is not SignedData"
P7_NONE = "the PKCS#7 file holds no certificate"
TOO_COSTLY_IN_ALL = (
    "the PKCS#12 file asks for over 400,000 key-derivation iterations in all, more than any "
    "common tool writes (at most 100,000 per count, 400,000 in all); export the certificates "
    "as PEM (`openssl pkcs12 -in FILE -nokeys -out cert.pem`)"
)
RC2_TOO_LARGE = (
    "the PKCS#12 file holds over 64 KiB under legacy RC2 encryption; export the certificates "
    "as PEM, or again with AES"
)

# Certificates read (indexes into certs()), or (code, message) of the refusal.
Outcome = tuple[int, ...] | tuple[ErrorCode, str]


def _p7_pem(der: bytes) -> bytes:
    return samples.pem(der, "PKCS7")


def _both() -> bytes:
    return safe(cert_bag(_c1()), cert_bag(_c2()))


# A 3DES bag under the NULL password, no MAC: both empty passwords are tried, the common
# one first. Under that wrong one the plaintext has bad padding (for most salts) or, for
# about one salt in 256, good padding over garbage bags: both must go on to the NULL one.
# (self_signed's ECDSA signatures differ run to run, so the salts are found each run.)
@cache
def _salt(good_padding_first: bool) -> bytes:
    plain = safe(cert_bag(_c1()))
    return next(
        salt
        for salt in (b"salt%04d" % index for index in range(10_000))
        if _pads_validly(plain, salt, b"\0\0") is good_padding_first
    )


_UNKNOWN_BAG_OID = bytes.fromhex("2b0601040182371101")  # 1.3.6.1.4.1.311.17.1: ends in .1
_CRL_BAG_VALUE = enc(0x30, oid(bytes.fromhex("2a864886f70d01091701")) + enc(0xA0, enc(0x04, b"c")))
_SDSI_CERT = enc(0x30, oid(bytes.fromhex("2a864886f70d01091602")) + enc(0xA0, enc(0x16, b"sd")))


@cache
def _pbes2_100k() -> bytes:
    return pbes2_info(safe(cert_bag(_c1())), iterations=100_000)


def _big_safe() -> bytes:
    """One certificate and 70 KiB of an unknown bag: over the pure-Python RC2 cap."""
    return safe(cert_bag(_c1()), other_bag(_UNKNOWN_BAG_OID, enc(0x04, bytes(70 * 1024))))


CASES: dict[str, tuple[Callable[[], bytes], Outcome]] = {
    # --- PKCS#7 ---
    "p7-ber": (lambda: indefinite(signed_data(list(certs()))), (0, 1)),
    "p7-pem-trailing-bytes": (
        lambda: _p7_pem(signed_data(list(certs())) + b"\x05\x00"),
        (ErrorCode.MALFORMED_PKCS7, P7_UNREADABLE),
    ),
    "p7-pem-data-not-signed-data": (
        lambda: _p7_pem(signed_data(list(certs())).replace(OID_SIGNED_DATA, OID_DATA, 1)),
        (ErrorCode.MALFORMED_PKCS7, P7_NOT_SIGNED),
    ),
    "p7-pem-content-type-an-integer": (
        lambda: _p7_pem(
            signed_data(list(certs())).replace(
                b"\x06\x09" + OID_SIGNED_DATA, b"\x02\x09" + OID_SIGNED_DATA, 1
            )
        ),
        (ErrorCode.MALFORMED_PKCS7, P7_UNREADABLE),
    ),
    "p7-signed-data-tagged-set": (
        lambda: signed_data_with(_c1() + _c2(), tag=0x31),
        (ErrorCode.MALFORMED_PKCS7, P7_UNREADABLE),
    ),
    "p7-empty-certificates": (lambda: signed_data_with(b""), (ErrorCode.NO_CERTIFICATES, P7_NONE)),
    "p7-no-certificates-field": (
        lambda: signed_data_with(None),
        (ErrorCode.NO_CERTIFICATES, P7_NONE),
    ),
    "p7-other-certificate-choice-skipped": (
        lambda: signed_data_with(_c1() + enc(0xA3, oid(OID_DATA) + enc(0x04, b"x"))),
        (0,),
    ),
    # --- PKCS#12: the PFX ---
    "p12-clear-bags": (lambda: pfx(data_info(_both())), (0, 1)),
    "p12-mac-empty-bmp-password": (lambda: pfx(data_info(_both()), mac_password=b"\0\0"), (0, 1)),
    "p12-mac-null-password": (lambda: pfx(data_info(_both()), mac_password=b""), (0, 1)),
    "p12-mac-another-password": (
        lambda: pfx(data_info(_both()), mac_password=b"\0x\0\0"),
        (ErrorCode.PASSWORD_PROTECTED, PASSWORD),
    ),
    "p12-ber": (lambda: indefinite(pfx(data_info(_both()))), (0, 1)),
    "p12-ber-trailing-bytes": (
        lambda: indefinite(pfx(data_info(_both()))) + b"\x05\x00",
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-auth-safe-not-a-content-info": (
        lambda: enc(0x30, integer(3) + enc(0x30, integer(1))),
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-public-key-integrity": (
        lambda: pfx(auth_safe=content_info(OID_SIGNED_DATA, enc(0x30, b""))),
        (
            ErrorCode.MALFORMED_PKCS12,
            "the PKCS#12 file uses public-key integrity, which is not supported",
        ),
    ),
    "p12-auth-safe-without-content-under-a-mac": (
        lambda: enc(0x30, integer(3) + data_info(None) + mac_data(b"", b"\0\0")),
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-enveloped-data": (
        lambda: pfx(content_info(OID_ENVELOPED_DATA, enc(0x30, b"")), data_info(_both())),
        (ErrorCode.PASSWORD_PROTECTED, RECIPIENT),
    ),
    "p12-signed-data-content": (
        lambda: pfx(data_info(_both()), content_info(OID_SIGNED_DATA, enc(0x30, b""))),
        (ErrorCode.MALFORMED_PKCS12, "a PKCS#12 content of type signed_data"),
    ),
    "p12-no-contents": (lambda: pfx(), (ErrorCode.NO_CERTIFICATES, P12_NONE)),
    "p12-empty-safe-contents": (
        lambda: pfx(data_info(safe())),
        (ErrorCode.NO_CERTIFICATES, P12_NONE),
    ),
    # --- PKCS#12: SafeContents and bags ---
    "p12-bytes-after-safe-contents": (
        lambda: pfx(data_info(_both() + b"\x05\x00")),
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-safe-contents-tagged-set": (
        lambda: pfx(data_info(b"\x31" + _both()[1:])),
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-safe-bag-tagged-set": (
        lambda: pfx(data_info(safe(cert_bag(_c2()), b"\x31" + cert_bag(_c1())[1:]))),
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-bag-id-an-integer": (
        lambda: pfx(data_info(safe(cert_bag(_c1(), id_tag=0x02)))),
        (ErrorCode.MALFORMED_PKCS12, P12_UNREADABLE),
    ),
    "p12-unknown-bag-skipped": (
        lambda: pfx(data_info(safe(other_bag(_UNKNOWN_BAG_OID), cert_bag(_c1())))),
        (0,),
    ),
    "p12-crl-bag-skipped": (
        lambda: pfx(data_info(safe(bag(4, _CRL_BAG_VALUE), cert_bag(_c2())))),
        (1,),
    ),
    "p12-sdsi-certificate-skipped": (
        lambda: pfx(data_info(safe(bag(3, _SDSI_CERT), cert_bag(_c2())))),
        (1,),
    ),
    "p12-cert-bag-with-a-trailing-field": (
        lambda: pfx(data_info(safe(cert_bag(_c1(), extra=b"\x05\x00")))),
        (0,),
    ),
    "p12-cert-bag-with-a-trailing-field-ber": (
        lambda: pfx(data_info(indefinite(safe(cert_bag(_c1(), extra=b"\x05\x00"))))),
        (0,),
    ),
    "p12-nested-eight-deep": (lambda: pfx(data_info(nested(8, cert_bag(_c1())))), (0,)),
    "p12-nested-eight-deep-ber": (
        lambda: pfx(data_info(indefinite(nested(8, cert_bag(_c1()))))),
        (0,),
    ),
    "p12-nested-nine-deep": (
        lambda: pfx(data_info(nested(9, cert_bag(_c1())))),
        (ErrorCode.MALFORMED_PKCS12, NESTED),
    ),
    "p12-nested-nine-deep-ber": (
        lambda: pfx(data_info(indefinite(nested(9, cert_bag(_c1()))))),
        (ErrorCode.MALFORMED_PKCS12, NESTED),
    ),
    "p12-nested-beside-flat": (
        lambda: pfx(data_info(safe(bag(6, safe(cert_bag(_c1()))), cert_bag(_c2())))),
        (0, 1),
    ),
    "p12-nested-beside-flat-ber": (
        lambda: pfx(data_info(indefinite(safe(bag(6, safe(cert_bag(_c1()))), cert_bag(_c2()))))),
        (0, 1),
    ),
    # --- PKCS#12: encrypted SafeContents ---
    "p12-3des-null-password-no-mac": (
        lambda: pfx(legacy_info(safe(cert_bag(_c1())), b"", _salt(False))),
        (0,),
    ),
    "p12-3des-null-password-no-mac-good-padding-first": (
        lambda: pfx(legacy_info(safe(cert_bag(_c1())), b"", _salt(True))),
        (0,),
    ),
    "p12-3des-bmp-password-no-mac": (
        lambda: pfx(legacy_info(safe(cert_bag(_c1())), b"\0\0", _salt(False))),
        (0,),
    ),
    "p12-3des-under-another-password-than-the-mac": (
        lambda: pfx(legacy_info(safe(cert_bag(_c1())), b"\0\0", b"s"), mac_password=b""),
        (ErrorCode.PASSWORD_PROTECTED, PASSWORD),
    ),
    "p12-3des-null-password-under-its-mac": (
        lambda: pfx(legacy_info(safe(cert_bag(_c1())), b"", b"s"), mac_password=b""),
        (0,),
    ),
    "p12-pbes1-md5-des": (
        lambda: pfx(
            encrypted_info(
                enc(
                    0x30,
                    oid(bytes.fromhex("2a864886f70d010503"))
                    + enc(0x30, enc(0x04, b"saltsalt") + integer(1)),
                ),
                bytes(16),
            )
        ),
        (
            ErrorCode.UNSUPPORTED_ENCODING,
            "the PKCS#12 file is encrypted with pbes1_md5_des, which is not supported; "
            "export the certificates as PEM",
        ),
    ),
    "p12-pbes2-sha1-aes256": (lambda: pfx(pbes2_info(_both())), (0, 1)),
    "p12-pbes2-hmac-sha512-224": (
        lambda: pfx(pbes2_info(_both(), prf="sha512_224")),
        (ErrorCode.UNSUPPORTED_ENCODING, "PBKDF2 with sha512_224"),
    ),
    "p12-pbes2-rc5": (
        lambda: pfx(rc5_info()),
        (ErrorCode.UNSUPPORTED_ENCODING, "PKCS#12 encryption with rc5"),
    ),
    # PBKDF2-SHA1 makes an AES-256 key in 2 blocks: 2 x 100,000 per safe, and the MAC's one
    # iteration takes the second safe past 400,000. Refused before the second derivation.
    "p12-pbes2-two-blocks-a-safe-count-in-all": (
        lambda: pfx(_pbes2_100k(), _pbes2_100k(), mac_password=b"\0\0"),
        (ErrorCode.PKCS12_ITERATIONS_TOO_HIGH, TOO_COSTLY_IN_ALL),
    ),
    # RC2 with 128-bit keys is cryptography's (fast, no cap); only RC2-40 is pure Python.
    "p12-rc2-128-over-64-kib": (
        lambda: pfx(legacy_info(_big_safe(), b"\0\0", b"s", PBE_RC2_128)),
        (0,),
    ),
    "p12-rc2-40-over-64-kib": (
        lambda: pfx(encrypted_info(legacy_algorithm(PBE_RC2_40, b"s", 1), bytes(65 * 1024 + 8))),
        (ErrorCode.TOO_LARGE, RC2_TOO_LARGE),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_user_sees_this_outcome(case: str) -> None:
    make, outcome = CASES[case]
    result = read_certificates(make())
    if outcome and isinstance(outcome[0], ErrorCode):
        code, message = as_refused(*outcome) if case.startswith("p12-") else outcome
        assert result.error is not None, case
        assert (result.error.code, result.error.message) == (code, message)
        expected = Status.REJECTED if code in _REJECTED else Status.UNREADABLE
        assert result.status is expected
        assert result.certificates == ()
    else:
        assert result.error is None, result.error
        assert result.status is Status.ANALYZED
        assert list(result.certificates) == [certs()[index] for index in outcome]


# Issue 23: a PKCS#12 not read to its end cannot be proven key-free, so it is refused as
# key material; its reason (the text before the advice) is kept.
_UNPROVEN = (
    "; it cannot be read to its end, so it may hold a private key, and it was not stored. "
    "Export the certificates only (`openssl pkcs12 -in FILE -nokeys -out cert.pem`)"
)
_SAID_AS_IT_IS = {ErrorCode.NO_CERTIFICATES, ErrorCode.PRIVATE_KEY_MATERIAL}


def as_refused(code: ErrorCode, message: str) -> tuple[ErrorCode, str]:
    if code not in _SAID_AS_IT_IS:
        return ErrorCode.PRIVATE_KEY_MATERIAL, message.split(";", 1)[0] + _UNPROVEN
    return code, message


_REJECTED = {
    ErrorCode.PASSWORD_PROTECTED,
    ErrorCode.PRIVATE_KEY_MATERIAL,
    ErrorCode.PKCS12_ITERATIONS_TOO_HIGH,
    ErrorCode.TOO_LARGE,
}


def _pads_validly(plain: bytes, salt: bytes, wrong_password: bytes) -> bool:
    """Whether the bag encrypted under the NULL password decrypts to valid padding under
    ``wrong_password``."""
    from asn1crypto import cms

    info = cms.ContentInfo.load(legacy_info(plain, b"", salt))
    data = info["content"]["encrypted_content_info"]["encrypted_content"].native
    key = pkcs12_kdf("sha1", wrong_password, salt, KDF_KEY, 1, 24, WorkBudget())
    iv = pkcs12_kdf("sha1", wrong_password, salt, KDF_IV, 1, 8, WorkBudget())
    decryptor = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(64).unpadder()
    try:
        unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return False
    return True


# --- files openssl writes ------------------------------------------------------------
@needs_openssl
def test_a_password_and_a_key_are_refused_with_their_messages() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    protected = read_certificates(openssl_pkcs12([_c1()], password="correct horse"))
    assert protected.status is Status.REJECTED and protected.certificates == ()
    assert protected.error is not None
    assert (protected.error.code, protected.error.message) == as_refused(
        ErrorCode.PASSWORD_PROTECTED, PASSWORD
    )

    key = ec.derive_private_key(0x5EED0001, ec.SECP256R1())  # self_signed's key
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    keyed = read_certificates(openssl_pkcs12([_c1()], key_pem=key_pem))
    assert keyed.status is Status.REJECTED and keyed.certificates == ()
    assert keyed.error is not None
    assert (keyed.error.code, keyed.error.message) == (ErrorCode.PRIVATE_KEY_MATERIAL, KEY)


@needs_openssl
@pytest.mark.parametrize(
    "certpbe", ["PBE-SHA1-RC4-128", "PBE-SHA1-RC2-128", "PBE-SHA1-2DES", "DES-CBC"]
)
def test_legacy_ciphers_openssl_writes_are_read(certpbe: str) -> None:
    result = read_certificates(openssl_pkcs12(list(certs()), ("-legacy", "-certpbe", certpbe)))
    assert result.error is None, result.error
    assert sorted(result.certificates) == sorted(certs())


def test_a_two_key_3des_bag_is_read_without_a_warning() -> None:
    """pbeWithSHAAnd2-KeyTripleDES-CBC: the 16-byte key is used as K1,K2,K1, which
    cryptography accepts without its deprecation warning (a warning per file in the
    function's log otherwise)."""
    import warnings

    made = pfx(legacy_info(safe(cert_bag(_c1())), b"", b"s", PBE_2KEY_3DES))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = read_certificates(made)
    assert (result.status, list(result.certificates)) == (Status.ANALYZED, [_c1()])
