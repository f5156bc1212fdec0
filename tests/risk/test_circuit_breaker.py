"""The circuit breaker: 5% below the recent peak pauses entries for 4 hours, protection still goes."""

from datetime import timedelta

import pytest

from tests.risk.helpers import T0, entry_decision, protect_decision, s, snap_at, tracker
from trading.risk.circuit_breaker import circuit_breaker
from trading.risk.controller import RiskController
from trading.risk.verdict import Mode


@pytest.mark.parametrize("now, tripped", [(104_501, False), (104_500, True)])
def test_circuit_breaker_five_percent_from_recent_peak(now, tripped):
    hold = circuit_breaker(T0, tracker(100_000, now, peak=110_000), 0.05, 4)
    assert (hold is not None) is tripped
    if hold:
        assert hold.mode == Mode.REDUCING and hold.until == T0 + timedelta(hours=4)


def test_circuit_breaker_denies_entries_but_not_protection_then_resumes():
    rc = RiskController(s())
    rc.observe(snap_at(T0 - timedelta(days=1), 100_000), [])  # yesterday's peak
    rc.observe(snap_at(T0, 96_000), [])  # today opens 4% below it: no rule trips
    assert rc.mode == Mode.ACTIVE
    notes = rc.observe(snap_at(T0 + timedelta(hours=1), 94_000), [])  # 6% below the peak, 2% on the day
    assert rc.mode == Mode.REDUCING and [h.gate for h in rc.holds] == ["circuit_breaker"]
    assert any(n.data.get("gate") == "circuit_breaker" for n in notes)
    out = rc.review([entry_decision(), protect_decision()], snap_at(T0 + timedelta(hours=1), 94_000))
    assert out[0].action == "denied" and "circuit_breaker" in out[0].reason and out[0].intent is None
    assert out[1].intent is not None, "protection is always allowed"
    rc.observe(snap_at(T0 + timedelta(hours=4, minutes=59), 94_000), [])
    assert rc.mode == Mode.REDUCING
    rc.observe(snap_at(T0 + timedelta(hours=5), 94_000), [])
    assert rc.mode == Mode.ACTIVE, "the cool-down ended and the peak was reset: no immediate re-trip"
    assert rc.review([entry_decision()], snap_at(T0 + timedelta(hours=5), 94_000))[0].intent is not None
