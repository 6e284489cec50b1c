"""`ca-watch scan` in this process, output pinned: the kill tests of shared/local/scan_cmd.py
for `make mutation` (issue 24). Its behaviour tests (tests/test_cli_scan*.py) run the
command as a subprocess, as operators do, and mutmut sees no test in a subprocess."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analyzer_samples import GLOVEBOXES_DER, INSIDE, TENANT, pca, tenant

from shared.local.cli import main

NOW = "2020-08-04T09:00:00Z"
# The kit's 2019 tenant CA: valid 2019-04-27 07:42:26 .. 2021-04-27 10:42:26 UTC.
GLOVEBOXES_SHA1 = "C8D10E9EB374466DB3E3600EEB69AE21A4B3AB1D"


def scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(table: str) -> list[list[str]]:
    return [re.split(r" {2,}", line.strip()) for line in table.splitlines() if line.strip()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "a-glove.der").write_bytes(GLOVEBOXES_DER.read_bytes())
    (tmp_path / "b-affected.pem").write_bytes(tenant(INSIDE).pem)
    (tmp_path / "c-notes.txt").write_text("hello")
    (tmp_path / "d-pca.pem").write_bytes(pca().pem)
    (tmp_path / "empty").mkdir()  # inside a folder with files: not a folder "with no file"
    return tmp_path


def sha1_of_pem(path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def test_the_table_its_error_column_summary_and_exit_code(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = scan(capsys, "--now", NOW, str(folder))

    assert code == 1
    table, summary = out.rstrip("\n").rsplit("\n\n", 1)
    source = str(folder)
    header = ["FILE", "VERDICT", "VALIDITY", "ROLE", "TENANT", "START (notBefore)", "MISMATCH"]
    glove = ["ok", "valid", "tenant-ca", TENANT, "2019-04-27 07:42:26", "none", GLOVEBOXES_SHA1]
    affected = ["affected", "valid", "tenant-ca", TENANT, "2020-07-01 12:00:00", "none"]
    microsoft = ["ok", "valid", "microsoft-ca", "-", "2018-01-01 00:00:00", "none"]
    unreadable = "not-a-certificate: text that is neither PEM nor valid base64"
    assert rows(table) == [
        [*header, "SHA-1", "ERROR"],
        [f"{source}/a-glove.der", *glove],
        [f"{source}/b-affected.pem", *affected, sha1_of_pem(folder / "b-affected.pem")],
        [f"{source}/c-notes.txt", "unreadable", *["-"] * 6, unreadable],
        [f"{source}/d-pca.pem", *microsoft, sha1_of_pem(folder / "d-pca.pem")],
    ]
    assert summary == "4 files, 3 certificates: 1 affected, 2 ok; 1 file unreadable"
    assert err == ""


def test_all_ok_is_exit_0_with_no_error_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "glove.der").write_bytes(GLOVEBOXES_DER.read_bytes())

    code, out, err = scan(capsys, "--now", NOW, str(tmp_path / "glove.der"))

    assert (code, err) == (0, "")
    header, row, blank, summary = out.split("\n")[:4]
    assert header.split() == [
        "FILE",
        "VERDICT",
        "VALIDITY",
        "ROLE",
        "TENANT",
        "START",
        "(notBefore)",
        "MISMATCH",
        "SHA-1",
    ]
    assert row.split()[-1] == GLOVEBOXES_SHA1 and blank == ""
    assert summary == "1 file, 1 certificate: 1 ok"


@pytest.mark.parametrize(
    ("now", "validity", "note"),
    [
        ("2019-04-27T07:42:25Z", "not-yet-valid", " (1 not-yet-valid)"),
        ("2019-04-27T07:42:26Z", "valid", ""),  # both ends of the validity are inside it
        ("2021-04-27T10:42:26Z", "valid", ""),
        ("2021-04-27T10:42:27Z", "expired", " (1 expired)"),
    ],
)
def test_validity_at_the_edges_in_table_summary_and_json(
    now: str, validity: str, note: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "glove.der"
    path.write_bytes(GLOVEBOXES_DER.read_bytes())

    code, out, _err = scan(capsys, "--now", now, str(path))
    assert code == 0
    assert rows(out)[1][2] == validity
    assert out.rstrip("\n").rsplit("\n", 1)[1] == f"1 file, 1 certificate: 1 ok{note}"

    code, out, _err = scan(capsys, "--json", "--now", now, str(path))
    assert code == 0
    document = json.loads(out)
    assert document["schema"] == "ca-watch/scan/v1"
    (result,) = document["results"]
    assert result["source"] == str(path) and result["status"] == "analyzed"
    assert [c["validity"] for c in result["certificates"]] == [validity]


def test_json_of_a_folder_keeps_every_result_and_exit_code(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = scan(capsys, "--json", "--now", NOW, str(folder))

    assert code == 1
    assert err == ""
    results = json.loads(out)["results"]
    assert [(Path(r["source"]).name, r["status"]) for r in results] == [
        ("a-glove.der", "analyzed"),
        ("b-affected.pem", "analyzed"),
        ("c-notes.txt", "unreadable"),
        ("d-pca.pem", "analyzed"),
    ]
    verdicts = [c["verdict"] for r in results for c in r["certificates"]]
    assert verdicts == ["ok", "affected", "ok"]
    assert all(c["validity"] == "valid" for r in results for c in r["certificates"])
    assert results[2]["error"]["code"] == "not-a-certificate"


def test_an_empty_folder_alone_needs_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = scan(capsys, str(tmp_path))

    assert code == 1
    assert out == "0 files, 0 certificates\n"
    assert err == f"ca-watch: {tmp_path}: no file in it to read\n"


def test_a_file_over_the_limit_is_rejected_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "100")
    (tmp_path / "big.der").write_bytes(GLOVEBOXES_DER.read_bytes())
    (tmp_path / "big2.der").write_bytes(GLOVEBOXES_DER.read_bytes())

    code, out, _err = scan(capsys, "--now", NOW, str(tmp_path))

    assert code == 1
    table = rows(out.rstrip("\n").rsplit("\n\n", 1)[0])
    assert [row[1] for row in table[1:]] == ["rejected", "rejected"]
    assert all(row[-1].startswith("too-large: ") for row in table[1:])
    assert out.rstrip("\n").rsplit("\n", 1)[1] == "2 files, 0 certificates; 2 files rejected"


def test_a_bad_now_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = scan(capsys, "--now", "yesterday", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith("ca-watch: error: --now 'yesterday' is not an ISO 8601 date-time")


class Terminal(io.StringIO):
    """A terminal's stream: text, and isatty() true (colour, and a width to fit)."""

    def isatty(self) -> bool:
        return True


LATER = "2022-01-01T00:00:00Z"  # the 2019 CA has expired; a 2023 one is not valid yet
GOLDEN = Path(__file__).parent / "data" / "cli-text" / "scan-on-terminals.txt"
# The full table is 335 columns; each width lands inside one SHRINK step (ERROR to 50,
# SHA-1 to 16, FILE to 40, ERROR to 30, FILE to 24, TENANT to 13), then all at their minimum.
WIDTHS = (335, 300, 255, 230, 210, 190, 170, 120)


@pytest.fixture
def mixed(folder: Path) -> Path:
    """Every verdict, validity and status the table colours and the summary counts."""
    (folder / "e-future.pem").write_bytes(tenant(datetime(2023, 1, 1, tzinfo=UTC)).pem)
    (folder / "f-cut.der").write_bytes(GLOVEBOXES_DER.read_bytes()[:200])
    deep = folder / ("deep-" * 10)
    deep.mkdir()
    (deep / "g-notes.txt").write_text("neither PEM nor base64 at all, and longer than most")
    (folder / "h-big.der").write_bytes(b"0" * 5000)  # over MAX_UPLOAD_BYTES: rejected
    return folder


def on_terminal(
    mixed: Path, columns: int, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "3000")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(mixed)  # file names the same on every run
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    code = main(["scan", *args, "."])
    out = terminal.getvalue()
    # The generated CAs' keys, so their SHA-1s, differ per run: each becomes its file's
    # letter, as long as it was (whole or cut), so the columns stay as they were.
    for name in ("b-affected.pem", "d-pca.pem", "e-future.pem"):
        sha1 = sha1_of_pem(mixed / name)
        out = re.sub(sha1[:8] + "[0-9A-F]*", lambda m, c=name[0]: c * len(m[0]), out)
    return code, out


def test_the_table_on_terminals_of_each_width_coloured_and_cut_column_by_column(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SHRINK order, minimums and modes, and the colours, against
    tests/data/cli-text/scan-on-terminals.txt (one table per width)."""
    tables = []
    for columns in WIDTHS:
        code, out = on_terminal(mixed, columns, monkeypatch, "--now", LATER)
        assert code == 1
        tables.append(f"=== {columns} columns\n{out}")
    assert "".join(tables) == GOLDEN.read_text(encoding="utf-8")


def test_the_summary_counts_each_validity_and_status_in_order(
    mixed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "3000")
    code, out, _err = scan(capsys, "--now", LATER, str(mixed))
    assert code == 1
    assert out.rstrip("\n").rsplit("\n", 1)[1] == (
        "8 files, 4 certificates: 1 affected, 3 ok (1 expired, 1 not-yet-valid); "
        "1 file rejected, 3 files unreadable"
    )


def test_without_now_validity_is_judged_at_the_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "glove.der").write_bytes(GLOVEBOXES_DER.read_bytes())  # expired in 2021
    code, out, _err = scan(capsys, str(tmp_path))
    assert code == 0
    assert rows(out)[1][2] == "expired"
    assert out.rstrip("\n").rsplit("\n", 1)[1] == "1 file, 1 certificate: 1 ok (1 expired)"

    code, out, _err = scan(capsys, "--json", str(tmp_path))
    assert [c["validity"] for c in json.loads(out)["results"][0]["certificates"]] == ["expired"]


def test_the_table_alone_judges_at_the_present_without_now() -> None:
    from analyzer_samples import rules

    from shared.analysis.scan import analyze_bytes
    from shared.local.scan_cmd import render_scan_table

    result = analyze_bytes("glove.der", GLOVEBOXES_DER.read_bytes(), rules(), None)
    text = render_scan_table([result], io.StringIO(), write=False)
    assert text.endswith("1 file, 1 certificate: 1 ok (1 expired)\n")


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_a_terminal_counts_each_file_of_a_big_scan(
    quiet: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(200):  # PROGRESS_THRESHOLD
        (tmp_path / f"{number:03}.txt").write_text("not a certificate")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, _out, _err = scan(capsys, *(["--quiet"] if quiet else []), str(tmp_path))
    assert code == 1
    progress = terminal.getvalue()
    if quiet:
        assert progress == ""
    else:
        assert progress.startswith("scanned 1/200\r")
        assert progress.endswith("\rscanned 200/200\n")


def test_a_file_that_fails_to_read_is_unreadable_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/proc/self/mem opens as a regular file and fails on its first read (EIO): a real
    read error (this runs as root, so a chmod 000 file would still be read)."""
    code, out, _err = scan(capsys, "--now", NOW, "/proc/self/mem")
    assert code == 1
    error = "read-error: cannot read it: Input/output error"
    assert rows(out)[1] == ["/proc/self/mem", "unreadable", *["-"] * 6, error]


def test_scan_needs_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["scan"])
    out, err = capsys.readouterr()
    assert (done.value.code, out) == (2, "")
    assert "the following arguments are required: PATH" in err


def test_the_rules_file_decides_what_is_affected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'stages = [0]\noverdue_every_days = 7\n\n[[incident]]\nid = "test-2019"\n'
        'title = "A window around the 2019 tenant CA"\n'
        "window_start = 2019-04-01T00:00:00Z\nwindow_end = 2019-05-01T00:00:00Z\n"
        'applies_to = ["affected"]\nreasons = ["Inside the test window."]\nactions = []\n'
    )
    monkeypatch.setenv("RULES_FILE", str(rules))
    (tmp_path / "glove.der").write_bytes(GLOVEBOXES_DER.read_bytes())
    code, out, _err = scan(capsys, "--now", NOW, str(tmp_path / "glove.der"))
    assert code == 1
    assert rows(out)[1][1] == "affected"


def test_json_reasons_are_judged_at_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "glove.der").write_bytes(GLOVEBOXES_DER.read_bytes())
    code, out, _err = scan(capsys, "--json", "--now", NOW, str(tmp_path / "glove.der"))
    assert code == 0
    (cert,) = json.loads(out)["results"][0]["certificates"]
    assert "Valid until 2021-04-27 10:42:26 UTC (266 days left)." in cert["reasons"]


def test_two_expired_are_counted_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.der", "b.der"):
        (tmp_path / name).write_bytes(GLOVEBOXES_DER.read_bytes())
    _code, out, _err = scan(capsys, "--now", LATER, str(tmp_path))
    assert out.rstrip("\n").rsplit("\n", 1)[1] == "2 files, 2 certificates: 2 ok (2 expired)"


def test_a_certificate_of_no_azure_sphere_role_shows_a_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tls_samples import make_tls_files

    ca_file, _chain, _key = make_tls_files(tmp_path)  # made now: valid now
    code, out, _err = scan(capsys, str(ca_file))
    assert code == 0
    assert rows(out)[1][1:5] == ["ok", "valid", "-", "-"]


def test_the_table_goes_to_the_stream_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    from analyzer_samples import rules

    from shared.analysis.scan import analyze_bytes
    from shared.local.scan_cmd import render_scan_table

    result = analyze_bytes("glove.der", GLOVEBOXES_DER.read_bytes(), rules(), None)
    stream = io.StringIO()
    text = render_scan_table([result], stream, datetime(2020, 8, 4, tzinfo=UTC))
    assert stream.getvalue() == text and text.endswith("1 file, 1 certificate: 1 ok\n")
    assert capsys.readouterr().out == ""


def test_a_folder_that_cannot_be_listed_is_unreadable_not_read_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its row has no path to read (reading it would read standard input instead).
    A fake for one OS call: this suite runs as root, whom no permission bit stops, so a
    folder it cannot list cannot be made here."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "ca.der").write_bytes(GLOVEBOXES_DER.read_bytes())
    listing = os.scandir

    def scandir(path: str) -> object:
        if path == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, _err = scan(capsys, "--now", NOW, str(tmp_path))
    assert code == 1
    assert rows(out)[1] == [
        str(locked), "unreadable", *["-"] * 6, "permission-denied: permission denied: this "
        "user cannot read it",
    ]  # fmt: skip


def test_a_stream_over_the_limit_is_rejected_at_the_configured_limit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A character device is read as a stream (its size is unknown): one byte past the
    limit is read, and the limit in force is MAX_UPLOAD_BYTES, not the default."""
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "300")
    code, out, _err = scan(capsys, "--now", NOW, "/dev/zero")
    assert code == 1
    error = (
        "too-large: 301 bytes is over the 300-byte limit (MAX_UPLOAD_BYTES); upload "
        "certificates only, or split the bundle"
    )
    assert rows(out)[1] == ["/dev/zero", "rejected", *["-"] * 6, error]
