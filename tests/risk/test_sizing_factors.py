"""Losing streak and recovery mode: each halves new entries, together they multiply, never grow one."""

from datetime import timedelta

import pytest

from tests.risk.helpers import T0, entry_decision, s, snap_at, tracker
from trading.risk.controller import RiskController
from trading.risk.sizing_factors import losing_streak, recovery
from trading.risk.verdict import Action


@pytest.mark.parametrize("results, resized", [
    ([-1, -1], False), ([-1, -1, -1], True), ([5, -1, -1, -1], True), ([-1, -1, -1, 2], False), ([-1, 0.5, -1], False),
])
def test_losing_streak_halves_until_a_win(results, resized):
    v = losing_streak(results, 3)
    assert (v.action == Action.RESIZE) is resized and (v.factor == 0.5 if resized else True)


@pytest.mark.parametrize("now, resized", [(98_000, False), (97_999, True)])
def test_recovery_mode_above_two_percent_drawdown(now, resized):
    assert (recovery(tracker(100_000, now), 0.02).action == Action.RESIZE) is resized


def test_streak_and_recovery_factors_multiply_and_never_grow_an_entry():
    rc = RiskController(s())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(T0 + timedelta(hours=1), 97_500), [-1.0, -2.0, -3.0])  # 2.5% drawdown and a streak
    (d,) = rc.review([entry_decision(budget=10_000)], snap_at(T0 + timedelta(hours=1), 97_500))
    assert d.intent.orders[0].qty == 25 and "losing_streak" in d.reason and "recovery" in d.reason
