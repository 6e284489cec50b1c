"""The scan benchmark runs (smoke, at a small size: `make bench` runs the 5,000 files) and
what it times is the real work: every variant writes the very same JSON."""

from __future__ import annotations

import io
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def test_bench_scan_smoke() -> None:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import bench_scan
    finally:
        sys.path.remove(str(SCRIPTS))
    out = io.StringIO()
    figures = bench_scan.run(count=12, repeats=1, pkilint_repeats=1, out=out)
    assert figures["files"] == 12
    assert figures["outputs_identical"] is True
    for mode in ("buffered", "unbuffered"):
        assert figures[f"scan_{mode}_s"] > 0
        assert figures[f"{mode}_floor_ratio"] > 0
        assert figures[f"{mode}_pkilint_ratio"] > 0  # pkilint is a dev dependency
    assert "the floor" in out.getvalue() and "pkilint" in out.getvalue()
