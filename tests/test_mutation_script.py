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
