"""Issue 24 "Mistakes cannot be undone": `make run` wiped `.azurite/` on every run, the same
store `ca-watch azurite start` keeps an operator's own data in. The demo now keeps its data
in `.azurite-demo/` and never touches `.azurite/`.

The demo runs whole, on its own Azurite, in a copy of the project root (as in
tests/test_cli_demo.py), with an operator's store already in `.azurite/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_make_run_keeps_its_own_store_and_leaves_the_operators_alone(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo.py", root / "scripts" / "demo.py")
    for name in ("shared", "function_app.py", "host.json", "node_modules"):
        (root / name).symlink_to(ROOT / name)
    (root / "tests").mkdir()
    (root / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    operator = root / ".azurite"
    operator.mkdir()
    (operator / "__azurite_db_table__.json").write_text('{"the operator": "own data"}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_", "CertStorage"))}
    env.pop("RULES_FILE", None)

    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "demo.py")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name for p in operator.iterdir()) == ["__azurite_db_table__.json"]
    assert (operator / "__azurite_db_table__.json").read_text() == '{"the operator": "own data"}'
    demo_store = root / ".azurite-demo"
    assert (demo_store / "__azurite_db_table__.json").exists()
    assert "azurite start --location .azurite-demo" in done.stdout
