"""Sizing invariants, and the exit policy walked along scripted price paths."""

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import snapshot
from trading.intents import IntentKind
from trading.order_ids import OrderIds
from trading.orders import MarketOrder, OcoOrder, StopUpdate
from trading.records.ledger import Lot
from trading.settings import Settings
from trading.sizing import bracket_levels, confidence_factor, entry_size, kelly_risk_cap, vol_scale
from trading.snapshot import OpenOrder
from trading.steps.exits import plan_exits

S = Settings.defaults()
TIMED = replace(S, time_exit_hours=24.0)  # the time exit is off by default
NY = ZoneInfo("America/New_York")


# ---------------------------------------------------------------------------------------------- sizing
@given(equity=st.floats(1_000, 1e7), price=st.floats(0.5, 5_000), stop_frac=st.floats(0.001, 0.5),
       confidence=st.floats(0, 1), cash=st.floats(0, 1e7), kelly=st.one_of(st.none(), st.floats(0, 1e5)))
def test_size_never_exceeds_the_risk_budget_or_the_caps(equity, price, stop_frac, confidence, cash, kelly):
    stop = price * (1 - stop_frac)
    size = entry_size(S, equity, price, stop, confidence, cash, kelly)
    assert isinstance(size.qty, int) and size.qty >= 0
    budget = S.risk_per_trade_pct * equity * confidence_factor(confidence, S.confidence_threshold)
    assert size.qty * (price - stop) <= budget + 1e-6
    if kelly is not None:
        assert size.qty * (price - stop) <= max(kelly, 0) + 1e-6
    assert size.qty * price <= min(S.max_entry_pct * equity, cash) + 1e-6


def test_confidence_factor_boundaries():
    assert confidence_factor(0.85, 0.6) == 1.5 and confidence_factor(0.849, 0.6) == 1.0
    assert confidence_factor(0.55, 0.6) == 1.0, "below 0.6 only matters when the threshold lets it through"
    assert confidence_factor(0.55, 0.5) == 0.5


def test_risk_based_size_with_atr_stops():
    atr_settings = Settings.defaults(stop_mode="atr")
    stop, target = bracket_levels(100.0, atr_settings, atr=2.0)
    assert (stop, target) == (Decimal("97.00"), Decimal("107.50")), "1.5 ATR stop, 3.75 ATR target: 2.5R"
    size = entry_size(atr_settings, 100_000, 100.0, float(stop), 0.7, 100_000)
    assert size.qty == 100, "$1,000 risk / $3 would be 333 sh; the 10% entry limit caps it at 100"
    assert bracket_levels(100.0, atr_settings, atr=float("nan")) is None


def test_kelly_cap_needs_enough_trades_and_shrinks_without_edge():
    assert kelly_risk_cap([1.0] * 10 + [-1.0] * 10, S, 100_000)[0] is None, "fewer than 30 trades"
    cap, why = kelly_risk_cap([2.0] * 15 + [-1.0] * 15, S, 100_000)
    assert cap == pytest.approx(0.25 * 0.25 * 100_000) and "Kelly" in why  # p=.5, b=2: f=.25
    cap, why = kelly_risk_cap([0.5] * 10 + [-1.0] * 20, S, 100_000)
    assert cap == pytest.approx(0.25 * 1_000) and "no edge" in why


@pytest.mark.parametrize("target, market_vol, factor", [
    (0.0, 0.30, 1.0),  # off
    (0.15, 0.30, 0.5), (0.15, 0.10, 1.5),
    (0.15, 0.05, 2.0), (0.15, 0.075, 2.0),  # never more than double
    (0.15, 1.20, 0.25), (0.15, 0.60, 0.25),  # never less than a quarter
    (0.15, float("nan"), 1.0), (0.15, 0.0, 1.0),  # unknown: unscaled
])
def test_volatility_target_factor(target, market_vol, factor):
    s = replace(S, vol_target_pct=target)
    assert vol_scale(s, market_vol)[0] == pytest.approx(factor)
    size = entry_size(s, 100_000, 100.0, 50.0, 0.7, 1e9, market_vol=market_vol)  # a $50 stop: no cap binds
    assert size.risk_usd == pytest.approx(1_000 * factor) and size.qty == int(20 * factor + 1e-9)


# ---------------------------------------------------------------------------------------------- exit policy
class Trade:
    """A tiny simulator: one 100-share position with a resting stop and target, walked along a path."""

    def __init__(self, entry=100.0, stop=95.0, target=115.0, qty=100, atr=2.0, settings=S):
        self.s = settings
        self.lot = Lot("AAPL", qty, entry, datetime(2024, 3, 4, 9, 30, tzinfo=NY), "entry", stop, stop, target)
        self.qty, self.stop, self.target, self.atr = qty, stop, target, atr
        self.events: list[tuple[str, float]] = []
        self.t = datetime(2024, 3, 4, 10, 30, tzinfo=NY)

    def step(self, price: float, high: float | None = None) -> list:
        if self.qty and price <= self.stop:
            self.events.append(("stopped", self.stop))
            self.qty = 0
            return []
        self.lot.highest = max(self.lot.highest, high or price)
        self.lot.lowest = min(self.lot.lowest, price)
        self.lot.hours_held += 1
        orders = (OpenOrder("tp", "AAPL", "sell", "limit", self.qty, limit_price=self.target, parent_id="b"),
                  OpenOrder("sl", "AAPL", "sell", "stop", self.qty, stop_price=self.stop, parent_id="b"))
        snap = snapshot(cash=50_000, holdings=[("AAPL", self.qty, self.lot.price)], orders=orders,
                        prices={"AAPL": {"close": price, "atr": self.atr}}, now=self.t)
        decisions = plan_exits(snap, self.s, {"AAPL": self.lot}, set(), OrderIds("t", self.t))
        for d in decisions:
            self.apply(d)
        self.t += timedelta(hours=1)
        return decisions

    def apply(self, d) -> None:
        i = d.intent
        self.events.append((d.action, 0.0))
        for o in i.orders:
            if isinstance(o, StopUpdate):
                assert float(o.stop_price) > self.stop, "a stop never moves down"
                self.stop = float(o.stop_price)
            elif isinstance(o, MarketOrder):
                self.qty -= o.qty
            elif isinstance(o, OcoOrder):
                assert o.qty == self.qty, "the re-protected quantity is exactly what is left"
                self.stop, self.target = float(o.stop_loss), float(o.take_profit)
        if i.trade_update:
            for k, v in i.trade_update.items():
                setattr(self.lot, k, v)


def test_breakeven_then_stop_at_entry():
    t = Trade()
    for price in (101, 103, 104.9):
        assert t.step(price) == []
    (d,) = t.step(105.5)  # +1.1R
    assert d.action == "breakeven" and d.intent.kind == IntentKind.MOVE_STOP
    assert t.stop == pytest.approx(100.10) and t.lot.stop_reason == "breakeven"
    assert t.step(101) == [], "no churn: the stop is already there"
    t.step(99.5)
    assert t.events[-1] == ("stopped", pytest.approx(100.10)), "the loser became a small winner"


def test_partial_then_trailing_never_loosens():
    t = Trade()
    t.step(106)  # +1.2R: breakeven
    (d,) = t.step(111)  # +2.2R: partial
    assert d.action == "partial" and t.qty == 50 and t.stop >= 100.10 and t.target == 115.0
    stops = []
    for price in (113, 114, 116, 115, 117, 116.5):
        t.step(price)
        stops.append(t.stop)
    assert stops == sorted(stops), "the stop only ratchets up"
    assert t.stop == pytest.approx(117 - 2.0), "1 ATR below the highest price"
    t.step(114.9)
    assert t.events[-1] == ("stopped", pytest.approx(115.0))


def test_a_trail_above_the_price_does_not_hold_back_the_breakeven():
    """A bar spiked to 111 (+2.2R; a gap that faded, or a bad print) and closed at 101.5: the trail from that high
    (109) is above the next prices, so it waits; the breakeven at +1.2R still goes in below the price (no partial,
    to watch the trail alone)."""
    t = Trade(settings=replace(S, partial_at_r=0.0))
    assert t.step(101.5, high=111) == []
    (d,) = t.step(106)
    assert d.action == "breakeven" and t.stop == pytest.approx(100.10)
    assert t.step(108.5) == [], "the trail (109) is still above the price"
    (d,) = t.step(112, high=112)
    assert d.action == "trailing" and t.stop == pytest.approx(110.0)


def test_time_exit_after_24_hours_without_progress():
    t = Trade(settings=TIMED)
    for k in range(23):
        assert t.step(100 + (k % 3)) == []
    (d,) = t.step(101)
    assert d.action == "time-exit" and d.intent.kind == IntentKind.TIME_EXIT and t.qty == 0
    assert set(d.intent.cancel_order_ids) == {"tp", "sl", "b"}, "legs are cancelled before the sale"


def test_no_time_exit_by_default():
    t = Trade()
    assert all(t.step(100 + (k % 3)) == [] for k in range(200)), "TIME_EXIT_HOURS=0: the trade stays open"
    assert t.qty == 100


def test_a_trade_that_reached_one_r_is_not_timed_out():
    t = Trade(settings=TIMED)
    t.step(105.5)  # breakeven at +1.1R
    for _ in range(30):
        assert all(d.action != "time-exit" for d in t.step(102))


def test_hedges_and_unknown_risk_are_left_to_their_own_rules():
    hedge = Lot("SH", 100, 14.0, datetime(2024, 3, 4, tzinfo=NY), "hedge", 13.3, 13.3, 16.1, hours_held=100)
    snap = snapshot(cash=1, holdings=[("SH", 100, 14.0)], prices={"SH": {"close": 14.0}})
    assert plan_exits(snap, S, {"SH": hedge}, set(), OrderIds("t", snap.now)) == []
    unknown = Lot("KO", 10, 60.0, datetime(2024, 3, 4, tzinfo=NY), "legacy", hours_held=100)
    snap = snapshot(cash=1, holdings=[("KO", 10, 60.0)], prices={"KO": {"close": 60.0}})
    assert plan_exits(snap, S, {"KO": unknown}, set(), OrderIds("t", snap.now)) == []


def test_pandas_free_lot_round_trip():
    lot = Lot("A", 5, 10.0, datetime(2024, 1, 2, tzinfo=NY), "entry", 9.5, 9.5, 11.5)
    assert Lot.from_dict(lot.as_dict()) == lot
    assert pd.Timestamp(Lot.from_dict(lot.as_dict()).time) == pd.Timestamp(lot.time)
