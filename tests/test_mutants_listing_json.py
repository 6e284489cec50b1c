"""Is an upload a listing, and its JSON value (listing_json, issue 21): the exact refusal
each user sees (code and text), a listing inside a PEM file in every encoding a tool
writes (UTF-8 with a stray byte, UTF-16 with either BOM, UTF-16 LE without one), and the
boundaries of the sniff (the opener within the first 4 KB, the key anywhere after).

Pure core: bytes in, a value or a ``ListingError`` out.
"""

from __future__ import annotations

import json

import pytest

from shared.analysis.listing_error import ListingError
from shared.analysis.listing_json import decode_listing_json, listing_in_text, looks_like_listing

T1 = "0123456789ABCDEF0123456789ABCDEF01234567"
PEM_TEXT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
LISTING_TEXT = json.dumps([{"thumbprint": T1}])
BOTH = PEM_TEXT + LISTING_TEXT  # `cat ca.pem list.json > both.pem`

KEY_REFUSAL = (
    "private-key-material",
    "the listing holds a private key; it was not stored. Upload the listing only and keep "
    "the key secret",
)
DUPLICATE = (
    "duplicate-json-key",
    "an object holds the same key twice (in some letter case), so the listing is ambiguous; "
    "save the tool's output again, unedited",
)


def refusal(data: bytes) -> tuple[str, str]:
    with pytest.raises(ListingError) as caught:
        decode_listing_json(data)
    assert str(caught.value) == f"{caught.value.code}: {caught.value.message}"
    return caught.value.code, caught.value.message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BOTH.encode("utf-8"), True),
        # A stray byte that is not UTF-8 (a Latin-1 name in a comment line): still found.
        (PEM_TEXT.encode() + b"# \xe9t\xe9\n" + LISTING_TEXT.encode(), True),
        (BOTH.encode("utf-16"), True),  # Windows PowerShell 5.1: UTF-16 LE with its BOM
        (b"\xfe\xff" + BOTH.encode("utf-16-be"), True),
        (b"\xff\xfe" + BOTH.encode("utf-16-le"), True),
        (BOTH.encode("utf-16-le"), True),  # no BOM: the reader takes it as UTF-16 LE too
        (PEM_TEXT.encode("utf-16-le"), False),
        (PEM_TEXT.encode() + b'"thumbprint": 1', False),  # a listing's key, but no JSON
        ((PEM_TEXT + '{"name": "x"}').encode(), False),
        (PEM_TEXT.encode("utf-8"), False),
    ],
)
def test_a_listing_inside_a_pem_file_in_every_encoding(data: bytes, expected: bool) -> None:
    assert listing_in_text(data) is expected


def test_a_private_key_anywhere_in_a_listing_refuses_it_with_the_fixed_text() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMC4CAQA=\n-----END PRIVATE KEY-----\n"
    document = {"value": [{"properties": {"thumbprint": T1, "privateKey": key}}]}
    for data in (json.dumps(document).encode(), json.dumps(document).encode("utf-16")):
        code, message = refusal(data)
        assert (code, message) == KEY_REFUSAL
        assert "MC4CAQA" not in message  # never echoed
    # The same words in lower case are not a PEM key block: parsed as JSON.
    assert decode_listing_json(b'{"note": "private key-----"}') == {"note": "private key-----"}


@pytest.mark.parametrize(
    "data",
    [
        b'{"thumbprint": "a", "thumbprint": "b"}',
        b'[{"Thumbprint": "a", "thumbprint": "b"}]',
        b'{"value": [{"properties": {"isVerified": true, "ISVERIFIED": false}}]}',
    ],
)
def test_a_key_twice_in_any_case_refuses_with_the_fixed_text(data: bytes) -> None:
    assert refusal(data) == DUPLICATE


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"thumbprint": 1}', {"thumbprint": 1}),
        (b"\xef\xbb\xbf" + b'{"thumbprint": 1}', {"thumbprint": 1}),
        ('{"thumbprint": 1}'.encode("utf-16"), {"thumbprint": 1}),
        (b"\xfe\xff" + '["\u00e9"]'.encode("utf-16-be"), ["\u00e9"]),
    ],
)
def test_decoded_value_in_each_encoding(data: bytes, expected: object) -> None:
    assert decode_listing_json(data) == expected


def test_the_key_may_come_late_but_the_opener_must_come_early() -> None:
    late = b'{"padding": "' + b"x" * 10_000 + b'", "thumbprint": 1}'
    assert looks_like_listing(late)
    assert not looks_like_listing(late, max_bytes=4096)  # the caller's bound is kept
    assert looks_like_listing(late.decode().encode("utf-16"))  # UTF-16 doubles every byte
    opener_at_4095 = b" " * 4095 + b'{"thumbprint": 1}'
    assert looks_like_listing(opener_at_4095)
    opener_at_4096 = b" " * 4096 + b'{"thumbprint": 1}'
    assert not looks_like_listing(opener_at_4096)  # only white space in the first 4 KB
