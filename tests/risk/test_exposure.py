"""Max concurrent positions, gross long exposure (resized to the room left) and orders per iteration."""


import pytest

from trading.risk.exposure import gross_exposure, max_positions, orders_per_iteration
from trading.risk.verdict import Action


@pytest.mark.parametrize("held, approved, limit, action", [
    (9, 0, 10, Action.ALLOW), (9, 1, 10, Action.DENY), (10, 0, 10, Action.DENY), (50, 0, 0, Action.ALLOW)])
def test_max_positions(held, approved, limit, action):
    assert max_positions(held, approved, limit).action == action


@pytest.mark.parametrize("long_value, notional, action, factor", [
    (70_000, 10_000, Action.ALLOW, 1.0), (75_000, 10_000, Action.RESIZE, 0.5), (80_000, 1_000, Action.DENY, 0.0)])
def test_gross_exposure_resizes_to_the_room_left(long_value, notional, action, factor):
    v = gross_exposure(long_value, notional, 100_000, 0.80)
    assert v.action == action and v.factor == pytest.approx(factor)


def test_orders_per_iteration():
    assert orders_per_iteration(9, 10).action == Action.ALLOW
    assert orders_per_iteration(10, 10).action == Action.DENY
