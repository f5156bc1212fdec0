"""The realised-R label (models/exit_sim.py) on hand-made price paths: each rule of the exit policy, in the
order the exit step applies them, and the training set's promise not to read past its window."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from marketdata.builtin import generate, inverse_map
from models.dataset import build_dataset
from models.exit_sim import EXIT_REASONS, ExitPolicy, realised_r
from models.features import FeatureParams
from trading.settings import Settings

# entry 100 at the second bar's open (levels from the first bar's close, also 100): stop 95, target 115, 1R = $5
BASE = ExitPolicy(horizon_bars=6, stop_pct=0.05, target_pct=0.15, breakeven_at_r=0, partial_at_r=0,
                  trail_after_r=0, time_exit_hours=0, hours_per_bar=1.0, cost_bps=0)
FLAT = (100, 100, 100, 100)


def run(path, policy=BASE, atr=1.0):
    idx = pd.date_range("2024-03-04 09:30", periods=len(path), freq="h", tz="America/New_York")
    df = pd.DataFrame(path, columns=["open", "high", "low", "close"], index=idx)
    r, held, why = realised_r(df, np.full(len(df), atr), np.array([0]), policy)
    return r[0], held[0], EXIT_REASONS[why[0]] if why[0] >= 0 else None


def policy(**kw) -> ExitPolicy:
    return ExitPolicy(**{**vars(BASE), **kw})


@pytest.mark.parametrize("path, r, held, reason", [
    ([FLAT, (100, 101, 99, 100), (100, 116, 99, 115), FLAT, FLAT, FLAT, FLAT], 3.0, 2, "target"),
    ([FLAT, (100, 101, 94, 95), (95, 120, 95, 118), FLAT, FLAT, FLAT, FLAT], -1.0, 1, "stop"),
    ([FLAT, (100, 116, 94, 100), FLAT, FLAT, FLAT, FLAT, FLAT], -1.0, 1, "stop"),  # a bar reaching both: the stop
    ([FLAT, (100, 101, 99, 100), (90, 91, 89, 90), FLAT, FLAT, FLAT, FLAT], -2.0, 2, "stop"),  # gap through it
    ([FLAT, (100, 101, 99, 100), (120, 121, 119, 120), FLAT, FLAT, FLAT, FLAT], 4.0, 2, "target"),  # gap over it
    ([FLAT, (100, 102, 99, 101), FLAT, FLAT, FLAT, FLAT, (102, 104, 101, 103)], 0.6, 6, "horizon"),
])
def test_the_legs_fill_as_alpaca_would(path, r, held, reason):
    assert run(path) == (pytest.approx(r), held, reason)


def test_a_gap_below_the_stop_at_entry_sells_at_once_for_about_nothing():
    assert run([FLAT, (94, 95, 93, 94), FLAT, FLAT, FLAT, FLAT, FLAT]) == (0.0, 1, "stop")


def test_the_time_exit_sells_at_the_close_after_the_hours_without_reaching_one_r():
    path = [FLAT, (100, 102, 99, 101), (101, 103, 100, 102), (102, 103, 101, 102), FLAT, FLAT, FLAT]
    assert run(path, policy(time_exit_hours=3)) == (pytest.approx(0.4), 3, "time")
    reached = [FLAT, (100, 106, 99, 101), (101, 103, 100, 102), (102, 103, 101, 102), FLAT, FLAT, FLAT]
    assert run(reached, policy(time_exit_hours=3))[2] == "horizon", "once +1R was seen the time exit is off"


def test_breakeven_moves_the_stop_to_entry_and_a_later_dip_ends_the_trade_there():
    path = [FLAT, (100, 106, 100, 105.5), (105, 105, 99, 100), FLAT, FLAT, FLAT, FLAT]
    r, held, reason = run(path, policy(breakeven_at_r=1.0))
    assert (held, reason) == (2, "stop") and r == pytest.approx(0.1 / 5)  # stopped at entry + 0.1%
    assert run(path)[2] == "horizon", "without breakeven the same path is held to the horizon"


def test_the_partial_banks_half_at_the_close_and_the_rest_rides_with_a_breakeven_stop():
    path = [FLAT, (100, 111, 100, 110), (110, 114, 109, 113), (113, 116, 112, 115), FLAT, FLAT, FLAT]
    r, held, reason = run(path, policy(partial_at_r=2.0))
    assert (held, reason) == (3, "target")
    assert r == pytest.approx(0.5 * 10 / 5 + 0.5 * 15 / 5)


def test_the_trailing_stop_follows_the_high_by_atr_multiples_and_never_loosens():
    path = [FLAT, (100, 111, 100, 110), (110, 112, 108, 111), (111, 111, 106, 107), FLAT, FLAT, FLAT]
    r, held, reason = run(path, policy(trail_after_r=2.0, trail_atr_mult=2.0), atr=2.0)
    # after bar 1 the stop trails 4 below the high of 111 (107); after bar 2 below 112 (108): bar 3 hits 108
    assert (held, reason) == (3, "stop") and r == pytest.approx(8 / 5)


def test_costs_come_off_in_r_and_atr_mode_sets_levels_from_atr():
    path = [FLAT, (100, 101, 99, 100), (100, 116, 99, 115), FLAT, FLAT, FLAT, FLAT]
    assert run(path, policy(cost_bps=10))[0] == pytest.approx(3.0 - 2 * 0.001 * 100 / 5)
    atr_mode = policy(stop_mode="atr", atr_stop_mult=2.0, atr_target_mult=4.0)
    assert run(path, atr_mode, atr=2.5) == (pytest.approx(2.0), 2, "target"), "stop 95 (2 ATR), target 110 (4 ATR)"
    assert run(path, atr_mode, atr=np.nan)[0] != run(path, atr_mode, atr=np.nan)[0], "no ATR: no label (NaN)"


def test_a_candidate_without_the_full_horizon_after_it_gets_no_label():
    assert np.isnan(run([FLAT] * 6)[0])


def test_the_training_set_never_reads_a_bar_after_its_window():
    s = Settings.defaults()
    m = generate(s.all_symbols(), inverse_map(s.inverse_etfs), "2022-01-03", "2023-06-30", seed=9)
    params, pol = FeatureParams.from_settings(s), ExitPolicy.from_settings(s, pd.Timedelta(hours=1))
    end = date(2023, 3, 31)
    universe = tuple(s.universe)
    ds = build_dataset(m.bars, universe, params, s.rsi_oversold, pol, date(2022, 6, 1), end)
    later = pd.Timestamp("2023-04-01", tz="America/New_York")
    changed = {k: df.copy() for k, df in m.bars.items()}
    for df in changed.values():
        df.loc[df.index >= later, ["open", "high", "low", "close"]] *= 3.0
    again = build_dataset(changed, universe, params, s.rsi_oversold, pol, date(2022, 6, 1), end)
    assert len(ds.r) > 100 and ds.times.max() < later
    np.testing.assert_array_equal(ds.r, again.r)
    pd.testing.assert_frame_equal(ds.X, again.X)


def test_adverse_excursion_is_the_deepest_dip_below_the_entry_and_winner_the_close_above_it():
    from models.exit_sim import adverse_excursion

    idx = pd.date_range("2024-03-04 09:30", periods=5, freq="h", tz="America/New_York")
    df = pd.DataFrame([FLAT, (100, 101, 96, 99), (99, 100, 93, 97), (97, 104, 97, 103), FLAT],
                      columns=["open", "high", "low", "close"], index=idx)
    mae, win = adverse_excursion(df, np.array([0, 1, 3]), horizon=3)
    assert mae[0] == pytest.approx(0.07) and win[0], "dipped 7% below 100, closed bar 3 at 103"
    assert mae[1] == pytest.approx(1 - 93 / 99) and win[1], "entry 99 at bar 2's open; bar 4 closes at 100"
    assert np.isnan(mae[2]) and not win[2], "no horizon left"


def test_model_stops_set_the_levels_within_their_bounds_with_the_fixed_reward_multiple():
    path = [FLAT, (100, 101, 97.5, 100), (100, 110, 99, 109), FLAT, FLAT, FLAT, FLAT]
    model = policy(stop_mode="model")
    idx = pd.date_range("2024-03-04 09:30", periods=len(path), freq="h", tz="America/New_York")
    df = pd.DataFrame(path, columns=["open", "high", "low", "close"], index=idx)
    r, _, why = realised_r(df, np.full(len(df), 1.0), np.array([0, 0]), model, np.array([0.03, 0.02]))
    assert EXIT_REASONS[why[0]] == "target" and r[0] == pytest.approx(3.0), "a 3% stop (97) holds; target 109"
    assert EXIT_REASONS[why[1]] == "stop" and r[1] == pytest.approx(-1.0), "a 2% stop (98) is hit at 97.5"
    assert np.isnan(realised_r(df, np.full(len(df), 1.0), np.array([0]), model)[0][0]), "no stops, no label"


def test_a_stop_never_moves_down_when_the_trail_is_below_the_breakeven_stop():
    path = [FLAT, (100, 111, 100, 111), (111, 111, 104, 105), (105, 106, 99, 100), FLAT, FLAT, FLAT]
    r, held, reason = run(path, policy(breakeven_at_r=1.0, trail_after_r=2.0, trail_atr_mult=2.0), atr=10.0)
    # bar 1 moves the stop to breakeven (100.10); the trail (111 - 20 = 91) is lower and must not replace it
    assert (held, reason) == (3, "stop") and r == pytest.approx(0.1 / 5)


def test_a_trail_above_the_close_waits_and_does_not_hold_back_the_breakeven():
    path = [FLAT, (100, 111, 100, 101.5), (101.5, 106, 101, 106), (106, 106, 99, 100), FLAT, FLAT, FLAT]
    r, held, reason = run(path, policy(breakeven_at_r=1.0, trail_after_r=2.0, trail_atr_mult=1.0), atr=2.0)
    # bar 1 spiked to 111 (+2.2R): its trail (109) is above every later close; bar 2 (+1.2R) still moves the stop
    # to breakeven (100.10), as the live exit step does (tests/test_sizing_and_exits.py), and bar 3 hits it
    assert (held, reason) == (3, "stop") and r == pytest.approx(0.1 / 5)

