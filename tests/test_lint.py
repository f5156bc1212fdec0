"""The code base stays ruff-clean (the rules are in pyproject.toml)."""

import subprocess
import sys

from tests.conftest import ROOT


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
