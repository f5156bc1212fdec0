"""The daily (3%) and weekly (10%) loss limits at and around their thresholds."""

from datetime import datetime

import pytest

from tests.risk.helpers import NY, T0, tracker
from trading.risk.loss_limits import daily_loss, weekly_loss
from trading.risk.verdict import Mode


@pytest.mark.parametrize("now, tripped", [(97_001, False), (97_000, True), (96_000, True)])
def test_daily_loss_limit_at_three_percent(now, tripped):
    hold = daily_loss(T0, tracker(100_000, now), 0.03)
    assert (hold is not None) is tripped
    if hold:
        assert hold.mode == Mode.REDUCING and hold.until == datetime(2024, 3, 6, tzinfo=NY)


@pytest.mark.parametrize("now, tripped", [(90_001, False), (90_000, True)])
def test_weekly_loss_limit_halts_until_monday(now, tripped):
    hold = weekly_loss(T0, tracker(100_000, now), 0.10)
    assert (hold is not None) is tripped
    if hold:
        assert hold.mode == Mode.HALTED and hold.until == datetime(2024, 3, 11, tzinfo=NY)
