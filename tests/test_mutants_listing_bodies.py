"""A listing's certificate body as Azure stores it (listing_bodies, issue 21): base64 that a
tool wrapped into lines (``Convert.ToBase64String`` with line breaks, ``base64`` at 76
columns) is the same body; an empty or placeholder body names nothing.

Pure core. The body is a short byte string shaped like a signed DER structure (a SEQUENCE of
SEQUENCE, SEQUENCE, BIT STRING), which is all the body reader checks.
"""

from __future__ import annotations

import base64

import pytest

from shared.analysis.listing_bodies import certificate_body

BODY = bytes.fromhex("30083000300003020001")
B64 = base64.b64encode(BODY).decode()


@pytest.mark.parametrize(
    "text",
    [
        B64,
        f"{B64[:8]}\r\n{B64[8:]}\r\n",  # line breaks as Windows tools write them
        f"{B64[:8]}\n{B64[8:]}",
        f" {B64[:4]} {B64[4:]}\t",
        base64.b64encode(
            f"-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n".encode()
        ).decode(),  # az iot hub certificate create -p ca.pem (azure-cli 2.32 and later)
    ],
)
def test_a_body_wrapped_or_spaced_is_the_same_certificate(text: str) -> None:
    assert certificate_body(text) == BODY


@pytest.mark.parametrize("text", [None, "", "####", "MA==", "XXXX", "\u00e9"])
def test_absent_empty_or_placeholder_bodies_name_nothing(text: str | None) -> None:
    assert certificate_body(text) is None
