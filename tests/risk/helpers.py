"""Shared builders for the risk-rule tests: an equity tracker at a given drawdown, decisions, snapshots."""

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.builders import snapshot
from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import build_bracket_for_budget
from trading.risk.equity import EquityTracker
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
