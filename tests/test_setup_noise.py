"""Issue 24 "Setup noise": the first hour with the tool says one clear thing per mistake.

Each test failed on the code before the fix: a 15-line credential dump (exit 1, a failure
recorded) from `registrations pull` without `az login`; ~40 lines of setuptools warnings
from `pip install -e .`; the top-level usage for a misspelt option of a subcommand; and
"start Azurite" for a malformed CertStorage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.app import handlers
from shared.app.registration_pull import claim_refresh
from shared.local.azurite import free_port
from shared.local.cli import main as cli_main
from tests.registration_samples import HUB_ID

PROJECT = Path(__file__).resolve().parent.parent
NOW = datetime(2020, 8, 10, 9, 0, tzinfo=UTC)

# What azure-identity reads to find a credential: none of it may leak in from the machine.
CREDENTIAL_VARIABLES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_", "MSAL_")


def signed_out_environment(home: Path) -> dict[str, str]:
    """The environment of a developer who never ran `az login`: no service principal, no
    CLI profile, no managed identity endpoint (IMDS points at a closed loopback port, so the
    probe fails at once instead of waiting on 169.254.169.254)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_VARIABLES)}
    (home / "az").mkdir(parents=True)
    env.update(
        HOME=str(home),
        AZURE_CONFIG_DIR=str(home / "az"),
        AZD_CONFIG_DIR=str(home / "azd"),
        AZURE_POD_IDENTITY_AUTHORITY_HOST=f"http://127.0.0.1:{free_port()}",
        REGISTRATION_TARGETS=HUB_ID,
        PYTHONPATH=str(PROJECT),
    )
    return env


@pytest.mark.timeout(90)
def test_registrations_pull_without_a_credential_says_run_az_login_and_records_nothing(
    app_runtime: handlers.Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.local.cli",
            "registrations",
            "pull",
            "--now",
            NOW.isoformat(),
        ],
        cwd=tmp_path,
        env=signed_out_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )

    assert done.stderr == "ca-watch: error: no Azure credential: run `az login`\n", done.stderr
    assert done.returncode == 2
    assert done.stdout == ""
    # Nothing on record: no target error for the self-health alert, no pull time that
    # would keep the timer from pulling.
    assert app_runtime.store.report()["targets"] == []
    monkeypatch.setenv("REGISTRATION_TARGETS", HUB_ID)
    handlers.reset_runtime()
    rt = handlers.runtime()
    assert claim_refresh(rt.store, rt.settings, NOW)


def test_registrations_pull_without_a_credential_in_process_too(
    app_runtime: handlers.Runtime,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same, in this process (what `make mutation` can see), with the process-wide
    credential built afresh from the signed-out environment."""
    from shared.storage.connections import shared_credential

    for name in list(os.environ):
        if name.startswith(CREDENTIAL_VARIABLES):
            monkeypatch.delenv(name)
    for name, value in signed_out_environment(tmp_path / "home").items():
        monkeypatch.setenv(name, value)
    handlers.reset_runtime()
    shared_credential.cache_clear()
    try:
        code = cli_main(["registrations", "pull", "--now", NOW.isoformat()])
    finally:
        shared_credential.cache_clear()
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", "ca-watch: error: no Azure credential: run `az login`\n")
    assert app_runtime.store.report()["targets"] == []


def test_a_package_build_prints_no_setuptools_warning(tmp_path: Path) -> None:
    """`pip install -e .` builds with setuptools from pyproject.toml: the same build, to a
    wheel, in a copy of the tree, must print no warning and still ship the data files."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT / "shared", source / "shared", ignore=ignore)
    for name in ("pyproject.toml", "function_app.py"):
        shutil.copy(PROJECT / name, source / name)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            "dist",
            "./src",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "warn" not in output.lower(), output
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = {
        path.relative_to(PROJECT).as_posix()
        for pattern in ("*.j2", "*.toml")
        for path in (PROJECT / "shared").rglob(pattern)
    }
    assert data and data <= shipped


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["upload", "--prefx", "x"], "usage: ca-watch upload "),
        (["report", "--jsno"], "usage: ca-watch report "),
        (["azurite", "start", "--locaton", "x"], "usage: ca-watch azurite start "),
        (["registrations", "pull", "--json", "extra"], "usage: ca-watch registrations pull "),
    ],
)
def test_a_misspelt_option_shows_the_usage_of_its_own_subcommand(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli_main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.startswith(usage), err
    assert f"error: unrecognized arguments: {argv[-2] if argv[-1] == 'x' else argv[-1]}" in err


def test_an_unknown_option_before_the_command_still_shows_the_top_level_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--bogus", "report"])
    assert capsys.readouterr().err.startswith("usage: ca-watch [-h]")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("my-storage-account", "the first part is not KEY=VALUE"),
        ("AccountName=acct;AccountKey=not base64!", "AccountKey is not base64"),
        ("AcountName=acct;AccountKey=YWJj", "unknown key 'AcountName' (did you mean AccountName?)"),
        ("DefaultEndpointsProtocol=https;AccountName=acct", "it holds no credential"),
        ("AccountKey=YWJj", "it names no account"),
        ("DefaultEndpointsProtocol=htps;AccountName=a;AccountKey=YWJj", "must be https or http"),
        ("BlobEndpoint=blob.local;TableEndpoint=http://t;AccountKey=YWJj", "not an http(s) URL"),
        ("UseDevelopmentStorage=yes", "UseDevelopmentStorage=true is the only form"),
        ("AccountName=a;;AccountKey=YWJj", "the part after AccountName is not KEY=VALUE"),
    ],
)
def test_a_malformed_certstorage_says_what_is_wrong_with_it_not_start_azurite(
    value: str, says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CertStorage", value)
    handlers.reset_runtime()
    try:
        code = cli_main(["report"])
    finally:
        handlers.reset_runtime()
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ca-watch: error: CertStorage is not a valid connection string: ")
    assert says in err
    assert "azurite" not in err.lower()
    assert len(err.splitlines()) == 1


def test_the_malformed_certstorage_error_never_echoes_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An account key pasted without its `AccountKey=`: a part with no key to name.
    secret = "ZmFrZWtleWZvcnRoZXRlc3RvbmxaZmFrZWtleQ=="
    monkeypatch.setenv("CertStorage", f"AccountName=acct;{secret}")
    handlers.reset_runtime()
    assert cli_main(["report"]) == 2
    handlers.reset_runtime()
    err = capsys.readouterr().err
    assert "the part after AccountName is not KEY=VALUE" in err
    assert secret[:12] not in err


def test_a_well_formed_certstorage_passes_the_check() -> None:
    from shared.storage.connections import AZURITE_KEY, connection_string_problem

    assert (
        connection_string_problem(
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={AZURITE_KEY};"
            "EndpointSuffix=core.windows.net"
        )
        is None
    )
    sas = (
        "BlobEndpoint=https://a.blob.core.windows.net/;TableEndpoint=https://a.table.core."
        "windows.net/;SharedAccessSignature=sv=2022-11-02&ss=bt&sig=abc%3D"
    )
    assert connection_string_problem(sas) is None
