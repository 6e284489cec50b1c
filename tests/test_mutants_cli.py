"""Kill tests for `make mutation` on the `ca-watch` commands (shared/local/*_cmd.py, issue
24), run in this process (mutmut sees no test in a subprocess): each command's `--help`
against its committed text, and what the behaviour tests leave unpinned.

The help texts are tests/data/cli-help/*.txt. After changing a help text on purpose,
rewrite them and review the diff like code:
    CA_WATCH_WRITE_HELP=1 .venv/bin/python -m pytest -q tests/test_mutants_cli.py -k help
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from test_mutants_channels import tokyo_local_time  # noqa: F401 - a fixture

from shared.alerts.states import state
from shared.app import handlers
from shared.app.alert_pass import run_alerts
from shared.local import azurite_cmd, samples
from shared.local.alerts_cmd import _print, due_in_plan, render_summary, warn_about_recipients
from shared.local.cli import main
from shared.local.common import UsageError
from shared.local.registrations_cmd import _signed_in, render_pull
from shared.local.report_cmd import needs_action, render_report, state_column
from shared.local.runner import process_pending
from shared.settings import Settings

HELP = Path(__file__).parent / "data" / "cli-help"
COMMANDS = [
    (),
    ("scan",),
    ("report",),
    ("alerts",),
    ("alerts", "run"),
    ("alerts", "plan"),
    ("azurite",),
    ("azurite", "start"),
    ("azurite", "stop"),
    ("azurite", "status"),
    ("azurite", "reset"),
    ("registrations",),
    ("registrations", "pull"),
    ("ack",),
    ("unack",),
    ("retire",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c) or "ca-watch")
def test_each_commands_help_is_its_committed_text(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    golden = HELP / f"{'-'.join(command) or 'ca-watch'}.txt"
    if os.environ.get("CA_WATCH_WRITE_HELP"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")


# shared/local/alerts_cmd.py: the summary an operator reads after `alerts run|plan`.

RUN_DOCUMENT: dict[str, Any] = {
    "dry_run": False,
    "now": "2020-08-04T09:00:00Z",
    "items": [
        {
            "tenant_id": "t-1",
            "certificate": "c1",
            "deadline": "register",
            "stage": "7d",
            "due": "2020-08-11",
            "channels": {"teams": "sent", "smtp": "failed"},
            "registration": {
                "targets": [
                    {
                        "target": "a",
                        "display_name": "Hub A",
                        "kind": "iot-hub",
                        "renewed": "missing",
                    },
                    {
                        "target": "b",
                        "display_name": "DPS B",
                        "kind": "dps",
                        "renewed": "unverified",
                    },
                    {
                        "target": "c",
                        "display_name": "Hub C",
                        "kind": "iot-hub",
                        "renewed": "verified",
                    },
                ],
                "pending": ["a", "b"],
            },
        },
        {
            "tenant_id": "t-2",
            "certificate": "c2",
            "deadline": "activate",
            "stage": "1d",
            "due": "2020-08-05",
            "channels": {},
        },
    ],
    "self_health": [
        {"summary": "storage slow", "channels": {"teams": "sent", "smtp": "failed"}},
        {"summary": "no channel works", "channels": {}},
    ],
    "messages": [
        {"channel": "teams", "items": 2, "error": None},
        {"channel": "smtp", "items": 1, "error": "relay down"},
    ],
    "errors": [{"channel": "acs-email", "error": "no token"}],
}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_alerts_summary_names_each_item_pending_target_problem_and_message() -> None:
    out = io.StringIO()  # not a terminal: no width limit
    render_summary(RUN_DOCUMENT, out)
    assert out.getvalue() == (
        "alerts run at 2020-08-04T09:00:00Z: 2 item(s) due\n"
        "TENANT  DEADLINE  STAGE  DUE         CHANNELS\n"
        "t-1     register  7d     2020-08-11  teams=sent, smtp=failed\n"
        "t-2     activate  1d     2020-08-05  -\n"
        "renewal pending for t-1 in: Hub A (iot-hub: renewed CA missing), "
        "DPS B (dps: renewed CA unverified)\n"
        "operator alert: storage slow  teams=sent, smtp=failed\n"
        "operator alert: no channel works  no channel\n"
        "message on teams (2 item(s)): sent\n"
        "message on smtp (1 item(s)): FAILED: relay down\n"
        "error on acs-email: no token\n"
    )
    assert _print(RUN_DOCUMENT, False, io.StringIO()) == 1  # a send failed


def test_alerts_summary_cuts_and_wraps_on_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    item = {
        "tenant_id": "9d7e79eb-e021-43ce-9f2b-fa944b447494",
        "certificate": "c1",
        "deadline": "register-the-renewal-before-it-activates",  # cut on the left at 20
        "stage": "7d",
        "due": "2020-08-11T00:00:00Z",
        "channels": {"acs-email": "planned"},  # 17 characters: wrapped at 16
        # targets, but none pending (no "pending" key at all)
        "registration": {
            "targets": [
                {"target": "a", "display_name": "Hub A", "kind": "iot-hub", "renewed": "missing"}
            ]
        },
    }
    out = _Terminal()
    render_summary({"dry_run": True, "now": "N", "items": [item]}, out)  # no "messages" key
    pad = " " * 89
    assert out.getvalue() == (
        "alerts plan at N: 1 item(s) due\n"
        "TENANT                                DEADLINE              STAGE  DUE"
        "                   CHANNELS\n"
        "9d7e79eb-e021-43ce-9f2b-fa944b447494  ...fore-it-activates  7d     "
        "2020-08-11T00:00:00Z  acs-\n"
        f"{pad}email=planned\n"
    )


def test_alerts_plan_exit_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    planned = {"items": [{"channels": {"teams": "planned"}}]}
    assert due_in_plan(planned) is True
    assert due_in_plan({"items": [], "self_health": [{"channels": {"smtp": "planned"}}]})
    assert due_in_plan({"items": [{"channels": {"teams": "sent"}}]}) is False
    quiet = {"now": "N", "items": [], "messages": [], "errors": []}
    out = io.StringIO()
    assert _print(quiet, True, out) == 0
    assert json.loads(out.getvalue()) == quiet


def test_alerts_warns_on_stderr_of_a_channel_with_no_recipient(
    capsys: pytest.CaptureFixture[str],
) -> None:
    warn_about_recipients(Settings(), ["outbox", "teams"])
    assert capsys.readouterr() == (
        "",
        "warning: channel outbox has no recipient: messages are written with an empty To: "
        "(set ALERT_EMAIL_TO)\n",
    )


# shared/local/report_cmd.py: the text report and its exit code, from a report/v1 document.

_T = "9d7e79eb-e021-43ce-9f2b-fa944b447494"


def _cert(sha: str, sha1: str, verdict: str = "ok", role: str = "tenant-ca", **kw: Any) -> dict:
    tenant = _T if role == "tenant-ca" else None
    return {
        "sha256_fingerprint": sha,
        "sha1_thumbprint": sha1,
        "verdict": verdict,
        "azure_sphere": {"role": role, "tenant_id": tenant},
        "not_before": "2020-07-01 12:00:00",
        **kw,
    }


def _report() -> dict[str, Any]:
    registered = [
        {"display_name": "Hub", "kind": "iot-hub", "verified": True},
        {"display_name": "DPS", "kind": "dps", "verified": False},
    ]
    return {
        "certificates": [
            _cert("a" * 64, "A1", "affected", resolved_by="b" * 64, registrations=registered),
            _cert("b" * 64, "B1"),
            _cert("c" * 64, "C1", "affected", resolved_by="e" * 64),
            _cert("d" * 64, "D1", "affected", acknowledged={"by": "ops"}),
            _cert("f" * 64, "F1", "affected", renewal_pending=["x", "y"]),
            _cert("9" * 64, "P1", role="microsoft-ca"),
        ],
        "uploads": [
            {"status": "analyzed", "name": "t/a.cer", "error": None,
             "certificates": ["a" * 64, "8" * 64]},
            {"status": "rejected", "name": "bad\x1b.csr", "certificates": [],
             "error": {"code": "not-a-certificate", "message": "not-a-certificate: a CSR"}},
            {"status": "analyzed", "name": "hub.json", "error": None,
             "format": "iot-hub-certificates", "certificates": []},
        ],
        "targets": [
            {"kind": "iot-hub", "display_name": "Hub", "certificates": 2,
             "seen_at": "2020-08-01", "source": "upload"},
            {"kind": "dps", "display_name": "DPS", "certificates": 0,
             "error": {"code": "forbidden", "message": "403"}},
        ],
    }  # fmt: skip


def test_report_text_names_states_registrations_targets_and_uploads() -> None:
    out = io.StringIO()
    render_report(_report(), out, {"b" * 64: "look-alike"})  # the fleet page's states win
    row = f"tenant-ca     {_T}  2020-07-01 12:00:00"
    assert out.getvalue() == (
        "6 certificate(s), 3 upload(s)\n\n"
        "VERDICT   ROLE          TENANT                                START (notBefore)    "
        "SHA-1  STATE\n"
        f"affected  {row}  A1     resolved, replaced by B1\n"
        f"ok        {row}  B1     look-alike renewal\n"
        f"affected  {row}  C1     resolved, replaced by SHA-256 eeeeeeeeeeeeeeee\n"
        f"affected  {row}  D1     acknowledged by ops\n"
        f"affected  {row}  F1     pending: renewal not verified in 2 target(s)\n"
        "ok        microsoft-ca  -                                     2020-07-01 12:00:00  "
        "P1     -\n"
        "\nREGISTERED IN (per tenant CA)\n"
        f"  {_T}  A1  Hub (iot-hub, verified), DPS (dps, unverified)\n"
        f"  {_T}  B1  no target lists it\n"
        f"  {_T}  C1  no target lists it\n"
        f"  {_T}  D1  no target lists it\n"
        f"  {_T}  F1  no target lists it\n"
        "\nTARGETS\n"
        "  iot-hub      Hub  2 CA(s), seen 2020-08-01 from upload\n"
        "  dps          DPS  0 CA(s), seen never from -  last read failed: forbidden: 403\n"
        "\nUPLOADS\n"
        "STATUS    BLOB         CERTIFICATES (SHA-1) OR ERROR\n"
        "analyzed  t/a.cer      A1, SHA-256 8888888888888888\n"
        "rejected  bad\\x1b.csr  not-a-certificate: a CSR\n"
        "analyzed  hub.json     registration listing (iot-hub-certificates)\n"
    )


def test_report_exit_code_is_1_only_for_what_is_open() -> None:
    def report(*certs: dict, uploads: tuple[dict, ...] = ()) -> dict[str, Any]:
        return {"certificates": list(certs), "uploads": list(uploads)}

    assert needs_action(report(_cert("a", "A", "affected", state="affected"))) is True
    assert needs_action(report(_cert("a", "A", "affected", state="resolved"))) is False
    assert needs_action(report(_cert("a", "A", "ok", state="ok"))) is False
    assert needs_action(report(_cert("a", "A", "ok", state="look-alike"))) is True
    # not a tenant CA (no state): open while mismatched and not acknowledged
    assert needs_action(report(_cert("m", "M", "mismatch", role="-"))) is True
    assert needs_action(report(_cert("m", "M", "mismatch", role="-", acknowledged={}))) is True
    assert (
        needs_action(report(_cert("m", "M", "mismatch", role="-", acknowledged={"by": "o"})))
        is False
    )
    assert (
        needs_action(
            report(_cert("m", "M", "ok", role="-"), _cert("a", "A", "affected", state="affected"))
        )
        is True
    )
    refused = {"status": "rejected"}
    assert needs_action(report(uploads=(refused,))) is True
    assert needs_action(report(uploads=({**refused, "retired": {"by": "ops"}},))) is False
    assert needs_action(report(uploads=({"status": "analyzed"},))) is False


# shared/local/registrations_cmd.py: the pull's summary.


def test_registrations_pull_summary_names_each_target_its_groups_and_warnings() -> None:
    document = {
        "now": "N",
        "tenants_refreshed": ["a", "b"],
        "targets": [
            {"display_name": "Hub", "kind": "iot-hub", "target": "/s/hub", "error": None,
             "certificates": 2, "groups": None, "warnings": ["w1"]},
            {"display_name": "DPS", "kind": "dps", "target": "/s/dps", "error": None,
             "certificates": 1, "groups": 0},  # no group is still a count
            {"display_name": "Bad", "kind": "iot-hub", "target": "/s/bad",
             "error": {"code": "forbidden", "message": "403"}},
        ],
    }  # fmt: skip
    out = io.StringIO()
    render_pull(document, out)
    assert out.getvalue() == (
        "registrations pull at N: 2 target(s) read, 1 unreadable\n"
        "  read        Hub (iot-hub): 2 certificate(s)\n"
        "  warning     Hub (iot-hub): w1\n"
        "  read        DPS (dps): 1 certificate(s), 0 group(s)\n"
        "  unreadable  Bad (iot-hub): forbidden: 403\n"
        "              /s/bad keeps its last good listing\n"
        "  re-timed the alerts of 2 tenant(s)\n"
    )
    out = io.StringIO()
    render_pull({"now": "N", "tenants_refreshed": [], "targets": []}, out)
    assert out.getvalue() == "registrations pull at N: 0 target(s) read, 0 unreadable\n"


# shared/local/silence_cmd.py: what ack, unack and retire say, on Azurite.

_TENANT = "a11c1ea2-1111-4222-8333-944445555666"


def _tenant_ca(rt: handlers.Runtime, seed: int) -> samples.Issued:
    issued = samples.tenant_ca(_TENANT, datetime(2020, 7, 1, tzinfo=UTC), key_seed=3400 + seed)
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    container.upload_blob(f"t/{seed}.cer", issued.der, overwrite=True)
    process_pending(rt)
    return issued


def _sha1(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der, usedforsecurity=False).hexdigest().upper()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("tokyo_local_time")  # a naive local time would show
def test_ack_unack_and_retire_say_what_they_did_and_how_to_undo_it(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = _tenant_ca(app_runtime, 1)
    other = _tenant_ca(app_runtime, 2)  # an ack, unack or retire by SHA-1 leaves it alone
    assert _cli(capsys, "ack", _sha1(other), "--by", "ann")[0] == 0
    sha1, sha256 = _sha1(ca), hashlib.sha256(ca.der).hexdigest()
    until = datetime.now(UTC) + timedelta(days=3)
    assert _cli(
        capsys, "ack", sha1, "--by", "ann", "--note", "why", "--until", until.isoformat()
    ) == (
        0,
        f"acknowledged 1 tenant CA(s) of tenant {_TENANT} (by ann) until "
        f"{until:%Y-%m-%d %H:%M} UTC; their alerts stop. A CA uploaded later is not covered. "
        f"Undo: ca-watch unack {sha1} --by NAME\n",
        "",
    )
    assert _report_of(app_runtime, sha256)["acknowledged"]["note"] == "why"
    assert _cli(capsys, "unack", sha1, "--by", "bob") == (
        0,
        f"withdrew 1 acknowledgement(s) of tenant {_TENANT}; its alerts resume\n",
        "",
    )
    assert _cli(capsys, "unack", sha1, "--by", "bob") == (
        2,
        "",
        f"ca-watch: error: {sha1!r}: no acknowledgement in force to withdraw\n",
    )
    assert _cli(capsys, "retire", sha1, "--by", "cy", "--note", "gone") == (
        0,
        f"retired tenant CA {sha256} of tenant {_TENANT} (by cy)\n",
        "",
    )
    retired = _report_of(app_runtime, sha256)["retired"]
    assert (retired["by"], retired["note"]) == ("cy", "gone")
    at = datetime.fromisoformat(retired["at"])  # UTC, though the machine's zone is not
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=2)
    notices = run_alerts(
        store=app_runtime.store,
        settings=app_runtime.settings,
        rules=app_runtime.rules,
        now=datetime.now(UTC),
    )["notices"]
    assert sorted((n["kind"], n["by"], n["certificate"] == sha256) for n in notices) == [
        ("ack-withdrawn", "bob", True),
        ("acknowledged", "ann", False),
        ("acknowledged", "ann", True),
        ("retired", "cy", True),
    ]
    assert _cli(capsys, "ack", _TENANT, "--by", "ann")[1].startswith(
        f"acknowledged 2 tenant CA(s) of tenant {_TENANT} (by ann); their alerts stop."
    )


def _report_of(rt: handlers.Runtime, sha256: str) -> dict[str, Any]:
    return next(c for c in rt.store.report()["certificates"] if c["sha256_fingerprint"] == sha256)


def test_silence_commands_refuse_what_is_not_on_record(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = "00000000-0000-4000-8000-0000000000ff"  # a well-formed tenant id, no CA
    assert _cli(capsys, "ack", nobody, "--by", "ops") == (
        2,
        "",
        f"ca-watch: error: {nobody!r}: no tenant CA on record with that tenant id, SHA-1 "
        "thumbprint or SHA-256 (see `ca-watch report`)\n",
    )
    assert _cli(capsys, "ack", nobody, "--by", "ops", "--until", "2001-01-01") == (
        2,
        "",
        "ca-watch: error: --until '2001-01-01' is not in the future\n",
    )
    assert _cli(capsys, "retire", "nothing.cer", "--by", "ops") == (
        2,
        "",
        "ca-watch: error: 'nothing.cer': neither a tenant CA (SHA-1 or SHA-256) nor an upload "
        "name on record (see `ca-watch report`)\n",
    )
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    container.upload_blob("oops.csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n")
    process_pending(app_runtime)
    assert _cli(capsys, "retire", "oops.csr", "--by", "ops") == (
        0,
        "retired upload 'oops.csr' (by ops): hidden from the report\n",
        "",
    )


# shared/local/azurite_cmd.py: status, stop and a second start, on a recorded pid. The
# recorded process is a stand-in whose command line names azurite: a real start needs the
# default ports 10000-10002, which other work on this machine may hold (the subprocess test
# in test_cli_commands.py starts a real one).


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "azurite"],
        start_new_session=True,
    )
    (tmp_path / "azurite.pid").write_text(f"{stand_in.pid}\n")
    yield tmp_path, stand_in
    stand_in.kill()
    stand_in.wait()


def test_azurite_status_stop_and_start_on_a_recorded_azurite(
    recorded: tuple[Path, subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    location, stand_in = recorded
    pid = stand_in.pid
    where = ("--location", str(location))
    assert _cli(capsys, "azurite", "status", *where) == (
        0,
        f"running (pid {pid}), data in {location}\n",
        "",
    )
    assert _cli(capsys, "azurite", "start", *where) == (
        0,
        f"Azurite already running (pid {pid}), data in {location}\n",
        "",
    )
    assert _cli(capsys, "azurite", "stop", *where) == (
        0,
        f"Azurite stopped (pid {pid}); its data stays in {location}\n",
        "",
    )
    assert stand_in.wait(timeout=5) == -signal.SIGTERM  # asked to end, not killed
    assert not (location / "azurite.pid").exists()
    assert _cli(capsys, "azurite", "status", *where) == (1, f"not running ({location})\n", "")
    assert _cli(capsys, "azurite", "stop", *where) == (
        0,
        f"no Azurite started by ca-watch is running for {location}\n",
        "",
    )


def test_azurite_stop_kills_what_ignores_the_request_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print(flush=True); time.sleep(60)", "azurite"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline()  # handler set
        (tmp_path / "azurite.pid").write_text(f"{stubborn.pid}\n")
        waited: list[float] = []
        clock = iter(range(0, 1000, 2))  # each look at the clock: 2 s later
        # azurite_cmd's own view of time only (the time module itself serves other threads)
        fake_time = SimpleNamespace(monotonic=lambda: float(next(clock)), sleep=waited.append)
        monkeypatch.setattr(azurite_cmd, "time", fake_time)
        code, out, _ = _cli(capsys, "azurite", "stop", "--location", str(tmp_path))
        assert code == 0 and out.startswith(f"Azurite stopped (pid {stubborn.pid})")
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
        assert waited == [0.1] * 4  # polled every 0.1 s until 10 s (at 2, 4, 6, 8), killed
    finally:
        stubborn.kill()
        stubborn.wait()


def test_report_text_fits_a_narrow_terminal_column_by_column(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each column gives way as the report says (tenant and SHA-1 cut, the state and the
    upload detail wrapped, a long blob name cut on the left): tests/data/cli-text/."""
    monkeypatch.setenv("COLUMNS", "60")
    report = _report()
    report["certificates"][1]["sha1_thumbprint"] = "B1" + "0" * 38
    report["uploads"][0]["name"] = "tenants/" + "x" * 40 + ".cer"
    # wraps after "not" at 30 columns, after "a" at 31
    report["uploads"][1]["error"]["message"] = "a CSR, not a certificate at all"
    out = _Terminal()
    render_report(report, out)
    golden = Path(__file__).parent / "data" / "cli-text" / "report-60-columns.txt"
    assert out.getvalue() == golden.read_text(encoding="utf-8")


def test_report_state_column_adds_only_the_detail_of_its_own_state() -> None:
    cert = _cert("a", "A", resolved_by="b" * 64, acknowledged={}, renewal_pending=["x"])
    for state_id in ("ok", "look-alike"):  # details of other states never leak in
        assert state_column(cert, state_id, {}) == state(state_id).label
    assert state_column(_cert("a", "A", acknowledged={}), "acknowledged", {}) == (
        f"{state('acknowledged').label} by ?"
    )


def test_report_text_skips_what_is_not_a_tenant_ca_and_marks_what_is_unknown() -> None:
    report = {
        "certificates": [
            _cert("9" * 64, "P1", role="microsoft-ca"),
            _cert("e" * 64, "E1", role=None),  # no Azure Sphere role at all
            _cert("a" * 64, "A1", registrations=[]),
        ],
        "uploads": [{"status": "analyzed", "name": "empty.p7b", "error": None, "certificates": []}],
        "targets": [{"kind": "dps", "display_name": "D", "certificates": 0}],
    }
    out = io.StringIO()
    render_report(report, out)
    text = out.getvalue()
    rows = [re.split(r" {2,}", line) for line in text.splitlines()]
    assert ["ok", "-", "-", "2020-07-01 12:00:00", "E1", "-"] in rows
    assert f"\nREGISTERED IN (per tenant CA)\n  {_T}  A1  no target lists it\n\n" in text
    assert text.endswith("analyzed  empty.p7b  -\n")


def test_report_exit_code_after_a_closed_tenant_ca_and_alone_ok() -> None:
    ok = _cert("m", "M", "ok", role="-")
    assert needs_action({"certificates": [ok], "uploads": []}) is False
    closed = _cert("r", "R", "affected", state="resolved")
    still = _cert("a", "A", "affected", state="affected")
    assert needs_action({"certificates": [closed, still], "uploads": []}) is True


def test_report_html_says_where_it_wrote_and_what_it_could_not(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "fleet.html"
    assert _cli(capsys, "report", "--html", str(page), "--now", "2020-08-04T09:00:00Z") == (
        0,
        f"fleet report written to {page}\n",
        "",
    )
    assert "<title>CA Rotation Watch: fleet report 2020-08-04" in page.read_text(encoding="utf-8")
    code, out, err = _cli(capsys, "report", "--html", str(page), "--json")
    assert (code, err) == (0, f"fleet report written to {page}\n")  # stdout: the JSON alone
    assert json.loads(out)["certificates"] == []
    missing = tmp_path / "no" / "fleet.html"
    assert _cli(capsys, "report", "--html", str(missing)) == (
        2,
        "",
        f"ca-watch: error: --html {str(missing)!r}: the folder {str(missing.parent)!r} "
        "does not exist\n",
    )
    # /proc takes no new file: the write fails before the partial file exists
    assert _cli(capsys, "report", "--html", "/proc/fleet.html") == (
        2,
        "",
        "ca-watch: error: cannot write '/proc/fleet.html': No such file or directory\n",
    )


class _Credential:
    """Stands in for an Entra credential (no token service runs here): notes the
    azure.identity log level while asked, then gives a token or fails as
    DefaultAzureCredential does without `az login`."""

    def __init__(self, signed_in: bool) -> None:
        self.signed_in = signed_in
        self.asked: list[tuple[str, int]] = []

    def get_token(self, scope: str) -> object:
        self.asked.append((scope, logging.getLogger("azure.identity").level))
        if not self.signed_in:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
        return object()


def test_registrations_pull_asks_arm_for_a_token_quietly_first() -> None:
    identity_log = logging.getLogger("azure.identity")
    identity_log.setLevel(logging.INFO)
    try:
        signed_in = _Credential(True)
        assert _signed_in(signed_in) is signed_in
        assert signed_in.asked == [("https://management.azure.com/.default", logging.CRITICAL)]
        assert identity_log.level == logging.INFO  # restored
        with pytest.raises(UsageError, match=r"^no Azure credential: run `az login`$"):
            _signed_in(_Credential(False))
        assert identity_log.level == logging.INFO
    finally:
        identity_log.setLevel(logging.NOTSET)


@pytest.mark.usefixtures("tokyo_local_time")
def test_alerts_run_without_now_is_an_on_time_run_of_the_timer_function(
    app_runtime: handlers.Runtime,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    code, out, _ = _cli(capsys, "alerts", "run")
    assert code == 0 and out.startswith("alerts run at ") and ": 0 item(s) due\n" in out
    assert "past due" not in caplog.text  # on demand, not a missed schedule


def test_alerts_run_says_when_the_timer_function_is_missing_or_returns_nothing(
    app_runtime: handlers.Runtime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stand-ins for function_app.py's registration, which cannot be broken otherwise here.
    from shared.local import runner

    def missing(name: str) -> object:
        raise LookupError(f"function_app.py registers no function {name}")

    monkeypatch.setattr(runner, "registered_function", missing)
    assert _cli(capsys, "alerts", "run", "--now", "2020-08-04T09:00:00Z") == (
        2,
        "",
        "ca-watch: error: function_app.py registers no function send_alerts\n",
    )
    monkeypatch.setattr(runner, "registered_function", lambda name: lambda timer: None)
    assert _cli(capsys, "alerts", "run", "--now", "2020-08-04T09:00:00Z") == (
        1,
        "",
        "ca-watch: error: RuntimeError: the send_alerts function returned without an alert "
        "document (CA_WATCH_DEBUG=1 shows the traceback)\n",
    )


@pytest.mark.parametrize("command", ["alerts", "registrations"])
def test_a_command_group_needs_an_action(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command])
    assert done.value.code == 2
    assert "the following arguments are required: ACTION" in capsys.readouterr().err


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_azurite_start_serves_its_ports_and_a_second_start_finds_them_busy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Free ports stand in for 10000-10002, which other work on this machine may hold.
    blob, queue, table = _free_ports(3)
    monkeypatch.setattr(azurite_cmd, "DEFAULT_PORTS", (blob, queue, table))
    location = tmp_path / "store"
    location.mkdir()
    code, out, err = _cli(capsys, "azurite", "start", "--location", str(location))
    try:
        pid = int((location / "azurite.pid").read_text())
        assert (code, err) == (0, "")
        assert out == (
            f"Azurite started on 127.0.0.1:{blob}-{table} (pid {pid}), data in {location}.\n"
            "Storage commands use it with no settings (CertStorage defaults to "
            "UseDevelopmentStorage=true). Stop it with `ca-watch azurite stop`.\n"
        )
        for port in (blob, queue, table):
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        other = tmp_path / "other"
        other.mkdir()
        assert _cli(capsys, "azurite", "start", "--location", str(other)) == (
            2,
            "",
            f"ca-watch: error: port(s) {blob}, {queue}, {table} already in use: another "
            "Azurite is running (stop it first), or point CertStorage at it\n",
        )
    finally:
        assert _cli(capsys, "azurite", "stop", "--location", str(location))[0] == 0
        # Started by this process, so its child: reaped here, not by whoever waits next
        # (mutmut's runner waits for any child and fails on one it did not start).
        with contextlib.suppress(ProcessLookupError):  # a mutant of stop leaves it running
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def test_registrations_pull_with_no_source_says_what_to_set(
    app_runtime: handlers.Runtime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("REGISTRATION_TARGETS", "IOT_CENTRAL_APPS", "SPHERE_CATALOGS"):
        monkeypatch.delenv(name, raising=False)
    assert _cli(capsys, "registrations", "pull") == (
        2,
        "",
        "ca-watch: error: REGISTRATION_TARGETS is not set: give a comma list of IoT Hub / DPS "
        "resource ids (az iot hub show -n HUB --query id -o tsv), or set IOT_CENTRAL_APPS or "
        "SPHERE_CATALOGS\n",
    )


def test_report_text_shows_the_fleet_pages_state_at_now(
    app_runtime: handlers.Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tenant CA with no renewal yet is "pending" in the tables; the page (and so the
    text) calls it ok while none of its deadlines is due at --now."""
    issued = samples.tenant_ca(_TENANT, datetime(2021, 1, 1, tzinfo=UTC), key_seed=3600)
    container = app_runtime.blobs.get_container_client(app_runtime.settings.cert_container)
    container.upload_blob("t/x.cer", issued.der)
    process_pending(app_runtime)
    (cert,) = app_runtime.store.report()["certificates"]
    assert cert["state"] == "pending"
    code, out, _ = _cli(capsys, "report", "--now", "2021-02-01T00:00:00Z")
    row = next(line for line in out.splitlines() if _sha1(issued) in line)
    assert (code, re.split(r" {2,}", row)[-1]) == (0, "ok")


def test_azurite_status_ignores_a_recorded_pid_that_is_not_an_azurite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "azurite.pid").write_text(f"{other.pid}\n")  # a pid reused since
        assert _cli(capsys, "azurite", "status", "--location", str(tmp_path)) == (
            1,
            f"not running ({tmp_path})\n",
            "",
        )
    finally:
        other.kill()
        other.wait()


def test_report_uploads_say_which_listing_changed_nothing_and_which_are_retired() -> None:
    """Issue 21: an uploaded listing that changed nothing says which target and why (a live
    target, a stale listing), every such target once, the recorded ones not at all; a
    retired upload shows as retired, whatever its analysis said."""
    report = _report()
    report["uploads"] = [
        {"status": "analyzed", "name": "hubs.json", "error": None, "certificates": [],
         "listing_outcomes": [
             {"outcome": "live-target", "target": "/sub/hub1"},
             {"outcome": "recorded", "target": "manifest-app"},
             {"outcome": "stale-listing", "target": "/sub/dps1"},
         ]},
        {"status": "analyzed", "name": "ok.json", "error": None, "certificates": [],
         "listing_outcomes": [{"outcome": "recorded", "target": "app2"}]},
        {"status": "rejected", "name": "junk.bin", "retired": {"by": "ops"}, "certificates": [],
         "error": {"code": "not-a-certificate", "message": "neither PEM nor DER"}},
    ]  # fmt: skip
    out = io.StringIO()
    render_report(report, out)
    rows = [re.split(r" {2,}", line.strip()) for line in out.getvalue().splitlines()]
    assert [
        "analyzed",
        "hubs.json",
        "listing ignored (live-target: /sub/hub1; stale-listing: /sub/dps1)",
    ] in rows
    assert ["analyzed", "ok.json", "-"] in rows
    assert ["retired", "junk.bin", "not-a-certificate: neither PEM nor DER"] in rows
