"""The single risk rules at their exact thresholds (both sides), with the gate and reason text a trader reads in
the decision log, and the value objects as the journal stores them."""

from datetime import datetime, timedelta

import pandas as pd
import pytest

from tests.risk.helpers import NY, T0, tracker
from trading.risk.circuit_breaker import circuit_breaker
from trading.risk.equity import EquityTracker
from trading.risk.exposure import gross_exposure, max_positions, orders_per_iteration
from trading.risk.kill_switch import command_hold, kill_switch_file
from trading.risk.loss_limits import daily_loss, weekly_loss
from trading.risk.sizing_factors import losing_streak, recovery
from trading.risk.stale_data import stale_data
from trading.risk.verdict import Action, Hold, Mode, Verdict

HOUR = pd.Timedelta(hours=1)


def eq_at(confirmed: float | None, **kw) -> EquityTracker:
    return EquityTracker(confirmed=confirmed, **kw)


# ---------------------------------------------------------------- exposure: concurrency
@pytest.mark.parametrize("held, approved, limit, allowed", [
    (0, 0, 1, True), (0, 1, 1, False), (1, 0, 1, False), (2, 2, 5, True), (2, 3, 5, False), (3, 2, 5, False),
    (4, 0, 5, True), (0, 0, 0, True), (99, 0, 0, True), (6, 0, 5, False)])
def test_max_positions_counts_held_plus_approved_against_the_limit(held, approved, limit, allowed):
    v = max_positions(held, approved, limit)
    if allowed:
        assert v == Verdict.allow()
    else:
        assert v.action == Action.DENY and v.gate == "concurrency" and v.factor == 0.0
        assert v.reason == f"{held + approved} positions already (MAX_POSITIONS={limit})"


# ---------------------------------------------------------------- exposure: gross long exposure
@pytest.mark.parametrize("long_value, notional, equity, limit, action, factor, reason", [
    (0, 80_000, 100_000, 0.80, Action.ALLOW, 1.0, ""),  # exactly the room left: fits whole
    (0, 80_001, 100_000, 0.80, Action.RESIZE, 80_000 / 80_001, "only $80,000 left under the 80% exposure cap"),
    (70_000, 10_000, 100_000, 0.80, Action.ALLOW, 1.0, ""),
    (70_000, 12_500, 100_000, 0.80, Action.RESIZE, 0.8, "only $10,000 left under the 80% exposure cap"),
    (79_999, 10_000, 100_000, 0.80, Action.RESIZE, 0.0001, "only $1 left under the 80% exposure cap"),
    (80_000, 1, 100_000, 0.80, Action.DENY, 0.0, "long exposure 80% is at the 80% cap"),  # no room at all
    (90_000, 5_000, 100_000, 0.80, Action.DENY, 0.0, "long exposure 90% is at the 80% cap"),
    (150_000, 10_000, 100_000, 1.50, Action.DENY, 0.0, "long exposure 150% is at the 150% cap"),
    (100_000, 40_000, 100_000, 1.50, Action.ALLOW, 1.0, ""),  # a 150% cap leaves 50k
    (0, 10_000, 100_000, 0.0, Action.ALLOW, 1.0, ""),  # cap switched off
    (90_000, 0, 100_000, 0.80, Action.ALLOW, 1.0, ""),  # nothing to buy
    (90_000, -5, 100_000, 0.80, Action.ALLOW, 1.0, ""),
])
def test_gross_exposure_allows_resizes_to_the_room_left_or_denies(long_value, notional, equity, limit, action,
                                                                  factor, reason):
    v = gross_exposure(long_value, notional, equity, limit)
    assert v.action == action and v.factor == pytest.approx(factor)
    if action == Action.ALLOW:
        assert v == Verdict.allow()
    else:
        assert v.gate == "exposure" and v.reason == reason


def test_gross_exposure_room_is_a_share_of_equity_not_of_the_cap():
    # 60% cap of 50k equity: 30k room minus 10k held = 20k; a 25k entry shrinks to 80%
    v = gross_exposure(10_000, 25_000, 50_000, 0.60)
    assert v.action == Action.RESIZE and v.factor == pytest.approx(0.8) and "only $20,000 left" in v.reason


# ---------------------------------------------------------------- exposure: orders per iteration
@pytest.mark.parametrize("approved, limit, allowed", [(0, 1, True), (1, 1, False), (2, 3, True), (3, 3, False),
                                                      (4, 3, False), (50, 0, True)])
def test_orders_per_iteration(approved, limit, allowed):
    v = orders_per_iteration(approved, limit)
    if allowed:
        assert v == Verdict.allow()
    else:
        assert v.action == Action.DENY and v.gate == "orders_per_iteration"
        assert v.reason == f"{approved} new orders already this iteration (MAX_ORDERS_PER_ITERATION={limit})"


# ---------------------------------------------------------------- loss limits
@pytest.mark.parametrize("day_start, now_eq, limit, tripped, text", [
    (100_000, 97_000, 0.03, True, "down 3.0% today (limit 3%)"),
    (100_000, 97_001, 0.03, False, None),
    (100_000, 96_000, 0.03, True, "down 4.0% today (limit 3%)"),
    (100_000, 99_000, 0.01, True, "down 1.0% today (limit 1%)"),
    (100_000, 99_001, 0.01, False, None),
    (100_000, 103_000, 0.03, False, None),  # a gain never trips
    (100_000, 50_000, 0.0, False, None),  # switched off
])
def test_daily_loss_limit_reason_and_until_tomorrow_midnight(day_start, now_eq, limit, tripped, text):
    hold = daily_loss(T0, eq_at(now_eq, day_start=day_start), limit)
    if not tripped:
        assert hold is None
        return
    assert hold == Hold(Mode.REDUCING, "daily_loss", text, datetime(2024, 3, 6, tzinfo=NY))


def test_daily_loss_needs_a_start_of_day_and_a_confirmed_reading():
    assert daily_loss(T0, eq_at(None, day_start=100_000), 0.03) is None
    assert daily_loss(T0, eq_at(50_000, day_start=None), 0.03) is None
    assert daily_loss(T0, eq_at(50_000, day_start=0.0), 0.03) is None


@pytest.mark.parametrize("now, monday", [
    (datetime(2024, 3, 4, 9, 30, tzinfo=NY), datetime(2024, 3, 11, tzinfo=NY)),  # on a Monday: the next one
    (T0, datetime(2024, 3, 11, tzinfo=NY)),
    (datetime(2024, 3, 8, 15, 59, tzinfo=NY), datetime(2024, 3, 11, tzinfo=NY)),  # Friday
    (datetime(2024, 3, 10, 12, 0, tzinfo=NY), datetime(2024, 3, 11, tzinfo=NY)),  # Sunday: tomorrow
])
def test_weekly_loss_halts_until_next_monday_midnight(now, monday):
    hold = weekly_loss(now, eq_at(89_000, week_start=100_000), 0.10)
    assert hold == Hold(Mode.HALTED, "weekly_loss", "down 11.0% this week (limit 10%)", monday)


@pytest.mark.parametrize("now_eq, tripped", [(90_000, True), (90_001, False), (110_000, False)])
def test_weekly_loss_threshold_both_sides(now_eq, tripped):
    assert (weekly_loss(T0, eq_at(now_eq, week_start=100_000), 0.10) is not None) is tripped


def test_weekly_loss_needs_a_start_of_week_and_a_confirmed_reading():
    assert weekly_loss(T0, eq_at(None, week_start=100_000), 0.10) is None
    assert weekly_loss(T0, eq_at(50_000, week_start=None), 0.10) is None
    assert weekly_loss(T0, eq_at(50_000, week_start=0.0), 0.10) is None
    assert weekly_loss(T0, eq_at(50_000, week_start=100_000), 0.0) is None


def test_daily_loss_in_a_naive_clock_stays_naive():
    naive = datetime(2024, 3, 5, 10, 30)
    assert daily_loss(naive, eq_at(90_000, day_start=100_000), 0.03).until == datetime(2024, 3, 6)
    assert weekly_loss(naive, eq_at(80_000, week_start=100_000), 0.10).until == datetime(2024, 3, 11)


# ---------------------------------------------------------------- circuit breaker
@pytest.mark.parametrize("peak, now_eq, pct, hours, text", [
    (100_000, 95_000, 0.05, 4, "down 5.0% from the recent peak 100,000 (limit 5%): entries paused 4 h"),
    (110_000, 99_000, 0.05, 1.5, "down 10.0% from the recent peak 110,000 (limit 5%): entries paused 1.5 h"),
    (100_000, 98_000, 0.02, 4, "down 2.0% from the recent peak 100,000 (limit 2%): entries paused 4 h"),
])
def test_circuit_breaker_reason_and_pause(peak, now_eq, pct, hours, text):
    eq = eq_at(now_eq, daily_highs=[["2024-03-04", peak], ["2024-03-05", now_eq]])
    hold = circuit_breaker(T0, eq, pct, hours)
    assert hold == Hold(Mode.REDUCING, "circuit_breaker", text, T0 + timedelta(hours=hours))


@pytest.mark.parametrize("now_eq, pct, tripped", [(95_001, 0.05, False), (95_000, 0.05, True),
                                                  (98_001, 0.02, False), (98_000, 0.02, True),
                                                  (100_000, 0.05, False), (120_000, 0.05, False)])
def test_circuit_breaker_threshold_both_sides(now_eq, pct, tripped):
    eq = eq_at(now_eq, daily_highs=[["2024-03-04", 100_000], ["2024-03-05", now_eq]])
    assert (circuit_breaker(T0, eq, pct, 4) is not None) is tripped


def test_circuit_breaker_needs_a_peak_and_a_confirmed_reading():
    assert circuit_breaker(T0, eq_at(None, daily_highs=[["2024-03-04", 100_000]]), 0.05, 4) is None
    assert circuit_breaker(T0, eq_at(50_000), 0.05, 4) is None  # no daily highs yet
    assert circuit_breaker(T0, eq_at(50_000, daily_highs=[["2024-03-04", 0.0]]), 0.05, 4) is None
    assert circuit_breaker(T0, eq_at(50_000, daily_highs=[["2024-03-04", 100_000]]), 0.0, 4) is None


def test_circuit_breaker_measures_from_the_recent_peak_not_the_all_time_peak():
    # all-time peak 200k long ago; the recent days' highest was 100k: 96k is only 4% down
    eq = eq_at(96_000, peak=200_000, daily_highs=[["2024-03-04", 100_000], ["2024-03-05", 96_000]])
    assert circuit_breaker(T0, eq, 0.05, 4) is None


# ---------------------------------------------------------------- sizing factors
@pytest.mark.parametrize("results, streak, resized", [
    ([-1, 0, -1], 3, True),  # a breakeven trade is not a win
    ([0, 0, 0], 3, True),
    ([-1, -1, 0.01], 3, False),
    ([-1], 1, True), ([], 1, False), ([2], 1, False),
    ([-1, -1], 3, False), ([-1, -1, -1, -1], 3, True),
    ([-1, -1, -1], 0, False),
    ([3, -1, -1], 2, True), ([-1, 3, -1], 2, False),
])
def test_losing_streak_counts_only_the_last_trades(results, streak, resized):
    v = losing_streak(results, streak)
    if resized:
        assert v == Verdict.resize("losing_streak", f"{streak} losing trades in a row", 0.5)
    else:
        assert v == Verdict.allow()


@pytest.mark.parametrize("peak, now_eq, pct, text", [
    (100_000, 98_000, 0.02, None),  # exactly at the threshold: not yet
    (100_000, 97_999, 0.02, "2.0% below the peak (recovery mode above 2%)"),
    (100_000, 90_000, 0.02, "10.0% below the peak (recovery mode above 2%)"),
    (100_000, 95_000, 0.05, None),
    (100_000, 94_000, 0.05, "6.0% below the peak (recovery mode above 5%)"),
    (100_000, 105_000, 0.02, None),
    (100_000, 50_000, 0.0, None),
])
def test_recovery_halves_entries_past_the_drawdown_threshold(peak, now_eq, pct, text):
    v = recovery(eq_at(now_eq, peak=peak), pct)
    assert v == (Verdict.allow() if text is None else Verdict.resize("recovery", text, 0.5))


def test_recovery_needs_a_peak_and_a_confirmed_reading():
    assert recovery(eq_at(None, peak=100_000), 0.02) == Verdict.allow()
    assert recovery(eq_at(50_000, peak=None), 0.02) == Verdict.allow()
    assert recovery(eq_at(50_000, peak=0.0), 0.02) == Verdict.allow()


# ---------------------------------------------------------------- stale data
FRESH = pd.Timestamp("2024-03-05 14:30", tz=NY)


@pytest.mark.parametrize("lag, period, stale_bars, allowed", [
    (pd.Timedelta(0), HOUR, 2, True),
    (pd.Timedelta(minutes=119), HOUR, 2, True),
    (pd.Timedelta(hours=2), HOUR, 2, False),
    (pd.Timedelta(hours=2), pd.Timedelta(hours=2), 2, True),  # one 2-hour bar behind
    (pd.Timedelta(hours=4), pd.Timedelta(hours=2), 2, False),
    (pd.Timedelta(minutes=15), pd.Timedelta(minutes=15), 1, False),
    (pd.Timedelta(minutes=14), pd.Timedelta(minutes=15), 1, True),
    (pd.Timedelta(days=30), HOUR, 0, True),  # switched off
])
def test_stale_data_threshold_in_bars(lag, period, stale_bars, allowed):
    v = stale_data(FRESH - lag, FRESH, period, stale_bars)
    assert (v == Verdict.allow()) is allowed
    if not allowed:
        assert v.action == Action.DENY and v.gate == "stale_data"


def test_stale_data_reason_names_the_last_bar_and_the_lag():
    v = stale_data(FRESH - pd.Timedelta(hours=3), FRESH, HOUR, 2)
    assert v == Verdict.deny("stale_data", "last bar 2024-03-05 11:30 is 3 bars behind the market (STALE_BARS=2)")


@pytest.mark.parametrize("bar_time", [None, pd.NaT])
def test_a_symbol_without_bars_is_denied(bar_time):
    assert stale_data(bar_time, FRESH, HOUR, 2) == Verdict.deny("stale_data", "no bars for this symbol")


@pytest.mark.parametrize("freshest", [None, pd.NaT])
def test_a_market_without_any_bar_time_checks_nothing(freshest):
    assert stale_data(None, freshest, HOUR, 2) == Verdict.allow()
    assert stale_data(FRESH - pd.Timedelta(days=3), freshest, HOUR, 2) == Verdict.allow()


# ---------------------------------------------------------------- kill switch and commands
def test_kill_switch_file_halts_while_it_exists(tmp_path):
    path = tmp_path / "HALT"
    assert kill_switch_file(str(path)) is None
    path.write_text("")
    assert kill_switch_file(str(path)) == Hold(Mode.HALTED, "kill_switch", f"kill-switch file {path} exists", None)
    assert kill_switch_file("") is None


@pytest.mark.parametrize("command, hold", [
    ("halt", Hold(Mode.HALTED, "manual", "halted by the halt command", None)),
    ("flatten", Hold(Mode.HALTED, "manual", "flattened and halted by the flatten command", None)),
    ("resume", None), ("HALT", None), ("", None), (None, None)])
def test_command_holds(command, hold):
    assert command_hold(command) == hold


# ---------------------------------------------------------------- value objects as the journal stores them
@pytest.mark.parametrize("hold, stored", [
    (Hold(Mode.REDUCING, "daily_loss", "down 3.0% today", datetime(2024, 3, 6, tzinfo=NY)),
     {"mode": 1, "gate": "daily_loss", "reason": "down 3.0% today", "until": "2024-03-06T00:00:00-05:00"}),
    (Hold(Mode.HALTED, "manual", "halted", None), {"mode": 2, "gate": "manual", "reason": "halted", "until": None}),
])
def test_hold_round_trips_through_its_stored_form(hold, stored):
    assert hold.as_dict() == stored
    assert Hold.from_dict(stored) == hold
    assert Hold.from_dict({k: v for k, v in stored.items() if k != "until" or v}) == hold


def test_modes_are_ordered_and_verdicts_carry_their_factor():
    assert [int(m) for m in (Mode.ACTIVE, Mode.REDUCING, Mode.HALTED)] == [0, 1, 2]
    assert Verdict.allow() == Verdict(Action.ALLOW, "", "", 1.0)
    assert Verdict.deny("g", "r") == Verdict(Action.DENY, "g", "r", 0.0)
    assert Verdict.resize("g", "r", 0.25) == Verdict(Action.RESIZE, "g", "r", 0.25)
    assert [a.value for a in Action] == ["allow", "resize", "deny"]


# ---------------------------------------------------------------- equity readings
@pytest.mark.parametrize("reading, used", [(109_999, True), (90_000, True), (110_001, False), (89_999, False)])
def test_a_move_up_to_equity_jump_pct_is_used_beyond_it_held_back(reading, used):
    eq = EquityTracker()
    assert eq.observe(T0, 100_000, 0.10, 5) is None
    note = eq.observe(T0 + timedelta(hours=1), reading, 0.10, 5)
    assert (note is None) is used
    assert eq.confirmed == (reading if used else 100_000)
    assert eq.pending == (None if used else reading)


def test_held_back_and_confirmed_readings_explain_themselves():
    eq = EquityTracker()
    eq.observe(T0, 100_000, 0.10, 5)
    note = eq.observe(T0 + timedelta(hours=1), 80_000, 0.10, 5)
    assert note == ("equity reading 80,000.00 is -20.0% from 100,000.00: not used until the next reading confirms it")
    note = eq.observe(T0 + timedelta(hours=2), 125_000.5, 0.10, 5)  # +56% from the pending 80k: a second bad tick
    assert note.startswith("equity reading 125,000.50 is +25.0% from 100,000.00") and eq.confirmed == 100_000
    assert eq.pending == 125_000.5
    note = eq.observe(T0 + timedelta(hours=3), 121_000, 0.10, 5)  # within 10% of the pending one: confirmed
    assert note == "equity 121,000.00 confirms the jump from 100,000.00"
    assert eq.confirmed == 121_000 and eq.pending is None and eq.peak == 121_000


@pytest.mark.parametrize("second, confirms", [(87_999, True), (72_000, True), (71_999, False), (88_001, False),
                                              (80_000, True)])
def test_a_jump_is_confirmed_only_by_a_reading_within_equity_jump_pct_of_it(second, confirms):
    eq = EquityTracker()
    eq.observe(T0, 100_000, 0.10, 5)
    eq.observe(T0 + timedelta(hours=1), 80_000, 0.10, 5)
    note = eq.observe(T0 + timedelta(hours=2), second, 0.10, 5)
    if second >= 90_000:  # back within 10% of the confirmed value: simply used
        assert note is None and eq.confirmed == second
    elif confirms:
        assert note.startswith(f"equity {second:,.2f} confirms") and eq.confirmed == second
    else:
        assert "not used" in note and eq.confirmed == 100_000 and eq.pending == second


def test_day_week_peak_and_daily_highs_follow_the_confirmed_readings():
    eq = EquityTracker()
    monday = datetime(2024, 3, 4, 10, tzinfo=NY)
    eq.observe(monday, 100_000, 0.10, 3)
    eq.observe(monday + timedelta(hours=2), 103_000, 0.10, 3)
    eq.observe(monday + timedelta(hours=3), 101_000, 0.10, 3)
    assert eq.as_dict() == {"confirmed": 101_000, "pending": None, "day": "2024-03-04", "day_start": 100_000,
                            "week": "2024-W10", "week_start": 100_000, "peak": 103_000,
                            "daily_highs": [["2024-03-04", 103_000]]}
    for day, value in ((5, 99_000), (6, 98_000), (7, 102_000)):
        eq.observe(datetime(2024, 3, day, 10, tzinfo=NY), value, 0.10, 3)
    assert eq.daily_highs == [["2024-03-05", 99_000], ["2024-03-06", 98_000], ["2024-03-07", 102_000]]
    assert eq.recent_peak == 102_000 and eq.peak == 103_000, "only the last 3 days count for the recent peak"
    assert (eq.day, eq.day_start, eq.week, eq.week_start) == ("2024-03-07", 102_000, "2024-W10", 100_000)
    eq.observe(datetime(2024, 3, 11, 10, tzinfo=NY), 97_000, 0.10, 3)  # next Monday: a new week
    assert (eq.day, eq.day_start, eq.week, eq.week_start) == ("2024-03-11", 97_000, "2024-W11", 97_000)
    eq.observe(datetime(2024, 3, 11, 11, tzinfo=NY), 96_000, 0.10, 3)
    assert eq.daily_highs[-1] == ["2024-03-11", 97_000] and eq.day_start == 97_000


def test_week_numbers_are_zero_padded_iso_weeks():
    eq = EquityTracker()
    eq.observe(datetime(2024, 1, 3, 10, tzinfo=NY), 100_000, 0.10, 5)
    assert eq.week == "2024-W01"
    eq.observe(datetime(2024, 12, 30, 10, tzinfo=NY), 100_000, 0.10, 5)  # ISO week 1 of 2025
    assert eq.week == "2025-W01"


def test_a_held_back_reading_changes_no_reference():
    eq = EquityTracker()
    eq.observe(T0, 100_000, 0.10, 5)
    before = eq.as_dict()
    eq.observe(T0 + timedelta(days=1), 50_000, 0.10, 5)
    assert eq.as_dict() == {**before, "pending": 50_000}


def test_reset_recent_peak_measures_from_now():
    eq = tracker(100_000, 94_000, peak=110_000)
    eq.daily_highs = [["2024-03-04", 120_000], *eq.daily_highs]
    eq.reset_recent_peak()
    assert eq.daily_highs == [["2024-03-04", 94_000], ["2024-03-05", 94_000]] and eq.recent_peak == 94_000
    assert eq.peak == 110_000, "the all-time peak (recovery mode) is not reset"


def test_as_dict_copies_the_daily_highs():
    eq = tracker(100_000, 100_000)
    d = eq.as_dict()
    d["daily_highs"][0][1] = 1
    assert eq.daily_highs == [["2024-03-05", 100_000]]
    assert EquityTracker(**eq.as_dict()) == eq
