"""The reader: every upload format people send, every refusal with its own code, and no
private key byte echoed anywhere (result, message, JSON, logs)."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import textwrap
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analyzer_samples import OPENSSL, pca, rules, tenant
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    pkcs7,
    pkcs12,
)
from cryptography.x509.oid import NameOID

from shared.analysis.der import children, element_bytes, read_tlv
from shared.analysis.reader import ErrorCode, ReadResult, Status, read_certificates
from shared.analysis.scan import analyze_bytes, scan_document
from shared.local import samples

needs_openssl = pytest.mark.usefixtures("openssl_command")


def _chain() -> tuple[samples.Issued, samples.Issued]:
    return tenant(), pca()


def _assert_certs(result: ReadResult, expected: list[bytes], fmt: str) -> None:
    assert result.error is None, result.error
    assert result.status is Status.ANALYZED
    assert list(result.certificates) == expected
    assert result.format == fmt


def _openssl(args: list[str], data: bytes | None = None, tmp_path: Path | None = None) -> bytes:
    done = subprocess.run(
        [str(OPENSSL), *args], input=data, capture_output=True, check=True, timeout=30
    )
    return done.stdout


# --- formats that must be read ------------------------------------------------------
def test_pem_single() -> None:
    t, _ = _chain()
    _assert_certs(read_certificates(t.pem), [t.der], "pem")


def test_pem_bundle_keeps_file_order() -> None:
    t, p = _chain()
    _assert_certs(read_certificates(t.pem + b"\n" + p.pem), [t.der, p.der], "pem")
    _assert_certs(read_certificates(p.pem + t.pem), [p.der, t.der], "pem")


@needs_openssl
def test_pem_with_openssl_text_preamble(tmp_path: Path) -> None:
    t, _ = _chain()
    src = tmp_path / "t.pem"
    src.write_bytes(t.pem)
    text = _openssl(["x509", "-text", "-in", str(src)])
    assert b"Certificate:" in text and b"Signature Algorithm" in text  # a real preamble
    _assert_certs(read_certificates(text), [t.der], "pem")


def test_pem_crlf() -> None:
    t, p = _chain()
    data = (t.pem + p.pem).replace(b"\n", b"\r\n")
    assert b"\r\n" in data
    _assert_certs(read_certificates(data), [t.der, p.der], "pem")


def test_pem_utf8_bom() -> None:
    t, _ = _chain()
    _assert_certs(read_certificates(b"\xef\xbb\xbf" + t.pem), [t.der], "pem")


def test_pem_utf16_le_with_bom_as_powershell_redirect_writes_it() -> None:
    t, _ = _chain()
    # PowerShell 5 `>` writes UTF-16 LE with a BOM and CRLF line ends.
    data = b"\xff\xfe" + t.pem.decode("ascii").replace("\n", "\r\n").encode("utf-16-le")
    _assert_certs(read_certificates(data), [t.der], "pem")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_pem_utf16_without_bom(codec: str) -> None:
    t, _ = _chain()
    _assert_certs(read_certificates(t.pem.decode("ascii").encode(codec)), [t.der], "pem")


def test_der_cer() -> None:
    t, _ = _chain()
    _assert_certs(read_certificates(t.der), [t.der], "der")


def test_real_der_and_pem_files() -> None:
    from analyzer_samples import AZPS_POP_PEM, AZPS_TENANT_PEM, GLOVEBOXES_DER

    for path, fmt in ((GLOVEBOXES_DER, "der"), (AZPS_TENANT_PEM, "pem"), (AZPS_POP_PEM, "pem")):
        result = read_certificates(path.read_bytes())
        assert result.status is Status.ANALYZED and result.format == fmt, path
        assert len(result.certificates) == 1


def test_bare_base64_one_line() -> None:
    t, _ = _chain()
    _assert_certs(read_certificates(base64.b64encode(t.der)), [t.der], "base64-der")


def test_bare_base64_wrapped_with_trailing_newline() -> None:
    t, _ = _chain()
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(t.der).decode(), 76)) + "\n"
    _assert_certs(read_certificates(wrapped.encode()), [t.der], "base64-der")
    _assert_certs(read_certificates(wrapped.replace("\n", "\r\n").encode()), [t.der], "base64-der")


def test_pkcs7_der() -> None:
    t, p = _chain()
    data = pkcs7.serialize_certificates([t.certificate, p.certificate], Encoding.DER)
    result = read_certificates(data)
    assert result.status is Status.ANALYZED and result.format == "pkcs7-der"
    assert sorted(result.certificates) == sorted([t.der, p.der])


def test_pkcs7_pem() -> None:
    t, p = _chain()
    data = pkcs7.serialize_certificates([t.certificate, p.certificate], Encoding.PEM)
    assert data.startswith(b"-----BEGIN PKCS7-----")
    result = read_certificates(data)
    assert result.status is Status.ANALYZED and result.format == "pkcs7-pem"
    assert sorted(result.certificates) == sorted([t.der, p.der])


@needs_openssl
def test_pkcs7_ber_from_openssl_crl2pkcs7(tmp_path: Path) -> None:
    t, p = _chain()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(t.pem + p.pem)
    ber = _openssl(["crl2pkcs7", "-nocrl", "-certfile", str(bundle), "-outform", "DER"])
    # Not DER: its certificates SET is unsorted, so cryptography warns and falls back to BER.
    with pytest.warns(UserWarning, match="BER"):
        pkcs7.load_der_pkcs7_certificates(ber)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reader keeps the warning to itself
        result = read_certificates(ber)
    assert result.status is Status.ANALYZED and result.format == "pkcs7-der"
    assert sorted(result.certificates) == sorted([t.der, p.der])

    # The same content with indefinite lengths (what other BER writers produce).
    top = read_tlv(ber, 0, len(ber))
    oid, content = children(ber, top)
    indefinite = (
        b"\x30\x80" + element_bytes(ber, oid) + b"\xa0\x80" + ber[content[1] : content[2]]
    ) + b"\x00\x00\x00\x00"
    result = read_certificates(indefinite)
    assert result.status is Status.ANALYZED and result.format == "pkcs7-der"
    assert sorted(result.certificates) == sorted([t.der, p.der])

    pem_form = _openssl(["crl2pkcs7", "-nocrl", "-certfile", str(bundle)])
    assert pem_form.startswith(b"-----BEGIN PKCS7-----")
    result = read_certificates(pem_form)
    assert result.status is Status.ANALYZED and result.format == "pkcs7-pem"
    assert sorted(result.certificates) == sorted([t.der, p.der])


def test_pkcs12_without_password_and_without_key() -> None:
    t, p = _chain()
    data = pkcs12.serialize_key_and_certificates(
        None, None, t.certificate, [p.certificate], NoEncryption()
    )
    result = read_certificates(data)
    assert result.status is Status.ANALYZED and result.format == "pkcs12"
    assert sorted(result.certificates) == sorted([t.der, p.der])


def test_pkcs12_with_key_and_no_password_is_rejected() -> None:
    t, _ = _chain()
    data = pkcs12.serialize_key_and_certificates(
        b"tenant", t.key, t.certificate, None, NoEncryption()
    )
    result = read_certificates(data)
    assert result.status is Status.REJECTED
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert result.certificates == ()


@pytest.mark.parametrize("with_key", [True, False])
def test_pkcs12_with_password_is_key_material(with_key: bool) -> None:
    """A password-protected .pfx cannot be proven key-free: refused as key material."""
    t, _ = _chain()
    data = pkcs12.serialize_key_and_certificates(
        b"tenant",
        t.key if with_key else None,
        t.certificate,
        None,
        BestAvailableEncryption(b"correct horse"),
    )
    result = read_certificates(data)
    assert result.status is Status.REJECTED
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert "protected by a password" in result.error.message


# --- private keys: refused, and never echoed ------------------------------------------
_RSA = rsa.generate_private_key(65537, 2048)
_EC = ec.generate_private_key(ec.SECP256R1())
KEYS: dict[str, bytes] = {
    "pem-pkcs8": _RSA.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    "pem-rsa": _RSA.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
    "pem-ec": _EC.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
    "pem-encrypted": _EC.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw")
    ),
    "der-pkcs8": _EC.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
    "der-pkcs8-rsa": _RSA.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
    "der-pkcs1": _RSA.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
    "der-sec1": _EC.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
    "der-encrypted-pkcs8": _EC.private_bytes(
        Encoding.DER, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw")
    ),
    "base64-pkcs8": base64.b64encode(
        _EC.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    ),
}
LABELS = {
    "pem-pkcs8": b"-----BEGIN PRIVATE KEY-----",
    "pem-rsa": b"-----BEGIN RSA PRIVATE KEY-----",
    "pem-ec": b"-----BEGIN EC PRIVATE KEY-----",
    "pem-encrypted": b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
}


def _secret_fragments(key: bytes) -> list[bytes]:
    """Every base64 line of a PEM key (or 16-byte run of a DER key), as it could leak."""
    if key.startswith(b"-----BEGIN"):
        lines = [line for line in key.splitlines() if not line.startswith(b"-----")]
        der = base64.b64decode(b"".join(lines))
    elif key[:1] == b"\x30":
        lines, der = [], key
    else:
        lines, der = [key[i : i + 64] for i in range(0, len(key), 64)], base64.b64decode(key)
    runs = [der[i : i + 16] for i in range(0, len(der) - 16, 8)]
    fragments = [line for line in lines if len(line) >= 16]
    fragments += runs + [run.hex().encode() for run in runs]
    fragments += [base64.b64encode(run)[:16] for run in runs]
    return fragments


def _assert_nothing_leaks(key: bytes, *texts: bytes) -> None:
    for fragment in _secret_fragments(key):
        for text in texts:
            assert fragment not in text


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_private_keys_are_rejected_without_echo(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = KEYS[kind]
    if kind in LABELS:
        assert key.startswith(LABELS[kind])
    caplog.set_level(logging.DEBUG)
    result = read_certificates(key)
    assert result.status is Status.REJECTED
    assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
    assert result.certificates == ()
    scanned = analyze_bytes("key.bin", key, rules(), datetime(2024, 1, 1, tzinfo=UTC))
    assert scanned.status is Status.REJECTED
    document = json.dumps(scan_document([scanned])).encode()
    assert '"private-key-material"' in document.decode()
    _assert_nothing_leaks(
        key,
        document,
        result.error.message.encode(),
        str(result.error).encode(),
        repr(result.error).encode(),
        repr(result).encode(),
        caplog.text.encode(),
    )


def test_certificate_plus_key_bundle_is_refused_whole(caplog: pytest.LogCaptureFixture) -> None:
    t, p = _chain()
    key = KEYS["pem-ec"]
    caplog.set_level(logging.DEBUG)
    for data in (t.pem + key, key + t.pem, t.pem + key + p.pem):
        result = read_certificates(data)
        assert result.status is Status.REJECTED
        assert result.error is not None and result.error.code is ErrorCode.PRIVATE_KEY_MATERIAL
        assert result.certificates == ()  # not even the certificates are kept
        scanned = analyze_bytes("bundle.pem", data, rules(), datetime(2024, 1, 1, tzinfo=UTC))
        assert scanned.certificates == ()
        document = json.dumps(scan_document([scanned])).encode()
        _assert_nothing_leaks(key, document, result.error.message.encode(), caplog.text.encode())


def test_key_leak_check_can_fail() -> None:
    """The leak assertion itself catches an echoed key line (guards the guard)."""
    key = KEYS["pem-pkcs8"]
    with pytest.raises(AssertionError):
        _assert_nothing_leaks(key, b"error near " + key.splitlines()[3])
    der = KEYS["der-sec1"]
    with pytest.raises(AssertionError):
        _assert_nothing_leaks(der, der[20:60].hex().encode())


# --- bad inputs: each with its own code -------------------------------------------------
def _csr() -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(_EC, hashes.SHA256())
    )


def _crl() -> x509.CertificateRevocationList:
    issuer = pca()
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(datetime(2020, 1, 1, tzinfo=UTC))
        .next_update(datetime(2020, 2, 1, tzinfo=UTC))
        .sign(issuer.key, hashes.SHA256())
    )


def _empty_pkcs7() -> bytes:
    enc = samples.encode
    signed_data = enc(
        0x30,
        enc(0x02, b"\x01")
        + enc(0x31, b"")
        + enc(0x30, enc(0x06, bytes.fromhex("2a864886f70d010701")))
        + enc(0x31, b""),
    )
    return enc(0x30, enc(0x06, bytes.fromhex("2a864886f70d010702")) + enc(0xA0, signed_data))


def _bad_inputs() -> dict[str, tuple[bytes, Status, ErrorCode]]:
    t, _ = _chain()
    unreadable, rejected = Status.UNREADABLE, Status.REJECTED
    bad_b64 = t.pem.replace(t.pem.splitlines()[2][:4], b"M!*I", 1)
    public_key = _EC.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {
        "empty": (b"", unreadable, ErrorCode.EMPTY),
        "whitespace-only": (b"  \r\n\t\n  ", unreadable, ErrorCode.EMPTY),
        "random-binary": (
            bytes.fromhex("8f3a") + os.urandom(0) + bytes(range(256)) * 2,
            unreadable,
            ErrorCode.NOT_A_CERTIFICATE,
        ),
        "text-garbage": (
            b"Hello,\nthis is my certificate!!! (not really)\n",
            unreadable,
            ErrorCode.NOT_A_CERTIFICATE,
        ),
        "truncated-der": (t.der[: len(t.der) // 2], unreadable, ErrorCode.TRUNCATED),
        "truncated-pem": (b"\n".join(t.pem.splitlines()[:6]), unreadable, ErrorCode.TRUNCATED),
        "invalid-base64-in-pem": (bad_b64, unreadable, ErrorCode.MALFORMED_PEM),
        "csr-pem": (_csr().public_bytes(Encoding.PEM), unreadable, ErrorCode.CERTIFICATE_REQUEST),
        "csr-der": (_csr().public_bytes(Encoding.DER), unreadable, ErrorCode.CERTIFICATE_REQUEST),
        "crl-pem": (_crl().public_bytes(Encoding.PEM), unreadable, ErrorCode.CRL),
        "crl-der": (_crl().public_bytes(Encoding.DER), unreadable, ErrorCode.CRL),
        "public-key": (public_key, unreadable, ErrorCode.PUBLIC_KEY_ONLY),
        "unknown-pem-block": (
            samples.pem(b"\x30\x03\x02\x01\x05", "WIDGET CONFIG"),
            unreadable,
            ErrorCode.UNSUPPORTED_PEM_BLOCK,
        ),
        "der-with-trailing-bytes": (t.der + b"\x00\x00", unreadable, ErrorCode.MALFORMED_DER),
        "pkcs7-without-certificates": (_empty_pkcs7(), unreadable, ErrorCode.NO_CERTIFICATES),
        "pkcs12-garbage": (  # cannot be proven key-free
            samples.encode(0x30, b"\x02\x01\x03" + samples.encode(0x30, b"\x05\x00")),
            rejected,
            ErrorCode.PRIVATE_KEY_MATERIAL,
        ),
        "utf16-not-decodable": (b"\xff\xfe\x00\xd8A\x00", unreadable, ErrorCode.BAD_TEXT_ENCODING),
        "other-der": (samples.encode(0x30, b"\x05\x00"), unreadable, ErrorCode.NOT_A_CERTIFICATE),
        "too-large": (t.pem, rejected, ErrorCode.TOO_LARGE),
    }


@pytest.mark.parametrize("name", sorted(_bad_inputs()))
def test_bad_input_has_its_own_code(name: str) -> None:
    data, status, code = _bad_inputs()[name]
    max_bytes = 64 if name == "too-large" else 1_048_576
    result = read_certificates(data, max_bytes=max_bytes)
    assert result.status is status, (name, result.error)
    assert result.error is not None and result.error.code is code, (name, result.error)
    assert result.error.message and "\n" not in result.error.message
    assert result.certificates == ()
    # The whole analysis gives the same answer in the scan/v1 shape.
    scanned = analyze_bytes(name, data, rules(), max_bytes=max_bytes)
    body = scanned.to_json()
    assert body["status"] == str(status)
    assert body["error"] == {"code": str(code), "message": result.error.message}
    assert body["certificates"] == []


def test_too_large_is_refused_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.analysis.reader as reader

    calls: list[int] = []
    real_read = reader._read

    def spy(data: bytes) -> ReadResult:
        calls.append(len(data))
        return real_read(data)

    monkeypatch.setattr(reader, "_read", spy)
    result = read_certificates(b"-----BEGIN CERTIFICATE-----" + b"A" * 5000, max_bytes=4096)
    assert result.status is Status.REJECTED and result.error is not None
    assert result.error.code is ErrorCode.TOO_LARGE
    assert "4096" in result.error.message
    assert calls == []  # refused before any decoding
    # At the limit exactly, the file is read.
    t, _ = _chain()
    assert read_certificates(t.pem, max_bytes=len(t.pem)).status is Status.ANALYZED
    assert calls == [len(t.pem)]
    assert read_certificates(t.pem, max_bytes=len(t.pem) - 1).status is Status.REJECTED
    assert calls == [len(t.pem)]


def test_library_failure_becomes_an_error_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asn1crypto import cms

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("library bug")

    from shared.analysis import pkcs7 as pkcs7_reader

    monkeypatch.setattr(pkcs7_reader, "_read_der", lambda _: None)  # the library path
    monkeypatch.setattr(cms.ContentInfo, "load", broken)
    t, _ = _chain()
    data = pkcs7.serialize_certificates([t.certificate], Encoding.DER)
    result = read_certificates(data)
    assert result.status is Status.UNREADABLE and result.error is not None


def test_damaged_certificate_in_a_bundle_keeps_the_others() -> None:
    t, p = _chain()
    broken = bytearray(p.der)
    broken[-80] ^= 0xFF  # inside the signature: still a certificate
    broken_tbs = p.der[:4] + b"\x02" + p.der[5:]  # TBSCertificate tag replaced: malformed
    data = t.pem + samples.pem(broken_tbs)
    scanned = analyze_bytes("bundle.pem", data, rules())
    assert scanned.status is Status.UNREADABLE
    assert scanned.error is not None and scanned.error.code is ErrorCode.MALFORMED_CERTIFICATE
    assert "certificate 2 of 2" in scanned.error.message
    assert [c.facts.der for c in scanned.certificates] == [t.der]


def test_trusted_certificate_label_drops_openssl_trust_settings() -> None:
    t, _ = _chain()
    trust = samples.encode(0x30, samples.encode(0x30, samples.encode(0x06, b"\x2b\x06\x01")))
    data = samples.pem(t.der + trust, "TRUSTED CERTIFICATE")
    _assert_certs(read_certificates(data), [t.der], "pem")


@pytest.mark.parametrize(
    "data",
    [b"\x00", b"\x30", b"\x30\x80", b"\x30\x84\xff\xff\xff\xff", b"-----BEGIN ", b"\xff\xfe"],
)
def test_tiny_inputs_never_raise(data: bytes) -> None:
    result = read_certificates(data)
    assert result.status in (Status.UNREADABLE, Status.REJECTED)
    assert result.error is not None and result.error.code in ErrorCode
