"""`ca-watch scan` as operators run it: a subprocess, exit codes, JSON, table, progress."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from analyzer_samples import GLOVEBOXES_DER, INSIDE, OUTSIDE, pca, tenant

from shared.local import samples

ROOT = Path(__file__).resolve().parent.parent
ANSI = "\x1b["


def scan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("RULES_FILE", "NO_COLOR")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "shared.local.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )


@pytest.fixture
def ok_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ok"
    (folder / "nested").mkdir(parents=True)
    (folder / "tenant.cer").write_bytes(GLOVEBOXES_DER.read_bytes())
    (folder / "nested" / "pca.pem").write_bytes(pca().pem)
    (folder / "nested" / "tenant.pem").write_bytes(tenant(OUTSIDE).pem)
    return folder


def test_help_teaches_exit_codes() -> None:
    done = scan("scan", "--help")
    assert done.returncode == 0
    assert "exit codes" in done.stdout.lower()
    assert "--json" in done.stdout and "--now" in done.stdout
    top = scan("--help")
    assert top.returncode == 0 and "scan" in top.stdout


def test_no_arguments_is_a_usage_error() -> None:
    assert scan().returncode == 2
    done = scan("scan")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_missing_path_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    done = scan("scan", str(missing))
    assert done.returncode == 2
    assert "no such file or directory" in done.stderr and str(missing) in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_now_is_a_usage_error(ok_dir: Path) -> None:
    done = scan("scan", "--now", "yesterday", str(ok_dir))
    assert done.returncode == 2
    assert "--now" in done.stderr and "Traceback" not in done.stderr


def test_ok_directory_exits_0(ok_dir: Path) -> None:
    done = scan("scan", "--now", "2020-08-04T09:00:00Z", str(ok_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout
    assert "affected" not in done.stdout.split("\n\n")[0]


def test_one_affected_exits_1(ok_dir: Path) -> None:
    (ok_dir / "affected.pem").write_bytes(tenant(INSIDE).pem)
    done = scan("scan", str(ok_dir))
    assert done.returncode == 1
    assert "affected" in done.stdout


def test_signature_mismatch_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.der"
    path.write_bytes(samples.mismatched(tenant(OUTSIDE), pca(), "oid-outer"))
    done = scan("scan", str(path))
    assert done.returncode == 1
    assert "signature-mismatch" in done.stdout


def test_unreadable_file_exits_1(ok_dir: Path) -> None:
    (ok_dir / "notes.txt").write_text("these are not certificates\n")
    done = scan("scan", str(ok_dir))
    assert done.returncode == 1
    assert "unreadable" in done.stdout and "not-a-certificate" in done.stdout
    assert "Traceback" not in done.stderr


def test_too_large_file_is_rejected_via_setting(tmp_path: Path) -> None:
    path = tmp_path / "big.pem"
    path.write_bytes(tenant(OUTSIDE).pem)
    done = scan("scan", "--json", str(path), env={"MAX_UPLOAD_BYTES": "100"})
    assert done.returncode == 1
    result = json.loads(done.stdout)["results"][0]
    assert result["status"] == "rejected" and result["error"]["code"] == "too-large"


def test_json_output_shape(ok_dir: Path) -> None:
    from test_analyzer import assert_scan_v1

    (ok_dir / "affected.pem").write_bytes(tenant(INSIDE).pem)
    (ok_dir / "empty.cer").write_bytes(b"")
    done = scan("scan", "--json", "--now", "2020-08-04T09:00:00Z", str(ok_dir))
    assert done.returncode == 1
    document = json.loads(done.stdout)  # nothing but the document on stdout
    sources = sorted(str(p) for p in ok_dir.rglob("*") if p.is_file())
    assert sorted(r["source"] for r in document["results"]) == sources
    assert_scan_v1(document, [r["source"] for r in document["results"]])
    verdicts = {
        Path(r["source"]).name: [c["verdict"] for c in r["certificates"]]
        for r in document["results"]
    }
    assert verdicts["affected.pem"] == ["affected"]
    assert verdicts["tenant.cer"] == ["ok"]
    assert verdicts["empty.cer"] == []
    assert ANSI not in done.stdout


def test_several_paths_one_result_each(ok_dir: Path, tmp_path: Path) -> None:
    single = tmp_path / "single.pem"
    single.write_bytes(pca().pem)
    done = scan("scan", "--json", str(single), str(ok_dir / "tenant.cer"))
    assert done.returncode == 0
    results = json.loads(done.stdout)["results"]
    assert [r["source"] for r in results] == [str(single), str(ok_dir / "tenant.cer")]


def test_large_tree_prints_progress_on_stderr(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    data = GLOVEBOXES_DER.read_bytes()
    for index in range(250):
        (folder / f"cert-{index:03}.cer").write_bytes(data)
    done = scan("scan", "--json", str(folder))
    assert done.returncode == 0
    assert len(json.loads(done.stdout)["results"]) == 250
    assert "250/250" in done.stderr  # the final progress line
    assert "Traceback" not in done.stderr


def test_small_scan_prints_no_progress(ok_dir: Path) -> None:
    done = scan("scan", str(ok_dir))
    assert done.stderr == ""


def test_table_has_verdict_words_and_no_ansi_when_not_a_tty(ok_dir: Path) -> None:
    (ok_dir / "affected.pem").write_bytes(tenant(INSIDE).pem)
    (ok_dir / "junk.bin").write_bytes(b"\x00\x01junk")
    done = scan("scan", str(ok_dir))
    for word in ("VERDICT", "affected", "ok", "unreadable", "tenant-ca", "C8D10E9EB374466D"):
        assert word in done.stdout, word
    assert ANSI not in done.stdout and ANSI not in done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _table(monkeypatch: pytest.MonkeyPatch, no_color: bool) -> str:
    from analyzer_samples import NOW, rules

    from shared.analysis.scan import analyze_bytes
    from shared.local.scan_cmd import render_scan_table

    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "xterm")
    stream = _Terminal()
    render_scan_table([analyze_bytes("a.pem", tenant(INSIDE).pem, rules(), NOW)], stream)
    return stream.getvalue()


def test_colour_on_a_terminal_and_no_color_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    coloured = _table(monkeypatch, no_color=False)
    assert ANSI in coloured and "affected" in coloured
    plain = _table(monkeypatch, no_color=True)
    assert ANSI not in plain and "affected" in plain
