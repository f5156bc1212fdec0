"""Each risk rule at and around its threshold, the controller's state machine, and the bad-tick filter."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from tests.builders import snapshot
from trading.intents import Decision, Intent, IntentKind, Step
from trading.journal import Journal
from trading.orders import build_bracket_for_budget
from trading.risk.circuit_breaker import circuit_breaker
from trading.risk.controller import COMMAND_KEY, NullRiskController, RiskController
from trading.risk.equity import EquityTracker
from trading.risk.exposure import gross_exposure, max_positions, orders_per_iteration
from trading.risk.kill_switch import kill_switch_file
from trading.risk.loss_limits import daily_loss, weekly_loss
from trading.risk.sizing_factors import losing_streak, recovery
from trading.risk.stale_data import stale_data
from trading.risk.verdict import Action, Mode
from trading.settings import Settings

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 3, 5, 10, 30, tzinfo=NY)  # a Tuesday


def tracker(start: float, now: float, peak: float | None = None) -> EquityTracker:
    eq = EquityTracker()
    eq.observe(T0, start, 0.5, 5)
    if peak:
        eq.observe(T0, peak, 0.5, 5)
    eq.observe(T0, now, 0.5, 5)
    return eq


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


@pytest.mark.parametrize("now, tripped", [(104_501, False), (104_500, True)])
def test_circuit_breaker_five_percent_from_recent_peak(now, tripped):
    hold = circuit_breaker(T0, tracker(100_000, now, peak=110_000), 0.05, 4)
    assert (hold is not None) is tripped
    if hold:
        assert hold.mode == Mode.REDUCING and hold.until == T0 + timedelta(hours=4)


def test_rules_switched_off_with_zero():
    eq = tracker(100_000, 50_000)
    assert daily_loss(T0, eq, 0) is None and weekly_loss(T0, eq, 0) is None and circuit_breaker(T0, eq, 0, 4) is None
    assert recovery(eq, 0).action == Action.ALLOW and losing_streak([-1, -1, -1], 0).action == Action.ALLOW


@pytest.mark.parametrize("results, resized", [
    ([-1, -1], False), ([-1, -1, -1], True), ([5, -1, -1, -1], True), ([-1, -1, -1, 2], False), ([-1, 0.5, -1], False),
])
def test_losing_streak_halves_until_a_win(results, resized):
    v = losing_streak(results, 3)
    assert (v.action == Action.RESIZE) is resized and (v.factor == 0.5 if resized else True)


@pytest.mark.parametrize("now, resized", [(98_000, False), (97_999, True)])
def test_recovery_mode_above_two_percent_drawdown(now, resized):
    assert (recovery(tracker(100_000, now), 0.02).action == Action.RESIZE) is resized


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


@pytest.mark.parametrize("lag_bars, action", [(0, Action.ALLOW), (1, Action.ALLOW), (2, Action.DENY),
                                              (30, Action.DENY)])
def test_stale_data_is_measured_in_bars_behind_the_market(lag_bars, action):
    fresh = pd.Timestamp("2024-03-05 14:30", tz=NY)
    assert stale_data(fresh - pd.Timedelta(hours=lag_bars), fresh, pd.Timedelta(hours=1), 2).action == action
    assert stale_data(None, fresh, pd.Timedelta(hours=1), 2).action == Action.DENY


def test_bad_tick_needs_confirmation():
    eq = EquityTracker()
    eq.observe(T0, 100_000, 0.10, 5)
    note = eq.observe(T0 + timedelta(hours=1), 60_000, 0.10, 5)  # one bad reading
    assert "not used" in note and eq.confirmed == 100_000
    assert eq.observe(T0 + timedelta(hours=2), 100_200, 0.10, 5) is None and eq.confirmed == 100_200
    eq.observe(T0 + timedelta(hours=3), 80_000, 0.10, 5)  # a real drop ...
    note = eq.observe(T0 + timedelta(hours=4), 79_500, 0.10, 5)  # ... confirmed by the next reading
    assert "confirms" in note and eq.confirmed == 79_500


# ---------------------------------------------------------------------------------------------- the controller
def s(**kw) -> Settings:
    return Settings.defaults(**{"kill_switch_file": "/nonexistent/HALT", **kw})


def entry_decision(symbol="AAPL", budget=10_000.0) -> Decision:
    order = build_bracket_for_budget(symbol, 100.0, budget, 0.05, 0.15, f"c-{symbol}")
    return Decision(Step.ENTRY, symbol, "enter", "test", Intent(IntentKind.ENTER, symbol, (order,)))


def protect_decision(symbol="MSFT") -> Decision:
    return Decision(Step.PROTECT, symbol, "protect", "test", Intent(IntentKind.PROTECT, symbol, ()))


def snap_at(t, equity, **kw):
    rows = {"AAPL": {"close": 100.0}, "MSFT": {"close": 100.0}}
    return snapshot(cash=equity, prices=rows, now=t, **kw)


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


def test_streak_and_recovery_factors_multiply_and_never_grow_an_entry():
    rc = RiskController(s())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(T0 + timedelta(hours=1), 97_500), [-1.0, -2.0, -3.0])  # 2.5% drawdown and a streak
    (d,) = rc.review([entry_decision(budget=10_000)], snap_at(T0 + timedelta(hours=1), 97_500))
    assert d.intent.orders[0].qty == 25 and "losing_streak" in d.reason and "recovery" in d.reason


def test_halted_state_survives_a_restart_and_only_the_resume_command_lifts_it(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    journal.set_state(COMMAND_KEY, {"command": "halt", "id": "1"})
    rc = RiskController(s(), journal)
    rc.observe(snap_at(T0, 100_000), [])
    assert rc.mode == Mode.HALTED
    journal.close()
    restarted = RiskController(s(), Journal(tmp_path / "j.sqlite"))  # a new process, same journal
    assert restarted.mode == Mode.HALTED
    restarted.observe(snap_at(T0 + timedelta(days=30), 100_000), [])
    assert restarted.mode == Mode.HALTED, "time never resumes a human halt"
    out = restarted.review([entry_decision(), protect_decision()], snap_at(T0, 100_000))
    assert [d.intent is None for d in out] == [True, False]
    restarted.journal.set_state(COMMAND_KEY, {"command": "resume", "id": "2"})
    restarted.observe(snap_at(T0 + timedelta(days=30, hours=1), 100_000), [])
    assert restarted.mode == Mode.ACTIVE


def test_kill_switch_file_halts_and_flatten_command_flags_a_flatten(tmp_path):
    halt_file = tmp_path / "HALT"
    rc = RiskController(s(kill_switch_file=str(halt_file)), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    assert rc.mode == Mode.ACTIVE and kill_switch_file(str(halt_file)) is None
    halt_file.write_text("stop")
    rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), [])
    assert rc.mode == Mode.HALTED
    rc.journal.set_state(COMMAND_KEY, {"command": "flatten", "id": "f1"})
    rc.observe(snap_at(T0 + timedelta(hours=2), 100_000), [])
    assert rc.flatten_pending
    rc.flatten_done(datetime(2024, 1, 2, 10, 30))
    assert not rc.flatten_pending and rc.mode == Mode.HALTED


def test_a_single_bad_tick_does_not_trip_a_halt():
    rc = RiskController(s())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(T0 + timedelta(hours=1), 50_000), [])  # bad tick: -50%
    assert rc.mode == Mode.ACTIVE
    rc.observe(snap_at(T0 + timedelta(hours=2), 100_100), [])
    assert rc.mode == Mode.ACTIVE


def test_null_controller_lets_everything_through():
    decisions = [entry_decision(), protect_decision()]
    assert NullRiskController().review(decisions, snap_at(T0, 1)) == decisions


@pytest.mark.parametrize(("lag_hours", "allowed"), [(1, True), (2, False), (3, False)])
def test_review_denies_new_orders_in_a_symbol_whose_feed_lags_the_market(lag_hours, allowed):
    fresh = pd.Timestamp(T0) - pd.Timedelta(hours=1)
    rows = {"AAPL": {"close": 100.0, "bar_time": fresh - pd.Timedelta(hours=lag_hours)},
            "MSFT": {"close": 100.0, "bar_time": fresh}}
    snap = snapshot(cash=100_000, prices=rows, now=T0)
    assert snap.freshest_bar == fresh
    rc = RiskController(s())
    rc.observe(snap, [])
    entry, protect = rc.review([entry_decision("AAPL"), protect_decision("AAPL")], snap)
    assert (entry.intent is not None) == allowed and protect.intent is not None  # protection always goes
    if not allowed:
        assert entry.data["gate"] == "stale_data" and f"{lag_hours} bars behind" in entry.reason
