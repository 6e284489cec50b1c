"""`ca-watch scan` with what people really pass it (no permission, loops, stdin, FIFOs,
empty folders, a closed pipe) and its output written at disk speed (issues 13 and 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from analyzer_samples import GLOVEBOXES_DER, INSIDE, OUTSIDE, pca, tenant

ROOT = Path(__file__).resolve().parent.parent
# As root the kernel lets every file be read: drop the two capabilities that allow it, so
# a file without read permission is refused as it is for any other user.
AS_A_USER = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RULES_FILE", "COLUMNS")}
    env.update(extra)
    return env


def scan(*args: str, stdin: bytes | None = None, prefix: list[str] | None = None, **env: str):
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "shared.local.cli", "scan", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=120,
        env=environment(**env),
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "certs"
    (root / "nested").mkdir(parents=True)
    (root / "tenant.cer").write_bytes(GLOVEBOXES_DER.read_bytes())
    (root / "nested" / "pca.pem").write_bytes(pca().pem)
    return root


def results_of(done: subprocess.CompletedProcess) -> dict[str, dict]:
    return {Path(r["source"]).name: r for r in json.loads(done.stdout)["results"]}


def test_a_file_without_read_permission_is_unreadable_and_the_scan_goes_on(
    folder: Path,
) -> None:
    secret = folder / "secret.pem"
    secret.write_bytes(tenant(OUTSIDE).pem)
    secret.chmod(0)
    done = scan("--json", str(folder), prefix=AS_A_USER)
    assert done.returncode == 1, done.stderr
    assert b"Traceback" not in done.stderr
    results = results_of(done)
    assert results["secret.pem"]["status"] == "unreadable"
    assert results["secret.pem"]["error"]["code"] == "permission-denied"
    assert results["tenant.cer"]["status"] == "analyzed"
    assert results["pca.pem"]["status"] == "analyzed"


def test_a_closed_pipe_ends_the_scan_quietly(tmp_path: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for index in range(400):  # a document far larger than a pipe's buffer
        (many / f"c{index:03}.cer").write_bytes(GLOVEBOXES_DER.read_bytes())
    command = [sys.executable, "-m", "shared.local.cli", "scan", "--json", "-q", str(many)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment()
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"{\n"  # `| head -1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141  # 128 + SIGPIPE, as a C tool reports it
    assert stderr == b""


def test_a_symlink_loop_is_reported_as_a_loop(folder: Path, tmp_path: Path) -> None:
    (folder / "loop-a").symlink_to(folder / "loop-b")
    (folder / "loop-b").symlink_to(folder / "loop-a")
    done = scan("--json", str(folder))
    assert done.returncode == 1
    results = results_of(done)
    assert results["loop-a"]["error"]["code"] == "symlink-loop"
    assert results["loop-b"]["error"]["code"] == "symlink-loop"
    assert results["tenant.cer"]["status"] == "analyzed"
    # given by name, too: a loop, not "no such file"
    alone = scan(str(folder / "loop-a"))
    assert alone.returncode == 1
    assert b"symlink-loop" in alone.stdout and b"no such file" not in alone.stderr


def test_a_directory_with_nothing_to_read_exits_1_and_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    done = scan(str(empty))
    assert done.returncode == 1
    assert f"{empty}: no file in it to read".encode() in done.stderr
    assert b"0 files, 0 certificates" in done.stdout


def test_dash_reads_stdin() -> None:
    done = scan("--json", "-", stdin=tenant(INSIDE).pem)
    assert done.returncode == 1  # affected
    (result,) = json.loads(done.stdout)["results"]
    assert result["source"] == "-"
    assert [c["verdict"] for c in result["certificates"]] == ["affected"]


def test_dev_stdin_and_a_fifo_are_read(tmp_path: Path) -> None:
    done = scan("--json", "/dev/stdin", stdin=pca().pem)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["status"] == "analyzed"

    fifo = tmp_path / "cert.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(GLOVEBOXES_DER.read_bytes(),))
    writer.start()
    done = scan("--json", str(fifo))
    writer.join(timeout=30)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["certificates"][0]["sha1_thumbprint"].startswith("C8D10E9EB374466D")


def test_a_stream_over_the_limit_is_too_large_without_reading_it_all() -> None:
    done = scan("--json", "-", stdin=b"A" * 5000, MAX_UPLOAD_BYTES="1000")
    result = json.loads(done.stdout)["results"][0]
    assert result["status"] == "rejected" and result["error"]["code"] == "too-large"


def test_json_has_an_additive_validity_per_certificate(folder: Path) -> None:
    (folder / "future.pem").write_bytes(tenant(INSIDE).pem)
    done = scan("--json", "--now", "2020-06-01T00:00:00Z", str(folder))
    results = results_of(done)
    assert results["future.pem"]["certificates"][0]["validity"] == "not-yet-valid"
    late = results_of(scan("--json", "--now", "2099-01-01T00:00:00Z", str(folder)))
    assert late["tenant.cer"]["certificates"][0]["validity"] == "expired"
    assert late["pca.pem"]["certificates"][0]["validity"] == "expired"
    table = scan("--now", "2099-01-01T00:00:00Z", str(folder)).stdout.decode()
    assert "VALIDITY" in table and "expired" in table
    assert "3 files, 3 certificates: 1 affected, 2 ok (3 expired)" in table


def _unbuffered_env(unbuffered: bool) -> dict[str, str]:
    env = environment()
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


# Runs the CLI, then reports the process's own write(2) count from /proc (no strace).
_COUNT_WRITES = (
    "import sys\n"
    "from shared.local.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "io = dict(l.split(': ') for l in open('/proc/self/io').read().splitlines())\n"
    "sys.stderr.write(f\"writes={io['syscw']}\\n\")\n"
    "sys.exit(code)\n"
)


@pytest.mark.parametrize("mode", ["--json", "table"])
def test_output_is_identical_and_written_at_once_with_and_without_pythonunbuffered(
    tmp_path: Path, mode: str
) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for index in range(120):
        (many / f"c{index:03}.pem").write_bytes(pca().pem if index % 2 else tenant(INSIDE).pem)
    args = ["scan", "-q", "--now", "2020-08-04T09:00:00Z", str(many)]
    if mode == "--json":
        args.insert(1, "--json")
    outputs, writes = [], []
    for unbuffered in (False, True):
        done = subprocess.run(
            [sys.executable, "-c", _COUNT_WRITES, *args],
            cwd=ROOT,
            capture_output=True,
            timeout=120,
            env=_unbuffered_env(unbuffered),
            check=False,
        )
        assert done.returncode == 1, done.stderr
        outputs.append(done.stdout)
        writes.append(int(done.stderr.decode().rsplit("writes=", 1)[1]))
    assert outputs[0] == outputs[1]
    # json.dump wrote each token on its own: ~30,000 writes here when unbuffered.
    assert max(writes) <= 10, writes
    if mode == "--json":
        document = json.loads(outputs[0])
        assert outputs[0] == (json.dumps(document, indent=2) + "\n").encode()


def test_json_bytes_is_byte_identical_to_json_dumps_for_any_text() -> None:
    from shared.local.common import json_bytes

    every_ascii = "".join(chr(code) for code in range(128))
    documents = [
        {"schema": "x", "results": [{"a": [], "b": {}, "c": [1, True, None, every_ascii]}]},
        {"subject": "CN=Zoë €, O=😀 \u202e\u2028"},  # non-ASCII: escaped as json does
        {"lone": "\ud800"},  # orjson refuses it: the stdlib writes it
        {"float": 1.5e-7, "big": 2**70},
    ]
    for document in documents:
        assert json_bytes(document) == (json.dumps(document, indent=2) + "\n").encode()


class _Terminal:
    """A terminal's stream for render_scan_table: text, and isatty() true."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.text += text


@pytest.mark.parametrize("columns", [80, 120, 160])
def test_the_table_fits_the_terminal_and_errors_have_their_own_column(
    monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    from analyzer_samples import NOW, rules

    from shared.analysis.scan import analyze_bytes
    from shared.local.scan_cmd import render_scan_table

    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("NO_COLOR", "1")
    results = [
        analyze_bytes("deep/" * 12 + "affected.pem", tenant(INSIDE).pem, rules(), NOW),
        analyze_bytes("notes.txt", b"these are not certificates\n", rules(), NOW),
        analyze_bytes("cut.der", GLOVEBOXES_DER.read_bytes()[:200], rules(), NOW),
    ]
    terminal = _Terminal()
    render_scan_table(results, terminal, NOW)  # type: ignore[arg-type]
    table, summary = terminal.text.rsplit("\n\n", 1)
    lines = table.splitlines()
    assert lines[0].split()[-1] == "ERROR"
    error_column = lines[0].index("ERROR")
    if columns >= 160:
        assert all(len(line) <= columns for line in lines)
    notes = next(i for i, line in enumerate(lines) if line.startswith("notes.txt"))
    assert lines[notes][error_column:].startswith("not-a-certificate:")
    # the error text is all there, wrapped in its column
    wrapped = " ".join(line[error_column:].strip() for line in lines[notes : notes + 6])
    assert "is neither PEM nor valid base64" in wrapped
    assert terminal.text.count("truncated:") == 1  # the code said once, not twice
    assert summary.startswith("3 files, 1 certificate: 1 affected; 2 files unreadable")


def test_a_pipe_gets_the_whole_table(folder: Path) -> None:
    long_name = folder / ("x" * 150 + ".pem")
    long_name.write_bytes(pca().pem)
    done = scan(str(folder), COLUMNS="80")
    assert long_name.name.encode() in done.stdout


def test_hostile_file_names_are_shown_escaped_and_never_break_the_output(tmp_path: Path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    escape_name = "\x1b[31mred.pem"
    (folder / escape_name).write_bytes(pca().pem)
    undecodable = os.fsencode(str(folder)) + b"/caf\xe9.pem"  # Latin-1, not UTF-8
    with open(undecodable, "wb") as stream:
        stream.write(pca().pem)
    table = scan(str(folder))
    assert table.returncode == 0, table.stderr
    assert b"\x1b" not in table.stdout  # the escape is shown, not obeyed
    assert b"\\x1b[31mred.pem" in table.stdout and b"caf\\udce9.pem" in table.stdout
    document = json.loads(scan("--json", str(folder)).stdout)
    assert len(document["results"]) == 2
    assert all(r["status"] == "analyzed" for r in document["results"])
