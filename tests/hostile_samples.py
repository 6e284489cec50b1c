"""Wrapped and hostile inputs for the reader: incident certificates inside PKCS#7 and
PKCS#12, and the corpus of issue 14 (files that once cost minutes or never ended).

Not a test module; tests/test_wrappers.py, tests/test_work_bounds.py and
scripts/bench_hostile.py import it. Deterministic keys (``shared.local.samples``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.analysis.der import read_tlv
from shared.local import samples

OPENSSL = shutil.which("openssl")
_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_OID_DATA = bytes.fromhex("2a864886f70d010701")
enc = samples.encode


def signed_data(ders: list[bytes]) -> bytes:
    """A degenerate SignedData (certificates only), as ``download-chain`` writes it."""
    body = (
        enc(0x02, b"\x01")
        + enc(0x31, b"")
        + enc(0x30, enc(0x06, _OID_DATA))
        + enc(0xA0, b"".join(ders))
        + enc(0x31, b"")
    )
    return enc(0x30, enc(0x06, _OID_SIGNED_DATA) + enc(0xA0, enc(0x30, body)))


def openssl(args: list[str], stdin: bytes | None = None) -> bytes:
    if OPENSSL is None:
        raise RuntimeError("the openssl command is required")
    done = subprocess.run(
        [OPENSSL, *args], input=stdin, capture_output=True, check=True, timeout=60
    )
    return done.stdout


def openssl_crl2pkcs7(ders: list[bytes], outform: str = "DER") -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle.pem"
        bundle.write_bytes(b"".join(samples.pem(der) for der in ders))
        return openssl(["crl2pkcs7", "-nocrl", "-certfile", str(bundle), "-outform", outform])


def openssl_pkcs12(
    ders: list[bytes], extra: tuple[str, ...] = (), password: str = "", key_pem: bytes = b""
) -> bytes:
    """``openssl pkcs12 -export -nokeys -passout pass:`` (or with a key, or a password)."""
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle.pem"
        bundle.write_bytes(b"".join(samples.pem(der) for der in ders))
        args = ["pkcs12", "-export", "-in", str(bundle), "-passout", f"pass:{password}"]
        if key_pem:
            (Path(folder) / "key.pem").write_bytes(key_pem)
            args += ["-inkey", str(Path(folder) / "key.pem")]
        else:
            args.append("-nokeys")
        return openssl([*args, *extra])


def with_iterations(pfx_der: bytes, mac: int | None = None, bags: int | None = None) -> bytes:
    """The PKCS#12 with its MAC and/or encrypted-bag iteration counts replaced (the MAC
    then no longer holds: a reader must refuse the count before it computes anything)."""
    pfx = asn1_pkcs12.Pfx.load(pfx_der)
    if mac is not None:
        pfx["mac_data"]["iterations"] = mac
    if bags is not None:
        safes = asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native)
        for info in safes:
            if info["content_type"].native != "encrypted_data":
                continue
            algorithm = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]
            params = algorithm["parameters"]
            if algorithm["algorithm"].native == "pbes2":
                params["key_derivation_func"]["parameters"]["iteration_count"] = bags
            else:
                params["iterations"] = bags
        pfx["auth_safe"]["content"] = asn1_pkcs12.AuthenticatedSafe(list(safes)).dump(force=True)
        if mac is None:  # the MAC no longer holds: drop it, so the bags are what is read
            pfx = asn1_pkcs12.Pfx({"version": 3, "auth_safe": pfx["auth_safe"]})
    return pfx.dump(force=True)


# --- the hostile corpus (issue 14, plus our own) ----------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@cache
def _key(seed: int, curve: type[ec.EllipticCurve] = ec.SECP256R1) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x5EED0000 + seed, curve())


def self_signed(
    serial: int,
    key_seed: int = 1,
    signer_seed: int | None = None,
    curve: type[ec.EllipticCurve] = ec.SECP256R1,
) -> bytes:
    """A self-issued certificate named "hostile"; signed by another key when
    ``signer_seed`` differs (so it never verifies under any certificate of the file)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    start = datetime(2020, 1, 1, tzinfo=UTC)
    key = _key(key_seed, curve)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("hostile"))
        .issuer_name(_name("hostile"))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(_key(key_seed if signer_seed is None else signer_seed, curve), hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def flipped(der: bytes) -> bytes:
    broken = bytearray(der)
    broken[-5] ^= 0x01  # inside the signature value: still a certificate
    return bytes(broken)


def _distinct_unverifiable(count: int) -> list[bytes]:
    # Distinct certificates of one name, none signed by a key any of them holds: the
    # worst case for a chain builder that tries every same-name candidate.
    return [
        self_signed(0x1000 + index, key_seed=1 + index % 7, signer_seed=99)
        for index in range(count)
    ]


def many_encrypted_safes(count: int, iterations: int) -> bytes:
    """A PKCS#12 without a MAC whose ``count`` encrypted safes each derive their key with
    ``iterations`` (under the per-count cap): only the per-file total stops it."""
    one = asn1_pkcs12.Pfx.load(openssl_pkcs12([self_signed(0x53)], ("-iter", str(iterations))))
    safes = asn1_pkcs12.AuthenticatedSafe.load(one["auth_safe"]["content"].native)
    many = asn1_pkcs12.AuthenticatedSafe([safes[0].copy() for _ in range(count)])
    pfx = asn1_pkcs12.Pfx(
        {"version": 3, "auth_safe": {"content_type": "data", "content": many.dump(force=True)}}
    )
    return pfx.dump(force=True)


def _indefinite(der: bytes) -> bytes:
    """The outer SEQUENCE in BER with an indefinite length: the asn1crypto path."""
    top = read_tlv(der, 0, len(der))
    return b"\x30\x80" + der[top[1] :] + b"\x00\x00"


def hostile_corpus(scale: float = 1.0) -> dict[str, Callable[[], bytes]]:
    """name -> a maker of the file (lazy: the big ones take seconds to build). ``scale``
    shrinks the counts for smoke runs; 1.0 is the issue's size."""

    def n(count: int) -> int:
        return max(2, int(count * scale))

    cert = flipped(self_signed(0x77))

    def pkcs12_iterations(mac: int | None, bags: int | None) -> Callable[[], bytes]:
        return lambda: with_iterations(
            openssl_pkcs12([self_signed(0x78)], ("-iter", "2048")), mac, bags
        )

    corpus: dict[str, Callable[[], bytes]] = {
        "flipped-signature-x1000.pem": lambda: samples.pem(cert) * n(1000),
        "flipped-signature-1MiB.pem": lambda: samples.pem(cert) * n(1473),
        "pkcs7-1000-distinct.p7b": lambda: signed_data(_distinct_unverifiable(n(1000))),
        "begin-lines-58222.pem": lambda: b"-----BEGIN X-----\n" * n(58222),
        "begin-then-1MiB-label.pem": lambda: b"-----BEGIN " + b"A" * n(1_048_000),
        "ber-nesting-1MiB.der": lambda: b"\x30\x80" * n(500_000),
        "pkcs7-ber-nesting.p7b": lambda: (
            b"\x30\x80\x06\x09" + _OID_SIGNED_DATA + b"\xa0\x80" * n(400_000)
        ),
        "pkcs7-pem-blocks-x2000.pem": lambda: samples.pem(signed_data([cert]), "PKCS7") * n(2000),
        "pkcs7-1MiB-one-cert.p7b": lambda: signed_data([cert] * n(2400)),
        "pkcs7-ber-2400-copies.p7b": lambda: _indefinite(signed_data([cert] * n(2400))),
        "utf16-begin-lines.pem": lambda: ("-----BEGIN X-----\n" * n(29000)).encode("utf-16"),
    }
    corpus["pkcs7-400-distinct-p521.p7b"] = lambda: signed_data(
        [self_signed(0x5000 + index, 1 + index % 5, 97, ec.SECP521R1) for index in range(n(400))]
    )
    if OPENSSL is not None:
        corpus["pkcs12-total-iterations-at-cap.p12"] = lambda: many_encrypted_safes(n(40), 99_000)
        corpus["pkcs12-rc2-40-near-cap.p12"] = lambda: openssl_pkcs12(
            [self_signed(0x7A)] * n(150), ("-legacy",)
        )  # pure-Python RC2 just under its 64 KiB cap
        corpus["pkcs12-clear-bags-1MiB.p12"] = lambda: openssl_pkcs12(
            [cert] * n(2400), ("-certpbe", "NONE")
        )
        corpus["pkcs12-rc2-40-over-cap.p12"] = lambda: openssl_pkcs12(
            [self_signed(0x7B)] * n(400), ("-legacy",)
        )
        corpus["pkcs12-mac-iterations-2^31-1.p12"] = pkcs12_iterations(2**31 - 1, None)
        corpus["pkcs12-bag-iterations-2^31-1.p12"] = pkcs12_iterations(None, 2**31 - 1)
        corpus["pkcs12-both-iterations-2^24.p12"] = pkcs12_iterations(2**24, 2**24)
        corpus["pkcs12-legacy-bag-iterations-2^31-1.p12"] = lambda: with_iterations(
            openssl_pkcs12([self_signed(0x79)], ("-legacy",)), None, 2**31 - 1
        )
    return corpus
