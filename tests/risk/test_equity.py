"""Equity readings: one implausible jump needs the next reading's confirmation before any rule sees it."""

from datetime import timedelta

from tests.risk.helpers import T0, s, snap_at
from trading.risk.controller import RiskController
from trading.risk.equity import EquityTracker
from trading.risk.verdict import Mode


def test_bad_tick_needs_confirmation():
    eq = EquityTracker()
    eq.observe(T0, 100_000, 0.10, 5)
    note = eq.observe(T0 + timedelta(hours=1), 60_000, 0.10, 5)  # one bad reading
    assert "not used" in note and eq.confirmed == 100_000
    assert eq.observe(T0 + timedelta(hours=2), 100_200, 0.10, 5) is None and eq.confirmed == 100_200
    eq.observe(T0 + timedelta(hours=3), 80_000, 0.10, 5)  # a real drop ...
    note = eq.observe(T0 + timedelta(hours=4), 79_500, 0.10, 5)  # ... confirmed by the next reading
    assert "confirms" in note and eq.confirmed == 79_500


def test_a_single_bad_tick_does_not_trip_a_halt():
    rc = RiskController(s())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(T0 + timedelta(hours=1), 50_000), [])  # bad tick: -50%
    assert rc.mode == Mode.ACTIVE
    rc.observe(snap_at(T0 + timedelta(hours=2), 100_100), [])
    assert rc.mode == Mode.ACTIVE
