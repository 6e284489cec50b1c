"""One answer to "am I under CI?", and one way for a test to need a tool: under CI a missing
tool fails the test (CI must never skip silently); on a developer machine it skips, saying
how to install it."""

from __future__ import annotations

import os
import shutil

import pytest

TRUE_WORDS = ("1", "true", "yes", "on")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUE_WORDS


def missing(message: str) -> None:
    """A needed tool is absent: fail under CI, skip elsewhere."""
    if under_ci():
        pytest.fail(f"{message} (CI must not skip: .ci/run installs it)")
    pytest.skip(message)


def require_command(*names: str, install: str) -> str:
    """The path of the first of ``names`` on PATH, or fail/skip with ``install`` as advice."""
    for name in names:
        if path := shutil.which(name):
            return path
    missing(f"{names[0]} is not installed ({install})")
    raise AssertionError("unreachable")  # missing() always raises
