"""PKCS#12 (``.pfx``/``.p12``) without a password -> the DER of each certificate. Pure.

Why walked here and not loaded with ``cryptography``: its PKCS#12 loader parses every
certificate and fails the whole file on the very certificates this product exists to find
(a tenant CA whose AlgorithmIdentifiers differ only in NULL parameters), and that failure
looked like a password. So the PFX is walked with asn1crypto: the MAC is checked with the
two encodings of an empty password (a file whose MAC holds under neither truly needs a
password), each SafeContents is read in the clear or decrypted under the empty password
(PBES2: PBKDF2 + AES/3DES; the legacy PKCS#12 PBE: 3DES, RC2, RC4), and each
certificate bag's bytes are analysed on their own. Any key bag refuses the file
(``private-key-material``). The work is bounded (``pkcs12_crypto``).
"""

from __future__ import annotations

import hashlib
import hmac

from asn1crypto import cms, core
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, RC2, TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from shared.analysis.der import (
    TAG_CONTEXT_0,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    DerError,
    Tlv,
    children,
    read_tlv,
)
from shared.analysis.pkcs12_crypto import (
    EMPTY_BMP_PASSWORD,
    KDF_IV,
    KDF_KEY,
    KDF_MAC,
    NULL_PASSWORD,
    WorkBudget,
    hash_spec,
    pkcs12_kdf,
    rc2_cbc_decrypt,
)
from shared.analysis.read_result import ErrorCode, ReadError

_EMPTY_PASSWORDS = (EMPTY_BMP_PASSWORD, NULL_PASSWORD)  # the common one first
_MAX_NESTING = 8  # SafeContents bags inside SafeContents bags
_KEY_BAGS = frozenset({"key_bag", "pkcs8_shrouded_key_bag", "secret_bag"})


def _password_protected(detail: str = "") -> ReadError:
    return ReadError(
        ErrorCode.PASSWORD_PROTECTED,
        f"the PKCS#12 file is protected by a password{detail}; export the certificate "
        "without its key (e.g. `openssl pkcs12 -in FILE -nokeys -out cert.pem`)",
    )


def _key_material() -> ReadError:
    return ReadError(
        ErrorCode.PRIVATE_KEY_MATERIAL,
        "the PKCS#12 file holds a private key; it was not stored. "
        "Export the certificate only (`openssl pkcs12 -in FILE -nokeys`)",
    )


def read_pkcs12(data: bytes) -> list[bytes]:
    """The certificates of a PFX that needs no password, in file order. A PFX not read to
    its end (a password, a cost over the bound, a damaged or unknown structure) cannot be
    proven key-free, so it is refused as key material (DESIGN §2): its key bag may be
    readable without the password (``-keypbe NONE`` protects only the MAC)."""
    try:
        return _read(data, WorkBudget())
    except ReadError as error:
        if error.code in _PROVEN_KEY_FREE_OR_KEY:
            raise
        raise _unproven(error.message) from None
    except Exception:  # asn1crypto raises ValueError, TypeError, RecursionError, ...
        raise _unproven("the PKCS#12 structure could not be read") from None


# Read to the end and found no certificate, or found a key bag: said as it is.
_PROVEN_KEY_FREE_OR_KEY = frozenset({ErrorCode.NO_CERTIFICATES, ErrorCode.PRIVATE_KEY_MATERIAL})


def _unproven(why: str) -> ReadError:
    """``why`` is one of this module's fixed texts, its advice cut off: no file content."""
    reason = why.split(";", 1)[0]
    return ReadError(
        ErrorCode.PRIVATE_KEY_MATERIAL,
        f"{reason}; it cannot be read to its end, so it may hold a private key, and it was "
        "not stored. Export the certificates only "
        "(`openssl pkcs12 -in FILE -nokeys -out cert.pem`)",
    )


def _read(data: bytes, budget: WorkBudget) -> list[bytes]:
    pfx = asn1_pkcs12.Pfx.load(data, strict=True)
    auth_safe = pfx["auth_safe"]
    if auth_safe["content_type"].native != "data":
        raise ReadError(
            ErrorCode.MALFORMED_PKCS12,
            "the PKCS#12 file uses public-key integrity, which is not supported",
        )
    content = auth_safe["content"].native or b""
    password = _mac_password(pfx["mac_data"], content, budget)
    certificates: list[bytes] = []
    for info in asn1_pkcs12.AuthenticatedSafe.load(content):
        kind = info["content_type"].native
        if kind == "data":
            found = _bags(info["content"].native or b"")
        elif kind == "encrypted_data":
            found = _decrypt_safe(info["content"]["encrypted_content_info"], password, budget)
        elif kind == "enveloped_data":
            raise _password_protected(" (encrypted to a recipient's key)")
        else:
            raise ReadError(ErrorCode.MALFORMED_PKCS12, f"a PKCS#12 content of type {kind}")
        certificates.extend(found)
    if not certificates:
        raise ReadError(ErrorCode.NO_CERTIFICATES, "the PKCS#12 file holds no certificate")
    return certificates


def _mac_password(mac_data: object, content: bytes, budget: WorkBudget) -> bytes | None:
    """Which empty password the MAC holds under; None when there is no MAC to tell (or its
    algorithm is one we do not know: then decryption tells). Raises when neither holds."""
    if isinstance(mac_data, core.Void):
        return None
    digest_info = mac_data["mac"]  # type: ignore[index]
    hash_name = digest_info["digest_algorithm"]["algorithm"].native
    spec = hash_spec(hash_name)
    if spec is None:
        return None
    expected = digest_info["digest"].native
    salt = mac_data["mac_salt"].native  # type: ignore[index]
    iterations = mac_data["iterations"].native  # type: ignore[index]
    size = spec[0]().digest_size
    for password in _EMPTY_PASSWORDS:
        key = pkcs12_kdf(hash_name, password, salt, KDF_MAC, iterations, size, budget)
        if hmac.compare_digest(hmac.new(key, content, hash_name).digest(), expected):
            return password
    raise _password_protected()


def _bags(safe_contents: bytes) -> list[bytes]:
    """The certificates of a SafeContents; a key bag refuses the file. Strict DER is walked
    with the project's DER reader (asn1crypto costs ~0.2 ms a bag: 2,400 bags took 0.5 s);
    anything else (BER) with asn1crypto."""
    found: list[bytes] = []
    try:
        top = read_tlv(safe_contents, 0, len(safe_contents))
        if top[0] != TAG_SEQUENCE or top[2] != len(safe_contents):
            raise DerError("not one SafeContents")
        _walk_bags(safe_contents, top, found, 0)
    except DerError:
        found = []
        _collect(asn1_pkcs12.SafeContents.load(safe_contents, strict=True), found, 0)
    return found


_BAG_OID_PREFIX = bytes.fromhex("2a864886f70d010c0a01")  # 1.2.840.113549.1.12.10.1.n
_KEY_BAG_NUMBERS = frozenset({1, 2, 5})  # keyBag, pkcs8ShroudedKeyBag, secretBag
_CERT_BAG, _SAFE_CONTENTS_BAG = 3, 6
_X509_CERT_TYPE = bytes.fromhex("2a864886f70d01091601")  # 1.2.840.113549.1.9.22.1


def _walk_bags(data: bytes, safe: Tlv, found: list[bytes], depth: int) -> None:
    """SafeContents ::= SEQUENCE OF SafeBag { bagId, [0] EXPLICIT bagValue, attributes? }."""
    for bag in children(data, safe):
        parts = children(data, bag)
        if bag[0] != TAG_SEQUENCE or len(parts) < 2 or parts[0][0] != TAG_OID:
            raise DerError("SafeBag")
        if parts[1][0] != TAG_CONTEXT_0:
            raise DerError("SafeBag value")
        bag_id = data[parts[0][1] : parts[0][2]]
        number = bag_id[-1] if bag_id[:-1] == _BAG_OID_PREFIX else 0
        if number in _KEY_BAG_NUMBERS:
            raise _key_material()
        value = read_tlv(data, parts[1][1], parts[1][2])
        if number == _CERT_BAG:
            cert_type, cert_value = children(data, value)[:2]
            if data[cert_type[1] : cert_type[2]] == _X509_CERT_TYPE:
                octets = read_tlv(data, cert_value[1], cert_value[2])
                if octets[0] != TAG_OCTET_STRING:
                    raise DerError("certValue")
                found.append(data[octets[1] : octets[2]])  # the bytes, unparsed
        elif number == _SAFE_CONTENTS_BAG:
            if depth >= _MAX_NESTING:
                raise ReadError(ErrorCode.MALFORMED_PKCS12, "SafeContents nested too deep")
            _walk_bags(data, value, found, depth + 1)


def _collect(safe: asn1_pkcs12.SafeContents, certificates: list[bytes], depth: int) -> None:
    for bag in safe:
        bag_id = bag["bag_id"].native
        if bag_id in _KEY_BAGS:
            raise _key_material()
        if bag_id == "cert_bag":
            value = bag["bag_value"]
            if value["cert_id"].native == "x509":
                certificates.append(bytes(value["cert_value"]))  # the bytes, unparsed
        elif bag_id == "safe_contents":
            if depth >= _MAX_NESTING:
                raise ReadError(ErrorCode.MALFORMED_PKCS12, "SafeContents nested too deep")
            _collect(bag["bag_value"], certificates, depth + 1)
        # CRL bags and unknown bags hold no certificate: skipped.


def _decrypt_safe(
    encrypted: cms.EncryptedContentInfo, password: bytes | None, budget: WorkBudget
) -> list[bytes]:
    algorithm = encrypted["content_encryption_algorithm"]
    ciphertext = encrypted["encrypted_content"].native or b""
    kdf = algorithm.kdf
    if kdf == "pbkdf2":
        # PBES2 takes the password's bytes as they are: both empty forms are b"".
        candidates: tuple[bytes, ...] = (NULL_PASSWORD,)
    elif kdf == "pkcs12_kdf":
        candidates = (password,) if password is not None else _EMPTY_PASSWORDS
    else:
        raise ReadError(
            ErrorCode.UNSUPPORTED_ENCODING,
            f"the PKCS#12 file is encrypted with {algorithm['algorithm'].native}, "
            "which is not supported; export the certificates as PEM",
        )
    for candidate in candidates:
        plain = _decrypt(algorithm, kdf, candidate, ciphertext, budget)
        if plain is None:
            continue
        try:
            return _bags(plain)
        except ReadError:
            raise  # a key bag: refused, whatever else the file holds
        except Exception:  # noqa: S112 - a wrong key gives garbage: try the other password
            continue
    raise _password_protected()


def _decrypt(
    algorithm: object, kdf: str, password: bytes, ciphertext: bytes, budget: WorkBudget
) -> bytes | None:
    """The padded-and-checked plaintext, or None when the key is wrong."""
    cipher_name = algorithm.encryption_cipher  # type: ignore[attr-defined]
    key_length = algorithm.key_length  # type: ignore[attr-defined]
    salt, iterations = algorithm.kdf_salt, algorithm.kdf_iterations  # type: ignore[attr-defined]
    block_size = algorithm.encryption_block_size  # type: ignore[attr-defined]
    if kdf == "pbkdf2":
        prf = algorithm.kdf_hmac  # type: ignore[attr-defined]
        spec = hash_spec(prf)
        if spec is None:
            raise ReadError(ErrorCode.UNSUPPORTED_ENCODING, f"PBKDF2 with {prf}")
        budget.spend(iterations, -(-key_length // spec[0]().digest_size))
        key = hashlib.pbkdf2_hmac(prf, password, salt, iterations, key_length)
        iv = algorithm.encryption_iv  # type: ignore[attr-defined]
    else:
        key = pkcs12_kdf("sha1", password, salt, KDF_KEY, iterations, key_length, budget)
        iv = (
            pkcs12_kdf("sha1", password, salt, KDF_IV, iterations, block_size, budget)
            if block_size
            else b""
        )
    if cipher_name == "rc4":
        return Cipher(ARC4(key), mode=None).decryptor().update(ciphertext)
    if len(ciphertext) % block_size:
        return None
    if cipher_name == "rc2" and len(key) != 16:
        budget.spend_rc2(len(ciphertext))
        padded = rc2_cbc_decrypt(key, 8 * len(key), iv, ciphertext)
    else:
        engine = _block_cipher(cipher_name, key)
        decryptor = Cipher(engine, modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(8 * block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def _block_cipher(name: str, key: bytes) -> algorithms.BlockCipherAlgorithm:
    if name == "aes":
        return algorithms.AES(key)
    if name == "tripledes":
        # Two-key 3DES is K1,K2,K1: spelled out, as cryptography deprecates 16-byte keys.
        return TripleDES(key + key[:8] if len(key) == 16 else key)
    if name == "des":
        return TripleDES(key * 3)  # single DES is 3DES with three equal keys
    if name == "rc2":
        return RC2(key)
    raise ReadError(ErrorCode.UNSUPPORTED_ENCODING, f"PKCS#12 encryption with {name}")
