"""Test set-up. The environment switches must be in place before anything imports Lumibot."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

import pytest  # noqa: E402

from trading.settings import Settings  # noqa: E402


@pytest.fixture
def settings() -> Settings:
    return Settings.defaults()
