"""The hand-written cryptography of PKCS#12 files (``pkcs12_crypto``) against answers it did
not compute: the RFC 7292 key derivation against ``openssl kdf ... PKCS12KDF``, RC2
against the RFC 2268 vectors and ``cryptography``'s RC2, and the work bound at its edges
with the messages a user reads (issue 16: mutation testing).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import RC2
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hostile_samples import openssl

from shared.analysis.pkcs12_crypto import (
    MAX_ITERATIONS,
    MAX_RC2_BYTES,
    MAX_TOTAL_ITERATIONS,
    WorkBudget,
    pkcs12_kdf,
    rc2_cbc_decrypt,
)
from shared.analysis.read_result import ErrorCode, ReadError

needs_openssl = pytest.mark.usefixtures("openssl_command")  # fails under CI when missing

_LONG_SALT = bytes(range(1, 71)).hex()  # over one 64-byte block (SHA-1, SHA-256)
_HUGE_SALT = bytes(range(1, 131)).hex()  # over one 128-byte block (SHA-384, SHA-512)
_LONG_PASSWORD = ("p" * 70).encode("utf-16-be").hex() + "0000"  # 142 bytes, BMP + NUL

# hash, password (hex; "" is the NULL password, "0000" the empty BMPString), salt (hex),
# diversifier ID, iterations, size -> the key `openssl kdf -keylen <size> -kdfopt
# digest:<hash> -kdfopt hexpass:<password> -kdfopt hexsalt:<salt> -kdfopt iter:<n>
# -kdfopt id:<id> PKCS12KDF` printed (OpenSSL 3.0). LONGSALT etc. stand for the values above.
KDF_VECTORS = [
    (
        "sha1",
        "",
        "0102030405060708",
        1,
        1,
        20,
        "39d3776b5e1e17a1db1cb6db5ebea05d6ea2fc0e",
    ),
    (
        "sha1",
        "0000",
        "0102030405060708",
        1,
        3,
        24,
        "c3cbf6220d52e0173db485a193f6ea56442cd05873509168",
    ),
    (
        "sha1",
        "0000",
        "0102030405060708",
        2,
        3,
        8,
        "98f23a5dc57f4469",
    ),
    (
        "sha1",
        "0000",
        "0102030405060708",
        3,
        3,
        20,
        "e1ca2b372b0ed9edf1e3a521108564aa7dd59922",
    ),
    (
        "sha1",
        "",
        "0102030405060708",
        1,
        3,
        24,
        "f65349bf44fdb7b349ee66e87bd03a027d9a079be1a086f2",
    ),
    (
        "sha1",
        "0061006200630000",
        "0102030405060708",
        1,
        2,
        24,
        "4eee8b0c4c92b409ee16b0ec3bb68b2a846362ea0a38d7e4",
    ),
    (
        "sha1",
        "0000",
        "",
        3,
        2,
        20,
        "e559440d35c83217660e09ddd83a8598935a43a9",
    ),
    (
        "sha1",
        "0000",
        "LONGSALT",
        1,
        2,
        100,
        "cd8d81e928a2ebfc390492ff9382082fda5794618fa26854f1e656b090ee5ec6"
        "e90d395e3189b32313904d5ce3b7e5bc2a84551d47fecd46704d42820b2d3ad1"
        "55178d6354c4e928ec02078d769731efe81b12735dc92ff046f5aade332b354c"
        "f6b3e34e",
    ),
    (
        "sha1",
        "LONGPASS",
        "LONGSALT",
        2,
        1,
        61,
        "4e725f4a8526cc8eac13bdc7b53bda715a23e99cb4e56e490cce4b2f6d9743b1"
        "778f036c6c5219a992b943727343f6f0de5c842f402c114ebe396a3f33",
    ),
    (
        "sha224",
        "0000",
        "0102030405060708",
        1,
        2,
        40,
        "694294c5222479fdd4a97e610690e59e16763424aab87d470308631b82d158d79181d539dd495d1b",
    ),
    (
        "sha256",
        "0000",
        "0102030405060708",
        1,
        3,
        32,
        "e86257faa66c680f050c9f228dab96cc6a50574c9d0fae5e22e383649bcdf843",
    ),
    (
        "sha256",
        "0000",
        "0102030405060708",
        3,
        3,
        32,
        "22fb4e1fdd8c4b243e16b1e0eecff2241431c61c0c3419677b596f5b178b2a0f",
    ),
    (
        "sha256",
        "LONGPASS",
        "0102030405060708",
        1,
        2,
        100,
        "c6aa922cbba62a32bc64e6d4e9b94db6fa432a55757c815e993e3f7c68a8046e"
        "aa81a4315b0f1f98a09bfd60fbb11d69b2f564cfdaea22c8aac867b8fd34975b"
        "983248325332302abe1e510d5948865de9bff1a906f91a0c37b67a2bfcaf1e7d"
        "7e657688",
    ),
    (
        "sha384",
        "0000",
        "0102030405060708",
        1,
        2,
        48,
        "664a1778dea1b680b618fffd4b4097c6fde3c8d62791768a9309244bfffc534a"
        "829a6d3258dfe29a834cfa4457705210",
    ),
    (
        "sha384",
        "0000",
        "HUGESALT",
        1,
        2,
        100,
        "f2f3850b494dd1655478aa55c32364f728d28a3658f4ccf3c23a60e816a7067d"
        "22f19eea91952407a2efc1734b25b12bd7f2f8fc2819c2fdb389a15641c9d063"
        "9ce309a9b5b4e8c315f36bc13d4ebedb4414b2ab02531cb2bf77f61708896b1f"
        "de93ddb6",
    ),
    (
        "sha512",
        "0000",
        "0102030405060708",
        3,
        2,
        64,
        "1954f733b0f13a80278e74693c9caaab49fc902c05c3d4c5268af0105806d440"
        "ce3150b9e374e9a1f8884e6375d0d3af4b025e08120458db62714d82b7eb8889",
    ),
    (
        "sha512",
        "LONGPASS",
        "HUGESALT",
        1,
        2,
        200,
        "dcdf987a46952b77c1d10357b11150bded71e4cacec6c4a0a87595d619e14f91"
        "5a686f75a947f9617c2aeb4226be0750704964aac8f3c54b1e58248319992093"
        "a14d4ce2218d245aedeb59ef18a33a2bc0c5201e1d5f9621d65538fd46d37788"
        "c0297ec2d7b529e010888269fc5e67f426c31783a0b0b677968b3a5a73a9112f"
        "499cfb9be51b8ca29afdb1f10896adf66cebd0c186b040880039d3dafc148cea"
        "82056da02755ac0ab7c5a86e47b398e3409a028936e3f13104a4a1d3c951e22e"
        "9ab5eda590963b0b",
    ),
    (
        "sha512",
        "",
        "0102030405060708",
        2,
        1,
        16,
        "77cb677f912fbf6d8ff7e227c8b31d8a",
    ),
]


def _hex(value: str) -> bytes:
    value = value.replace("LONGSALT", _LONG_SALT).replace("HUGESALT", _HUGE_SALT)
    return bytes.fromhex(value.replace("LONGPASS", _LONG_PASSWORD))


@pytest.mark.parametrize(
    ("hash_name", "password", "salt", "diversifier", "iterations", "size", "expected"),
    KDF_VECTORS,
)
def test_pkcs12_kdf_gives_what_openssl_gives(
    hash_name: str,
    password: str,
    salt: str,
    diversifier: int,
    iterations: int,
    size: int,
    expected: str,
) -> None:
    budget = WorkBudget()
    key = pkcs12_kdf(hash_name, _hex(password), _hex(salt), diversifier, iterations, size, budget)
    assert key.hex() == expected


@needs_openssl
def test_the_kdf_vectors_are_what_openssl_prints() -> None:
    """The table above is OpenSSL's answer, not a copy of ours."""
    for hash_name, password, salt, diversifier, iterations, size, expected in KDF_VECTORS:
        args = ["kdf", "-keylen", str(size), "-kdfopt", f"digest:{hash_name.upper()}"]
        args += ["-kdfopt", f"hexpass:{_hex(password).hex()}"]
        args += ["-kdfopt", f"hexsalt:{_hex(salt).hex()}", "-kdfopt", f"iter:{iterations}"]
        printed = openssl([*args, "-kdfopt", f"id:{diversifier}", "PKCS12KDF"])
        assert printed.decode().strip().replace(":", "").lower() == expected


def test_an_unknown_kdf_hash_is_refused() -> None:
    with pytest.raises(ReadError) as refused:
        pkcs12_kdf("md5", b"\0\0", b"salt", 1, 1, 8, WorkBudget())
    assert refused.value.code is ErrorCode.UNSUPPORTED_ENCODING
    assert refused.value.message == "PKCS#12 KDF hash 'md5'"


# RFC 2268 section 5: key, effective key bits, plaintext, ciphertext (one block, so CBC
# with a zero IV is the bare cipher).
RC2_VECTORS = [
    ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
    ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
    ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
    ("88", 64, "0000000000000000", "61a8a244adacccf0"),
    ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
    ("88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"),
    ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
    (
        "88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e",
        129,
        "0000000000000000",
        "5b78d3a43dfff1f1",
    ),
]


@pytest.mark.parametrize(("key", "bits", "plaintext", "ciphertext"), RC2_VECTORS)
def test_rc2_decrypts_the_rfc_2268_vectors(
    key: str, bits: int, plaintext: str, ciphertext: str
) -> None:
    decrypted = rc2_cbc_decrypt(bytes.fromhex(key), bits, bytes(8), bytes.fromhex(ciphertext))
    assert decrypted.hex() == plaintext


def test_rc2_cbc_chains_blocks_like_cryptography() -> None:
    """Many blocks, a non-zero IV: what ``cryptography``'s RC2 (128-bit keys) encrypted."""
    key, iv, plaintext = bytes(range(16)), bytes(range(8, 16)), bytes(range(256)) * 2
    encryptor = Cipher(RC2(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    assert rc2_cbc_decrypt(key, 128, iv, ciphertext) == plaintext


# --- the work bound, at its edges --------------------------------------------------------
def _too_costly(what: str) -> str:
    return (
        f"the PKCS#12 file asks for {what}, more than any common tool writes "
        "(at most 100,000 per count, 400,000 in all); export the certificates as PEM "
        "(`openssl pkcs12 -in FILE -nokeys -out cert.pem`)"
    )


def test_one_count_at_the_cap_is_spent_and_one_more_is_refused() -> None:
    budget = WorkBudget()
    budget.spend(MAX_ITERATIONS)
    assert budget.spent == MAX_ITERATIONS
    with pytest.raises(ReadError) as refused:
        WorkBudget().spend(MAX_ITERATIONS + 1)
    assert refused.value.code is ErrorCode.PKCS12_ITERATIONS_TOO_HIGH
    assert refused.value.message == _too_costly("100,001 key-derivation iterations")


def test_the_total_may_reach_the_cap_and_not_pass_it() -> None:
    budget = WorkBudget()
    budget.spend(MAX_ITERATIONS, 3)
    budget.spend(MAX_ITERATIONS - 1)
    budget.spend(1)  # exactly MAX_TOTAL_ITERATIONS
    assert budget.spent == MAX_TOTAL_ITERATIONS
    with pytest.raises(ReadError) as refused:
        budget.spend(0)  # even a count of zero costs one hash
    assert refused.value.code is ErrorCode.PKCS12_ITERATIONS_TOO_HIGH
    assert refused.value.message == _too_costly("over 400,000 key-derivation iterations in all")
    assert budget.spent == MAX_TOTAL_ITERATIONS  # a refused derivation spends nothing


def test_the_kdf_spends_one_count_per_output_block() -> None:
    """SHA-1 gives 20 bytes a block: a 24-byte 3DES key costs two counts, an 8-byte IV one."""
    budget = WorkBudget()
    pkcs12_kdf("sha1", b"\0\0", b"salt", 1, 1000, 24, budget)
    assert budget.spent == 2000
    pkcs12_kdf("sha1", b"\0\0", b"salt", 2, 1000, 8, budget)
    assert budget.spent == 3000
    with pytest.raises(ReadError):  # refused before any hashing: nothing more spent
        pkcs12_kdf("sha512", b"\0\0", b"salt", 1, MAX_ITERATIONS, 200, budget)
    assert budget.spent == 3000


def test_rc2_input_may_reach_the_cap_and_not_pass_it() -> None:
    budget = WorkBudget()
    budget.spend_rc2(MAX_RC2_BYTES - 8)
    budget.spend_rc2(8)
    assert budget.rc2_bytes == MAX_RC2_BYTES
    with pytest.raises(ReadError) as refused:
        budget.spend_rc2(8)
    assert refused.value.code is ErrorCode.TOO_LARGE
    assert refused.value.message == (
        "the PKCS#12 file holds over 64 KiB under legacy RC2 encryption; export the "
        "certificates as PEM, or again with AES"
    )
