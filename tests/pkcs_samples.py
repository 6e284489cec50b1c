"""Hand-built PKCS#7 and PKCS#12 structures for the wrapper readers' edge tests.

Not a test module; tests/test_mutants_pkcs.py imports it. Each piece is plain DER written
with ``samples.encode``, so a test can put exactly the damage it means where it means it
(a SafeBag tagged SET, a bag nested nine deep, a MAC under the NULL password) that no
tool would write. Encryption is done with ``cryptography`` and ``hashlib``; the legacy
PKCS#12 key derivation (which neither offers) comes from ``pkcs12_crypto``, whose own
known-answer tests check it against ``openssl kdf``.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import RC2, TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from shared.analysis.der import read_tlv
from shared.analysis.pkcs12_crypto import KDF_IV, KDF_KEY, KDF_MAC, WorkBudget, pkcs12_kdf
from shared.local import samples

enc = samples.encode
OID_DATA = bytes.fromhex("2a864886f70d010701")
OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
OID_ENVELOPED_DATA = bytes.fromhex("2a864886f70d010703")
OID_ENCRYPTED_DATA = bytes.fromhex("2a864886f70d010706")
_BAG = bytes.fromhex("2a864886f70d010c0a01")  # 1.2.840.113549.1.12.10.1.n
_X509 = bytes.fromhex("2a864886f70d01091601")
_PKCS12_PBE = bytes.fromhex("2a864886f70d010c01")  # 1.2.840.113549.1.12.1.n
PBE_3DES, PBE_2KEY_3DES, PBE_RC2_128, PBE_RC2_40 = 3, 4, 5, 6
_SHA1 = bytes.fromhex("2b0e03021a")
_PBES2 = bytes.fromhex("2a864886f70d01050d")
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
HMAC_OIDS = {
    "sha1": bytes.fromhex("2a864886f70d0207"),
    "sha512_224": bytes.fromhex("2a864886f70d020c"),
}
_AES256_CBC = bytes.fromhex("60864801650304012a")
_RC5_CBC = bytes.fromhex("2a864886f70d0309")


def oid(value: bytes) -> bytes:
    return enc(0x06, value)


def integer(value: int) -> bytes:
    return enc(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def indefinite(der: bytes) -> bytes:
    """The outer element in BER with an indefinite length (what some tools write)."""
    top = read_tlv(der, 0, len(der))
    return der[:1] + b"\x80" + der[top[1] :] + b"\x00\x00"


# --- PKCS#12 ---------------------------------------------------------------------------
def bag(number: int, value: bytes, tag: int = 0x30, id_tag: int = 0x06) -> bytes:
    """SafeBag { bagId 1.2.840.113549.1.12.10.1.<number>, [0] value }."""
    return enc(tag, enc(id_tag, _BAG + bytes([number])) + enc(0xA0, value))


def cert_bag_value(der: bytes, extra: bytes = b"") -> bytes:
    """CertBag { x509Certificate, [0] OCTET STRING der } (and ``extra`` after it)."""
    return enc(0x30, oid(_X509) + enc(0xA0, enc(0x04, der)) + extra)


def cert_bag(der: bytes, extra: bytes = b"", id_tag: int = 0x06) -> bytes:
    return bag(3, cert_bag_value(der, extra), id_tag=id_tag)


def other_bag(bag_oid: bytes, value: bytes = b"\x30\x00") -> bytes:
    return enc(0x30, oid(bag_oid) + enc(0xA0, value))


def safe(*bags: bytes) -> bytes:
    return enc(0x30, b"".join(bags))


def nested(depth: int, inner: bytes) -> bytes:
    """``inner`` bags inside ``depth`` SafeContents bags."""
    for _ in range(depth):
        inner = bag(6, safe(inner))
    return safe(inner)


def content_info(kind: bytes, content: bytes | None) -> bytes:
    return enc(0x30, oid(kind) + (b"" if content is None else enc(0xA0, content)))


def data_info(safe_contents: bytes | None) -> bytes:
    return content_info(OID_DATA, None if safe_contents is None else enc(0x04, safe_contents))


def mac_data(content: bytes, password: bytes) -> bytes:
    """A SHA-1 MacData over ``content`` under ``password`` (1 iteration)."""
    salt = b"mac-salt"
    key = pkcs12_kdf("sha1", password, salt, KDF_MAC, 1, 20, WorkBudget())
    digest = hmac.new(key, content, hashlib.sha1).digest()
    digest_info = enc(0x30, enc(0x30, oid(_SHA1) + b"\x05\x00") + enc(0x04, digest))
    return enc(0x30, digest_info + enc(0x04, salt) + integer(1))


def pfx(*infos: bytes, mac_password: bytes | None = None, auth_safe: bytes | None = None) -> bytes:
    """A PFX (version 3) of these ContentInfos; a MAC only when ``mac_password`` is given.
    ``auth_safe`` replaces the whole authSafe ContentInfo."""
    content = enc(0x30, b"".join(infos))
    if auth_safe is None:
        auth_safe = data_info(content)
    mac = b"" if mac_password is None else mac_data(content, mac_password)
    return enc(0x30, integer(3) + auth_safe + mac)


def _padded(plain: bytes, block_bytes: int) -> bytes:
    padder = padding.PKCS7(8 * block_bytes).padder()
    return padder.update(plain) + padder.finalize()


def encrypted_info(algorithm: bytes, ciphertext: bytes) -> bytes:
    """ContentInfo { encryptedData, EncryptedData { 0, { data, algorithm, [0] ciphertext }}}."""
    encrypted = enc(0x30, oid(OID_DATA) + algorithm + enc(0x80, ciphertext))
    return content_info(OID_ENCRYPTED_DATA, enc(0x30, integer(0) + encrypted))


def legacy_info(
    plain: bytes, password: bytes, salt: bytes, pbe: int = PBE_3DES, iterations: int = 1
) -> bytes:
    """A SafeContents encrypted with a PKCS#12 PBE (pbeWithSHAAnd3-KeyTripleDES-CBC,
    pbeWithSHAAnd2-KeyTripleDES-CBC or pbeWithSHAAnd128BitRC2-CBC) under ``password``."""
    key_size = {PBE_3DES: 24, PBE_2KEY_3DES: 16, PBE_RC2_128: 16}[pbe]
    key = pkcs12_kdf("sha1", password, salt, KDF_KEY, iterations, key_size, WorkBudget())
    iv = pkcs12_kdf("sha1", password, salt, KDF_IV, iterations, 8, WorkBudget())
    if pbe == PBE_2KEY_3DES:
        key += key[:8]  # K1,K2,K1 (cryptography deprecates 16-byte keys)
    engine = RC2(key) if pbe == PBE_RC2_128 else TripleDES(key)
    encryptor = Cipher(engine, modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(_padded(plain, 8)) + encryptor.finalize()
    return encrypted_info(legacy_algorithm(pbe, salt, iterations), ciphertext)


def legacy_algorithm(pbe: int, salt: bytes, iterations: int) -> bytes:
    params = enc(0x30, enc(0x04, salt) + integer(iterations))
    return enc(0x30, oid(_PKCS12_PBE + bytes([pbe])) + params)


def pbes2_info(plain: bytes, prf: str = "sha1", iterations: int = 1) -> bytes:
    """A SafeContents under PBES2: PBKDF2 (HMAC-SHA1) and AES-256-CBC, empty password.
    Another ``prf`` is only named (the reader refuses it before decrypting)."""
    salt, iv = b"pbes2-salt", bytes(range(16))
    key = hashlib.pbkdf2_hmac("sha1", b"", salt, iterations, 32)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(_padded(plain, 16)) + encryptor.finalize()
    scheme = enc(0x30, oid(_AES256_CBC) + enc(0x04, iv))
    return encrypted_info(_pbes2(salt, iterations, prf, scheme), ciphertext)


def rc5_info() -> bytes:
    """PBES2 with RC5-CBC-Pad (RFC 8018 B.2.4): an algorithm the reader does not offer."""
    params = integer(16) + integer(12) + integer(64) + enc(0x04, bytes(8))
    scheme = enc(0x30, oid(_RC5_CBC) + enc(0x30, params))
    return encrypted_info(_pbes2(b"salt", 1, "sha1", scheme, key_length=16), bytes(16))


def _pbes2(salt: bytes, iterations: int, prf: str, scheme: bytes, key_length: int = 0) -> bytes:
    prf_id = enc(0x30, oid(HMAC_OIDS[prf]) + b"\x05\x00")
    length = integer(key_length) if key_length else b""
    kdf_params = enc(0x30, enc(0x04, salt) + integer(iterations) + length + prf_id)
    kdf = enc(0x30, oid(_PBKDF2) + kdf_params)
    return enc(0x30, oid(_PBES2) + enc(0x30, kdf + scheme))


# --- PKCS#7 ----------------------------------------------------------------------------
def signed_data_with(certificates: bytes | None, tag: int = 0x30) -> bytes:
    """A degenerate SignedData whose ``certificates [0]`` holds exactly these bytes (None:
    the field left out), the SignedData itself tagged ``tag``."""
    body = (
        integer(1)
        + enc(0x31, b"")
        + enc(0x30, oid(OID_DATA))
        + (b"" if certificates is None else enc(0xA0, certificates))
        + enc(0x31, b"")
    )
    return enc(0x30, oid(OID_SIGNED_DATA) + enc(0xA0, enc(tag, body)))
