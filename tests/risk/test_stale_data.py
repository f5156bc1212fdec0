"""Stale data: a symbol whose last bar lags the market by STALE_BARS periods gets no new order."""


import pandas as pd
import pytest

from tests.builders import snapshot
from tests.risk.helpers import NY, T0, entry_decision, protect_decision, s
from trading.risk.controller import RiskController
from trading.risk.stale_data import stale_data
from trading.risk.verdict import Action


@pytest.mark.parametrize("lag_bars, action", [(0, Action.ALLOW), (1, Action.ALLOW), (2, Action.DENY),
                                              (30, Action.DENY)])
def test_stale_data_is_measured_in_bars_behind_the_market(lag_bars, action):
    fresh = pd.Timestamp("2024-03-05 14:30", tz=NY)
    assert stale_data(fresh - pd.Timedelta(hours=lag_bars), fresh, pd.Timedelta(hours=1), 2).action == action
    assert stale_data(None, fresh, pd.Timedelta(hours=1), 2).action == Action.DENY


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
