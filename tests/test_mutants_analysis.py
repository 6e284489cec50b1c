"""Golden scan: fixed certificate files in, the committed scan/v1 JSON out, byte for byte.

One comparison pins every reason and action text, each role and verdict, the window's
inclusive edges, the rotation deadlines, chain links and each read error's code and message,
so a mutant that changes any of them is caught (issue 16: mutation testing). The corpus and
how to regenerate the expected JSON: tests/golden_files.py.
"""

from __future__ import annotations

import json

from golden_files import EXPECTED, golden_sources, scan_golden


def test_the_golden_corpus_scans_to_the_committed_json() -> None:
    expected = json.loads(EXPECTED.read_text())
    actual = scan_golden()
    assert [r["source"] for r in actual["results"]] == [p.name for p in golden_sources()]
    for got, want in zip(actual["results"], expected["results"], strict=True):
        assert got == want, got["source"]
    assert actual == expected


def test_the_golden_corpus_covers_every_role_and_verdict() -> None:
    """The corpus stays broad enough to mean something if it is ever regenerated."""
    certificates = [
        c for r in json.loads(EXPECTED.read_text())["results"] for c in r["certificates"]
    ]
    roles = {c["azure_sphere"]["role"] for c in certificates}
    verdicts = {c["verdict"] for c in certificates}
    assert roles == {"tenant-ca", "device", "verification", "microsoft-ca", None}
    assert verdicts == {"affected", "signature-mismatch", "ok"}
    assert any(c["chain"] for c in certificates)
