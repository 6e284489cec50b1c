"""`make mutation`'s own set-up (scripts/mutation.py): each module's test selection must
name tests that exist, or the run would quietly mutate against fewer tests than it says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutation.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mutation = load_script()


@pytest.mark.parametrize("module", sorted(mutation.MODULE_TESTS))
def test_every_selection_names_files_and_tests_that_exist(module: str) -> None:
    assert (mutation.ROOT / module).is_file()
    assert mutation.missing_tests(mutation.MODULE_TESTS[module]) == []


def test_a_node_id_in_a_selection_is_passed_to_mutmut() -> None:
    module = "shared/storage/alert_index.py"
    node = "tests/test_registrations.py::test_recheck_reads_only_due_tenants"
    assert node in mutation.MODULE_TESTS[module]
    cfg = mutation._setup_cfg(module, mutation.MODULE_TESTS[module])
    assert f"\n    {node}\n" in cfg


@pytest.mark.parametrize(
    "entry",
    [
        "tests/test_gone.py",
        "tests/test_registrations.py::test_renamed_long_ago",
        "--deselect=tests/test_pipeline.py::test_renamed_long_ago",
    ],
)
def test_a_selection_naming_a_missing_test_stops_the_run_by_name(entry: str) -> None:
    with pytest.raises(SystemExit, match=f"no such test.*{entry.split('=')[-1]}"):
        mutation._setup_cfg("shared/storage/uploads.py", ["tests/test_pipeline.py", entry])


def test_a_modules_inputs_are_its_source_its_test_files_and_the_shared_ones() -> None:
    inputs = mutation.inputs_of("shared/storage/alert_index.py")
    assert {
        "shared/storage/alert_index.py",
        "tests/test_mutants_alert_index.py",
        "tests/test_registrations.py",  # from a node id
        "tests/test_alerts_runner.py",  # also named in a --deselect
        "tests/conftest.py",
    } <= inputs
    assert "tests/test_pipeline.py" not in inputs


UPLOADS = "shared/storage/uploads.py"
SELECTION = mutation.MODULE_TESTS[UPLOADS]


@pytest.mark.parametrize(
    ("row", "changed", "stale"),
    [
        (None, set(), True),  # never measured
        ({"commit": "c", "tests": SELECTION, "partial": True}, set(), True),  # stopped early
        ({"commit": "c", "tests": SELECTION}, None, True),  # git cannot tell (shallow clone)
        ({"commit": "c", "tests": SELECTION}, set(), False),
        ({"commit": "c", "tests": SELECTION}, {"shared/analysis/der.py", "README.md"}, False),
        ({"commit": "c", "tests": SELECTION}, {"scripts/mutation.py"}, False),
        ({"commit": "c", "tests": SELECTION}, {UPLOADS}, True),
        ({"commit": "c", "tests": SELECTION}, {"tests/test_table_limits.py"}, True),  # its test
        ({"commit": "c", "tests": SELECTION[:1]}, set(), True),  # another selection
    ],
)
def test_a_row_is_run_again_only_when_an_input_changed(
    monkeypatch: pytest.MonkeyPatch,
    row: dict[str, object] | None,
    changed: set[str] | None,
    stale: bool,
) -> None:
    monkeypatch.setattr(mutation, "changed_since", lambda commit: changed)
    assert mutation.is_stale(UPLOADS, row) is stale


def test_changes_since_a_commit_count_committed_and_uncommitted_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(
            command, cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.py").write_text("a\n")
    (tmp_path / "b.py").write_text("b\n")
    git("add", ".")
    git("commit", "-qm", "first")
    first = git("rev-parse", "HEAD")
    (tmp_path / "a.py").write_text("a2\n")
    git("commit", "-qam", "second")
    (tmp_path / "b.py").write_text("b2\n")  # not committed
    (tmp_path / "c.py").write_text("c\n")  # not tracked
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    assert mutation.changed_since(first) == {"a.py", "b.py", "c.py"}
    assert mutation.changed_since(git("rev-parse", "HEAD")) == {"b.py", "c.py"}
    assert mutation.changed_since("0" * 40) is None
    assert mutation.changed_since("") is None


def test_names_in_mutants_md_are_read_with_their_shorthand() -> None:
    text = (
        "## shared/a.py\n\n- `x_parse__mutmut_5`, `_7` and `_9` to `_11`;"
        " `xǁStoreǁput__mutmut_2`.\n## shared/b.py\n\n- `_3` alone names nothing.\n"
    )
    assert mutation.named_in_sections(text) == {
        "shared/a.py": {("parse", 5), ("parse", 7), ("parse", 9), ("parse", 10), ("parse", 11)}
        | {("put", 2)},
        "shared/b.py": set(),
    }
    record = {
        "shared/a.py": {"survivors": ["shared.a.x_parse__mutmut_10", "shared.a.x_parse__mutmut_8"]},
        "shared/b.py": {"survivors": ["shared.b.xǁStoreǁput__mutmut_2"]},
    }
    assert mutation.unargued(record, text) == {
        "shared/a.py": ["x_parse__mutmut_8"],
        "shared/b.py": ["xǁStoreǁput__mutmut_2"],  # argued under another module's heading
    }


def test_every_recorded_survivor_is_killed_or_argued_in_mutants_md() -> None:
    """The record (.mutation.json, from the last `make mutation`) and the arguments
    (tests/MUTANTS.md) travel together: a survivor nobody looked at fails here."""
    import json

    record = json.loads((mutation.ROOT / ".mutation.json").read_text())
    assert mutation.unargued(record, mutation.ARGUED.read_text()) == {}


def test_the_channels_and_every_cli_command_are_mutated() -> None:
    """Issue 24: `make mutation` reaches the channels and the `ca-watch` commands, each
    against tests of its own, with Azurite lent to their runs."""
    wanted = {
        path.relative_to(mutation.ROOT).as_posix()
        for pattern in ("shared/channels/*.py", "shared/local/*_cmd.py")
        for path in mutation.ROOT.glob(pattern)
    }
    assert len(wanted) >= 12
    assert wanted <= set(mutation.MODULE_TESTS)
    assert all(mutation._needs_azurite(module) for module in wanted)
    # SMTP against the time left in the pass on a trickling relay (the example)
    smtp = mutation.MODULE_TESTS["shared/channels/smtp.py"]
    assert {"tests/test_channel_smtp.py", "tests/test_smtp_time_budget.py"} <= set(smtp)
    # No module stem is ambiguous on the command line (`make mutation MODULES=smtp`).
    stems = [Path(module).stem for module in mutation.MODULE_TESTS]
    assert len(stems) == len(set(stems))
