"""`make run` in a copy of the project root, so a test never touches a developer's
.azurite, .azurite-demo, .outbox or .sample: scripts/demo.py copied (it finds the root from
its own path), the code, Azurite and the sample data linked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_copy(root: Path) -> Path:
    """Lay out ``root`` as a project the demo can run in; returns it."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo.py", root / "scripts" / "demo.py")
    for name in ("shared", "function_app.py", "host.json", "node_modules"):
        (root / name).symlink_to(ROOT / name)
    (root / "tests").mkdir()
    (root / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    return root


def run_demo(root: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """scripts/demo.py in ``root``, with none of the caller's alert or storage settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_", "CertStorage"))}
    env.pop("RULES_FILE", None)
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "demo.py")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
