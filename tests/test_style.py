"""One style everywhere: ruff's checks and its formatter, configured in pyproject.toml ([tool.ruff])."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "command", [["check", "--output-format", "concise"], ["format", "--check"]], ids=["lint", "format"]
)
def test_ruff_finds_nothing(command):
    # ruff comes with the dev extra that ./launch.sh installs; run as a module of this Python
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", ROOT], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
