"""The cryptography of password-less PKCS#12 files, with a bound on its work. Pure.

Hand-written here, and why:
- the PKCS#12 key derivation (RFC 7292 Appendix B): ``cryptography`` uses it only inside
  its own PKCS#12 loader (which refuses the certificates this product exists to find) and
  exposes no KDF for it; the libraries that do (oscrypto) bind OpenSSL through ctypes
  and are unmaintained. It is a loop of hash calls, checked against OpenSSL in the tests.
- RC2 (RFC 2268) with 40-bit keys: the certificate encryption that OpenSSL 1.x and
  LibreSSL still write by default (``pkcs12 -export``), while ``cryptography`` offers RC2
  with 128-bit keys only. Pure Python is slow (10-40 µs a block on this shared machine),
  so its input is capped.
Everything else (PBKDF2, AES, Triple DES, RC4, HMAC) is ``cryptography`` or ``hashlib``.

The bound (DESIGN §2: a work bound per file, by algorithm, not by timeout): a KDF
iteration count above ``MAX_ITERATIONS`` is refused on sight, and all the hash
iterations of one file together may not pass ``MAX_TOTAL_ITERATIONS``. What real tools
write: OpenSSL 1.x and 3.x 2,048 (PKCS12_DEFAULT_ITER) for the MAC and the encryption;
Windows' PFX export 2,000; Java keytool 10,000 since JDK 12 and, before JDK-8153005,
50,000 for encryption and 100,000 for the MAC, the largest default in use. 2^24 took 3-8 s
and 2^31-1 never ended (issue 14); 100,000 costs 0.1-0.2 s here.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

from shared.analysis.read_result import ErrorCode, ReadError

MAX_ITERATIONS = 100_000  # one count (old Java keytool's MAC default)
MAX_TOTAL_ITERATIONS = 400_000  # every derivation of one file, every password tried
MAX_RC2_BYTES = 64 * 1024  # pure-Python RC2 input per file (~0.2 s; ~150 certificates)

# The two encodings of "no password" (RFC 7292 B.1: a BMPString with a 2-byte NUL
# terminator): OpenSSL, Java and Windows turn "" into the terminator alone; a NULL
# password (OpenSSL's API called with NULL, and some other writers) is no bytes at all.
EMPTY_BMP_PASSWORD = b"\x00\x00"
NULL_PASSWORD = b""
KDF_KEY, KDF_IV, KDF_MAC = 1, 2, 3  # RFC 7292 B.3 diversifier IDs

_HASHES: dict[str, tuple[Callable[..., hashlib._Hash], int]] = {  # name -> (new, block v)
    "sha1": (hashlib.sha1, 64),
    "sha224": (hashlib.sha224, 64),
    "sha256": (hashlib.sha256, 64),
    "sha384": (hashlib.sha384, 128),
    "sha512": (hashlib.sha512, 128),
}


def too_costly(what: str) -> ReadError:
    return ReadError(
        ErrorCode.PKCS12_ITERATIONS_TOO_HIGH,
        f"the PKCS#12 file asks for {what}, more than any common tool writes "
        f"(at most {MAX_ITERATIONS:,} per count, {MAX_TOTAL_ITERATIONS:,} in all); "
        "export the certificates as PEM (`openssl pkcs12 -in FILE -nokeys -out cert.pem`)",
    )


class WorkBudget:
    """The hash iterations one file may still spend."""

    def __init__(self) -> None:
        self.spent = 0
        self.rc2_bytes = 0

    def spend(self, iterations: int, blocks: int = 1) -> None:
        if iterations > MAX_ITERATIONS:
            raise too_costly(f"{iterations:,} key-derivation iterations")
        cost = max(iterations, 1) * blocks
        if self.spent + cost > MAX_TOTAL_ITERATIONS:
            raise too_costly(f"over {MAX_TOTAL_ITERATIONS:,} key-derivation iterations in all")
        self.spent += cost

    def spend_rc2(self, size: int) -> None:
        self.rc2_bytes += size
        if self.rc2_bytes > MAX_RC2_BYTES:
            raise ReadError(
                ErrorCode.TOO_LARGE,
                f"the PKCS#12 file holds over {MAX_RC2_BYTES // 1024} KiB under legacy RC2 "
                "encryption; export the certificates as PEM, or again with AES",
            )


def hash_spec(name: str) -> tuple[Callable[..., hashlib._Hash], int] | None:
    return _HASHES.get(name)


def pkcs12_kdf(
    hash_name: str,
    password: bytes,
    salt: bytes,
    diversifier: int,
    iterations: int,
    size: int,
    budget: WorkBudget,
) -> bytes:
    """RFC 7292 Appendix B.2. ``password`` is already the BMPString with its terminator
    (or empty for a NULL password)."""
    spec = _HASHES.get(hash_name)
    if spec is None:
        raise ReadError(ErrorCode.UNSUPPORTED_ENCODING, f"PKCS#12 KDF hash {hash_name!r}")
    new, v = spec
    u = new().digest_size
    blocks = -(-size // u)
    budget.spend(iterations, blocks)  # before any work: refuse without spending it

    def stretch(value: bytes) -> bytes:  # repeated to the next multiple of v bytes
        if not value:
            return b""
        total = v * -(-len(value) // v)
        return (value * (total // len(value) + 1))[:total]

    prefix = bytes([diversifier]) * v
    block_input = bytearray(stretch(salt) + stretch(password))
    out = b""
    for index in range(blocks):
        digest = new(prefix + bytes(block_input)).digest()
        for _ in range(iterations - 1):
            digest = new(digest).digest()
        out += digest
        if index + 1 < blocks:  # I_j = (I_j + B + 1) mod 2^(8v), B = digest repeated to v
            b_value = int.from_bytes((digest * (v // u + 1))[:v], "big") + 1
            for start in range(0, len(block_input), v):
                chunk = int.from_bytes(block_input[start : start + v], "big") + b_value
                block_input[start : start + v] = (chunk & ((1 << (8 * v)) - 1)).to_bytes(v, "big")
    return out[:size]


# --- RC2 (RFC 2268), decryption only -------------------------------------------------
_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)


def _rc2_key_schedule(key: bytes, effective_bits: int) -> list[int]:
    length = len(key)
    expanded = bytearray(128)
    expanded[:length] = key
    for i in range(length, 128):
        expanded[i] = _PITABLE[(expanded[i - 1] + expanded[i - length]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    mask = 0xFF >> (8 * t8 - effective_bits)
    expanded[128 - t8] = _PITABLE[expanded[128 - t8] & mask]
    for i in range(127 - t8, -1, -1):
        expanded[i] = _PITABLE[expanded[i + 1] ^ expanded[i + t8]]
    return [expanded[2 * i] | expanded[2 * i + 1] << 8 for i in range(64)]


def _rc2_decrypt_block(k: list[int], r0: int, r1: int, r2: int, r3: int) -> tuple[int, ...]:
    """One block, as four 16-bit words: the RFC's reverse mixing and mashing rounds,
    unrolled into locals (3x faster than the loop over a list)."""
    j = 63
    for rounds, mash in ((5, True), (6, True), (5, False)):
        for _ in range(rounds):
            r3 = ((r3 >> 5) | (r3 << 11)) & 0xFFFF
            r3 = (r3 - k[j] - (r2 & r1) - (~r2 & r0)) & 0xFFFF
            r2 = ((r2 >> 3) | (r2 << 13)) & 0xFFFF
            r2 = (r2 - k[j - 1] - (r1 & r0) - (~r1 & r3)) & 0xFFFF
            r1 = ((r1 >> 2) | (r1 << 14)) & 0xFFFF
            r1 = (r1 - k[j - 2] - (r0 & r3) - (~r0 & r2)) & 0xFFFF
            r0 = ((r0 >> 1) | (r0 << 15)) & 0xFFFF
            r0 = (r0 - k[j - 3] - (r3 & r2) - (~r3 & r1)) & 0xFFFF
            j -= 4
        if mash:
            r3 = (r3 - k[r2 & 63]) & 0xFFFF
            r2 = (r2 - k[r1 & 63]) & 0xFFFF
            r1 = (r1 - k[r0 & 63]) & 0xFFFF
            r0 = (r0 - k[r3 & 63]) & 0xFFFF
    return r0, r1, r2, r3


def rc2_cbc_decrypt(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """RC2-CBC decryption without padding removal."""
    if len(data) % 8 or len(iv) != 8:
        raise ValueError("RC2-CBC data is not a whole number of blocks")
    keys = _rc2_key_schedule(key, effective_bits)
    out = bytearray()
    p0, p1, p2, p3 = struct.unpack("<4H", iv)
    for c0, c1, c2, c3 in struct.iter_unpack("<4H", data):
        d0, d1, d2, d3 = _rc2_decrypt_block(keys, c0, c1, c2, c3)
        out += struct.pack("<4H", d0 ^ p0, d1 ^ p1, d2 ^ p2, d3 ^ p3)
        p0, p1, p2, p3 = c0, c1, c2, c3
    return bytes(out)
