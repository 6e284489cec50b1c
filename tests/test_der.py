"""The hand DER walk and the reader never raise on hostile bytes (hypothesis), and
read_tlv refuses what DER forbids."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime

import pytest
from analyzer_samples import AZPS_POP_PEM, GLOVEBOXES_DER, rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.analysis import der, pem
from shared.analysis.der import DerError, parse_certificate, read_tlv
from shared.analysis.reader import ErrorCode, Status, read_certificates
from shared.analysis.scan import analyze_bytes

NOW = datetime(2024, 1, 1, tzinfo=UTC)
REAL_DER = GLOVEBOXES_DER.read_bytes()
REAL_PEM = AZPS_POP_PEM.read_bytes()
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_never_raises(data: bytes) -> None:
    result = read_certificates(data)
    if result.status is Status.ANALYZED:
        assert result.error is None and result.certificates
    else:
        assert result.error is not None and result.error.code in ErrorCode
        assert result.certificates == ()
    scanned = analyze_bytes("fuzz", data, rules(), NOW)
    assert scanned.status in (Status.ANALYZED, Status.UNREADABLE, Status.REJECTED)
    assert (scanned.error is None) == (scanned.status is Status.ANALYZED)
    scanned.to_json()


def _check_der_errors(data: bytes) -> None:
    with contextlib.suppress(DerError):  # the only exception allowed
        parse_certificate(data)


# --- mutations of real certificates --------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0x00, 0x30, 0x80, 0x81, 0x84, 0xFF, 0x1F]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _check_never_raises(data)
    _check_der_errors(data)


@FUZZ
@given(mutated(REAL_DER))
def test_mutated_der_never_raises(data: bytes) -> None:
    _check_never_raises(data)
    _check_der_errors(data)


@FUZZ
@given(mutated(REAL_PEM))
def test_mutated_pem_never_raises(data: bytes) -> None:
    _check_never_raises(data)


@FUZZ
@given(mutated(base64.b64encode(REAL_DER)))
def test_mutated_base64_never_raises(data: bytes) -> None:
    _check_never_raises(data)


@FUZZ
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_der_prefixed_garbage(prefix: bytes, suffix: bytes) -> None:
    data = b"\x30" + prefix + REAL_DER[: len(suffix)] + suffix
    _check_never_raises(data)
    _check_der_errors(data)


_TEXT = st.text(
    alphabet=st.sampled_from(list("-ABCDEFGHIJKLMNOPQRSTUVWXYZ #/\n=ab+")), max_size=200
)


@FUZZ
@given(
    st.lists(
        st.one_of(_TEXT, st.sampled_from(["-----BEGIN ", "-----END ", "CERTIFICATE", "-----"])),
        max_size=12,
    )
)
def test_pem_block_scanner_matches_the_reference_regex(parts: list[str]) -> None:
    """The hand scanner finds exactly what the (slower) back-reference regex finds."""
    text = "".join(parts).encode()
    assert pem._pem_blocks(text) == pem.PEM_BLOCK_REFERENCE.findall(text)


def test_every_single_truncation_of_a_real_certificate() -> None:
    for end in range(len(REAL_DER)):
        result = read_certificates(REAL_DER[:end])
        assert result.status is not Status.ANALYZED, end
        with pytest.raises(DerError):
            parse_certificate(REAL_DER[:end])


def test_real_certificate_parses() -> None:
    layout = parse_certificate(REAL_DER)
    assert layout.is_ca is True
    assert layout.inner_algorithm == layout.outer_algorithm


# --- read_tlv -------------------------------------------------------------------------------
def test_read_tlv_short_form() -> None:
    assert read_tlv(b"\x02\x01\x05", 0, 3) == (0x02, 2, 3)
    assert read_tlv(b"\x05\x00", 0, 2) == (0x05, 2, 2)


def test_read_tlv_long_form() -> None:
    data = b"\x04\x81\x80" + b"x" * 0x80
    assert read_tlv(data, 0, len(data)) == (0x04, 3, 3 + 0x80)
    data = b"\x04\x82\x01\x00" + b"x" * 0x100
    assert read_tlv(data, 0, len(data)) == (0x04, 4, 4 + 0x100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x30\x80\x00\x00", "indefinite length"),
        (b"\x04\x81\x05hello", "non-minimal"),  # 5 fits the short form
        (b"\x04\x82\x00\x05hello", "non-minimal"),  # leading zero length octet
        (b"\x04\x85\x01\x00\x00\x00\x00", "too large"),
        (b"\x04\x05abc", "truncated"),
        (b"\x04", "truncated"),
        (b"", "truncated"),
        (b"\x04\x82\x01", "truncated"),  # the length octets themselves run out
        (b"\x1f\x01\x00", "high tag"),
    ],
)
def test_read_tlv_refuses(data: bytes, message: str) -> None:
    with pytest.raises(DerError, match=message):
        read_tlv(data, 0, len(data))


def test_read_tlv_respects_the_parent_limit() -> None:
    data = b"\x30\x03\x02\x01\x05\xff"
    assert read_tlv(data, 0, 5) == (0x30, 2, 5)
    with pytest.raises(DerError, match="truncated"):
        read_tlv(data, 0, 4)  # the parent ends before the element does


def test_children_walk_and_refuse_overrun() -> None:
    data = b"\x30\x06\x02\x01\x01\x02\x01\x02"
    assert der.children(data, read_tlv(data, 0, len(data))) == [(2, 4, 5), (2, 7, 8)]
    broken = b"\x30\x06\x02\x01\x01\x02\x02\x02"  # the second child claims a byte too many
    with pytest.raises(DerError):
        der.children(broken, read_tlv(broken, 0, len(broken)))


@pytest.mark.parametrize(
    ("content", "dotted"),
    [
        (bytes.fromhex("2a8648ce3d040302"), "1.2.840.10045.4.3.2"),
        (bytes.fromhex("551d13"), "2.5.29.19"),
        (bytes.fromhex("8837"), "2.999"),
    ],
)
def test_decode_oid(content: bytes, dotted: str) -> None:
    assert der.decode_oid(content) == dotted


@pytest.mark.parametrize("content", [b"", b"\x2a\x86", b"\x2a\x80\x01"])
def test_decode_oid_refuses(content: bytes) -> None:
    with pytest.raises(DerError):
        der.decode_oid(content)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (b"\x17\x0d491231235959Z", datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (b"\x17\x0d500101000000Z", datetime(1950, 1, 1, tzinfo=UTC)),
        (b"\x18\x0f20500101000000Z", datetime(2050, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time(encoded: bytes, expected: datetime) -> None:
    assert der.parse_time(encoded, read_tlv(encoded, 0, len(encoded))) == expected


@pytest.mark.parametrize(
    "encoded",
    [b"\x17\x0d491331235959Z", b"\x17\x0d4912312359590", b"\x17\x0d49123123595+Z", b"\x02\x01\x00"],
)
def test_parse_time_refuses(encoded: bytes) -> None:
    with pytest.raises(DerError):
        der.parse_time(encoded, read_tlv(encoded, 0, len(encoded)))


@pytest.mark.parametrize("text", [b"+00701120000Z", b" 00701120000Z", b"-0200701120000Z"])
def test_validity_times_refuse_what_int_would_accept(text: bytes) -> None:
    tag = 0x17 if len(text) == 13 else 0x18
    data = bytes([tag, len(text)]) + text
    with pytest.raises(DerError, match="not a valid date"):
        der.parse_time(data, (tag, 2, len(data)))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_name_and_rdn_walks_raise_only_der_error(data: bytes) -> None:
    """The inlined short-form reads in the name walk must fail like read_tlv does."""
    for walk in (der._name.__wrapped__, der._rdn.__wrapped__):
        with contextlib.suppress(DerError):
            walk(b"\x30" + bytes([len(data)]) + data if walk is der._name.__wrapped__ else data)
