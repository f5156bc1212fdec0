"""The live bar window (broker/live_bars.py), unit by unit: what is fetched when, what is kept, what the
indicators see. The gateway at the edge is a stand-in that serves bars from a frame and records each request."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from broker.live_bars import OVERLAP, PRICES, LiveBars, window_days
from marketdata.sessions import hourly_bars, sessions_before

NY = "America/New_York"
HOUR = pd.Timedelta(hours=1)


def bars_for(symbols, sessions=30, extra_hours=()):
    grid = hourly_bars(sessions_before(pd.Timestamp("2024-03-06"), sessions)).index
    grid = grid.append(pd.DatetimeIndex([pd.Timestamp(h, tz=NY) for h in extra_hours])) if extra_hours else grid
    out = {}
    for k, sym in enumerate(symbols):
        close = 100.0 + k + np.arange(len(grid)) * 0.01
        out[sym] = pd.DataFrame({"open": close, "high": close + 0.5, "low": close - 0.5, "close": close,
                                 "volume": 1000.0}, index=grid)
    return out


class Gateway:
    def __init__(self, frames):
        self.frames, self.requests = frames, []

    def bars(self, symbols, bar_period, start, end):
        self.requests.append((tuple(symbols), start, end))
        return {s: f[(f.index >= start) & (f.index <= end)] for s, f in self.frames.items()
                if s in symbols and len(f[(f.index >= start) & (f.index <= end)])}


def test_window_days_hold_the_history_with_room_for_weekends_and_holidays():
    assert window_days(400, HOUR) == int(400 / 6.5 * 1.5) + 10 == 102
    assert window_days(1500, HOUR) == int(1500 / 6.5 * 1.5) + 10
    assert window_days(400, pd.Timedelta(days=1)) == 610
    assert window_days(100, pd.Timedelta(minutes=30)) == int(100 / 13 * 1.5) + 10


def test_the_first_update_of_a_day_fetches_the_window_then_only_from_the_last_bar():
    gw = Gateway(bars_for(["AAPL", "MSFT"]))
    lb = LiveBars(gw, HOUR, history_bars=50)
    now = pd.Timestamp("2024-03-05 12:31", tz=NY)
    first = lb.update(["AAPL", "MSFT"], now)
    (symbols, start, end), = gw.requests
    assert symbols == ("AAPL", "MSFT") and end == now and start == now - timedelta(days=window_days(50, HOUR))
    assert set(first) == {"AAPL", "MSFT"} and len(first["AAPL"]) == 50
    assert first["AAPL"].index[-1] == pd.Timestamp("2024-03-05 11:30", tz=NY), "only bars that ended by now"
    later = now + HOUR
    second = lb.update(["AAPL", "MSFT"], later)
    (symbols, start, end) = gw.requests[1]
    assert start == pd.Timestamp("2024-03-05 12:30", tz=NY), "from the last bar held (it may have been forming)"
    assert second["AAPL"].index[-1] == pd.Timestamp("2024-03-05 12:30", tz=NY) and len(second["AAPL"]) == 50
    pd.testing.assert_frame_equal(second["AAPL"], gw.frames["AAPL"].loc[:"2024-03-05 12:30"].iloc[-50:],
                                  check_freq=False)


def test_a_new_day_rereads_a_few_bars_held_and_a_new_symbol_gets_its_own_full_fetch():
    gw = Gateway(bars_for(["AAPL", "MSFT", "SH"]))
    lb = LiveBars(gw, HOUR, history_bars=20)
    day1 = pd.Timestamp("2024-03-04 15:31", tz=NY)
    lb.update(["AAPL"], day1)
    lb.update(["AAPL", "SH"], day1 + HOUR / 2)
    assert [r[0] for r in gw.requests] == [("AAPL",), ("AAPL",), ("SH",)]
    assert gw.requests[2][1] == day1 + HOUR / 2 - lb.window, "the newcomer: the whole window"
    held = lb.frames["AAPL"].index
    day2 = pd.Timestamp("2024-03-05 09:45", tz=NY)
    out = lb.update(["AAPL", "SH"], day2)
    assert gw.requests[-1][0] == ("AAPL", "SH") and len(gw.requests) == 4, "nothing changed: no full fetch"
    assert gw.requests[-1][1] == held[-OVERLAP], "a new day re-reads the last bars held, not the window"
    fresh = LiveBars(Gateway(gw.frames), HOUR, history_bars=20).update(["AAPL", "SH"], day2)
    for sym in fresh:
        pd.testing.assert_frame_equal(out[sym], fresh[sym], check_freq=False)


@pytest.mark.parametrize("factor", [0.5, 0.9985])  # a 2-for-1 split; a 0.15% dividend
def test_a_symbol_readjusted_overnight_is_fetched_whole_again_alone(factor):
    gw = Gateway(bars_for(["AAPL", "MSFT"], sessions=40))
    lb = LiveBars(gw, HOUR, history_bars=60)
    lb.update(["AAPL", "MSFT"], pd.Timestamp("2024-03-04 15:31", tz=NY))
    adjusted = gw.frames["AAPL"].copy()  # the action is effective on the 5th: Alpaca rewrites every bar before it
    before = adjusted.index < pd.Timestamp("2024-03-05", tz=NY)
    adjusted.loc[before, PRICES] *= factor
    gw.frames["AAPL"] = adjusted
    day2 = pd.Timestamp("2024-03-05 11:31", tz=NY)
    out = lb.update(["AAPL", "MSFT"], day2)
    assert [r[0] for r in gw.requests[1:]] == [("AAPL", "MSFT"), ("AAPL",)]
    assert gw.requests[-1][1] == day2 - lb.window
    fresh = LiveBars(Gateway(gw.frames), HOUR, history_bars=60).update(["AAPL", "MSFT"], day2)
    for sym in ("AAPL", "MSFT"):  # no unadjusted bar left spliced in front of the adjusted ones
        pd.testing.assert_frame_equal(out[sym], fresh[sym], check_freq=False)
        kept = lb.frames[sym]
        pd.testing.assert_frame_equal(kept, gw.frames[sym].loc[kept.index], check_freq=False)
    lb.update(["AAPL", "MSFT"], day2 + HOUR)
    assert gw.requests[-1][0] == ("AAPL", "MSFT") and len(gw.requests) == 4, "later that day: the last bar only"


def test_a_failed_fetch_on_a_new_day_leaves_the_check_for_readjustments_to_the_next_try():
    gw = Gateway(bars_for(["AAPL", "MSFT"], sessions=40))
    lb = LiveBars(gw, HOUR, history_bars=60)
    lb.update(["AAPL", "MSFT"], pd.Timestamp("2024-03-04 15:31", tz=NY))
    held = lb.frames["AAPL"].index
    real = gw.bars

    def down(*args):
        raise ConnectionError("data API down")

    gw.bars = down
    with pytest.raises(ConnectionError):
        lb.update(["AAPL", "MSFT"], pd.Timestamp("2024-03-05 09:45", tz=NY))
    gw.bars = real
    gw.frames["AAPL"] = gw.frames["AAPL"].assign(close=gw.frames["AAPL"]["close"] * 0.5)  # re-adjusted meanwhile
    out = lb.update(["AAPL", "MSFT"], pd.Timestamp("2024-03-05 10:45", tz=NY))
    assert gw.requests[-2][1] == held[-OVERLAP], "the retry still re-reads the last bars held"
    assert gw.requests[-1][0] == ("AAPL",), "and finds AAPL rewritten"
    pd.testing.assert_series_equal(out["AAPL"]["close"], gw.frames["AAPL"]["close"].loc[out["AAPL"].index],
                                   check_freq=False)


def test_a_new_day_drops_symbols_no_longer_asked_for_and_retries_one_without_data():
    gw = Gateway(bars_for(["AAPL", "MSFT"]))
    lb = LiveBars(gw, HOUR, history_bars=10)
    now = pd.Timestamp("2024-03-04 12:31", tz=NY)
    lb.update(["AAPL", "MSFT", "NODATA"], now)
    lb.update(["AAPL", "NODATA"], now + HOUR)
    assert set(lb.frames) == {"AAPL", "NODATA"}
    assert gw.requests[1][0] == ("AAPL", "NODATA") and gw.requests[1][1] > now - HOUR, "not hourly in full"
    day2 = pd.Timestamp("2024-03-05 09:45", tz=NY)
    lb.update(["AAPL", "NODATA"], day2)
    assert gw.requests[-1][0] == ("NODATA",) and gw.requests[-1][1] == day2 - lb.window, "once a day"


def test_bars_outside_the_regular_session_are_dropped_and_at_most_the_history_is_returned():
    frames = bars_for(["AAPL"], extra_hours=("2024-03-05 08:00", "2024-03-05 16:00", "2024-03-05 17:00"))
    frames["AAPL"] = frames["AAPL"].sort_index()
    lb = LiveBars(Gateway(frames), HOUR, history_bars=30)
    out = lb.update(["AAPL"], pd.Timestamp("2024-03-05 19:00", tz=NY))
    hours = {t.hour for t in out["AAPL"].index}
    assert hours <= set(range(9, 16)) and len(out["AAPL"]) == 30
    assert len(lb.frames["AAPL"]) <= 30 + 50, "a little more than needed is kept, not the whole history"


def test_a_symbol_without_data_is_left_out_and_keeps_what_it_had():
    gw = Gateway(bars_for(["AAPL"]))
    lb = LiveBars(gw, HOUR, history_bars=10)
    now = pd.Timestamp("2024-03-05 12:31", tz=NY)
    out = lb.update(["AAPL", "NODATA"], now)
    assert set(out) == {"AAPL"}
    assert "NODATA" in lb.frames and lb.frames["NODATA"].empty
    gw.frames = {}  # the feed answers nothing for the next hour: what was held is used, the bar that was
    again = lb.update(["AAPL"], now + HOUR)  # still forming an hour ago now counts as completed
    assert len(again["AAPL"]) == 10 and again["AAPL"].index[-1] == out["AAPL"].index[-1] + HOUR


@pytest.mark.parametrize("period, history", [(pd.Timedelta(days=1), 15)])
def test_daily_bars_are_not_cut_to_session_hours(period, history):
    idx = pd.date_range("2024-01-02", periods=40, freq="B", tz=NY)  # stamped at midnight, as Alpaca does
    frame = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": np.arange(40.0), "volume": 1.0},
                         index=idx)
    lb = LiveBars(Gateway({"SPY": frame}), period, history)
    out = lb.update(["SPY"], pd.Timestamp("2024-02-27 12:00", tz=NY))
    assert len(out["SPY"]) == history and out["SPY"].index[-1] < pd.Timestamp("2024-02-27", tz=NY)


def test_clock_aligned_hourly_bars_keep_the_session_hours_only():
    """Alpaca stamps hourly bars on the clock: the 09:00 bar holds the 09:30 open; 08:00 and 16:00 are extended."""
    idx = pd.DatetimeIndex([pd.Timestamp(f"2024-03-04 {h:02d}:00", tz=NY) for h in range(7, 18)])
    frame = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": np.arange(11.0), "volume": 1.0}, index=idx)
    lb = LiveBars(Gateway({"AAPL": frame}), HOUR, history_bars=50)
    lb.update(["AAPL"], pd.Timestamp("2024-03-04 19:00", tz=NY))
    assert [t.hour for t in lb.frames["AAPL"].index] == [9, 10, 11, 12, 13, 14, 15]


def test_the_day_turns_in_new_york_not_at_midnight_utc():
    gw = Gateway(bars_for(["AAPL"]))
    lb = LiveBars(gw, HOUR, history_bars=10)
    lb.update(["AAPL"], pd.Timestamp("2024-03-04 18:30", tz=NY))  # 23:30 UTC
    lb.update(["AAPL"], pd.Timestamp("2024-03-04 19:30", tz=NY))  # 00:30 UTC the next day: still Monday in NY
    assert gw.requests[1][1] == lb.frames["AAPL"].index[-1], "an evening update fetches from the last bar only"


def test_a_symbol_whose_bars_arrive_later_in_the_day_gets_them():
    frames = bars_for(["AAPL", "LATE"])
    late = frames.pop("LATE")
    gw = Gateway(frames)
    lb = LiveBars(gw, HOUR, history_bars=10)
    now = pd.Timestamp("2024-03-05 12:31", tz=NY)
    assert "LATE" not in lb.update(["LATE"], now)
    gw.frames["LATE"] = late
    out = lb.update(["LATE"], now + HOUR)
    assert len(out["LATE"]) == 10 and gw.requests[-1][1] == now + HOUR - lb.window


def test_fifteen_minute_bars_keep_the_whole_session_and_nothing_outside():
    times = pd.date_range("2024-03-04 08:45", "2024-03-04 16:15", freq="15min", tz=NY)
    frame = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=times)
    lb = LiveBars(Gateway({"AAPL": frame}), pd.Timedelta(minutes=15), history_bars=100)
    lb.update(["AAPL"], pd.Timestamp("2024-03-04 18:00", tz=NY))
    kept = lb.frames["AAPL"].index
    assert kept[0] == pd.Timestamp("2024-03-04 09:00", tz=NY) and kept[-1] == pd.Timestamp("2024-03-04 15:45", tz=NY)


def test_a_fetch_with_only_out_of_session_bars_keeps_what_was_held():
    frames = bars_for(["AAPL"])
    gw = Gateway(frames)
    lb = LiveBars(gw, HOUR, history_bars=10)
    now = pd.Timestamp("2024-03-05 16:31", tz=NY)
    first = lb.update(["AAPL"], now)
    evening = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0},
                           index=pd.DatetimeIndex([pd.Timestamp("2024-03-05 17:00", tz=NY)]))
    gw.frames = {"AAPL": evening}
    again = lb.update(["AAPL"], pd.Timestamp("2024-03-05 17:31", tz=NY))
    pd.testing.assert_frame_equal(again["AAPL"], first["AAPL"], check_freq=False, check_names=False)


def _frame(closes, start="2024-03-04 09:30"):
    idx = pd.date_range(start, periods=len(closes), freq="h", tz=NY)
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=idx)


@pytest.mark.parametrize("held, fresh, rewritten", [
    ([1, 2, 3], "same object", False),  # the feed had nothing new: what is held is kept
    ([1, 2, 3], [1, 2, 3.5, 4], False),  # only the last bar held changed: it was still forming
    ([1, 2, 3], [1, 2.1, 3, 4], True),  # a completed bar was corrected
    ([1, 2, 3], [1.1, 2, 3, 4], True),
    ([100, 100, 100], [100 * (1 - 2e-6), 100, 100, 101], True),  # a re-adjustment of a few millionths
    ([1], [5, 6], False),  # one bar held (the forming one): nothing to compare
    ([1, 2], "later bars only", True),  # two held, none of them in the answer: cannot be checked, so refetch
    ([], [1, 2], False),
])
def test_a_history_counts_as_rewritten_when_a_completed_bar_held_changed(held, fresh, rewritten):
    from broker.live_bars import _rewritten

    h = _frame(held)
    if fresh == "same object":
        f = h
    elif fresh == "later bars only":
        f = _frame([3, 4], start="2024-03-04 11:30")
    else:
        f = _frame(fresh)
    assert _rewritten(h, f) is rewritten
