"""Issue 24 "Mistakes cannot be undone": `make run` wiped `.azurite/` on every run, the same
store `ca-watch azurite start` keeps an operator's own data in. The demo now keeps its data
in `.azurite-demo/` and never touches `.azurite/`.

The demo runs whole, on its own Azurite, in a copy of the project root (as in
tests/test_cli_demo.py), with an operator's store already in `.azurite/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_root import project_copy, run_demo


@pytest.mark.timeout(300)
def test_make_run_keeps_its_own_store_and_leaves_the_operators_alone(
    tmp_path: Path,
) -> None:
    root = project_copy(tmp_path / "project")
    operator = root / ".azurite"
    operator.mkdir()
    (operator / "__azurite_db_table__.json").write_text('{"the operator": "own data"}')

    done = run_demo(root, timeout=280)

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name for p in operator.iterdir()) == ["__azurite_db_table__.json"]
    assert (operator / "__azurite_db_table__.json").read_text() == '{"the operator": "own data"}'
    demo_store = root / ".azurite-demo"
    assert (demo_store / "__azurite_db_table__.json").exists()
    assert "azurite start --location .azurite-demo" in done.stdout
