"""The four steps together: order of steps, conflict resolution, shared cash."""

from dataclasses import replace

from tests.builders import Fixed, oco_legs, snapshot
from trading.intents import IntentKind, Step
from trading.snapshot import OpenOrder
from trading.steps.planner import plan_iteration


def test_steps_run_in_the_designed_order(settings):
    snap = snapshot(cash=50_000, holdings=[("AAPL", 10, 100.0)],
                    prices={"AAPL": {"close": 101, "rsi": 50}, "MSFT": {"close": 300, "rsi": 20, "trend": 250}})
    plan = plan_iteration(snap, settings, Fixed(0.9))
    steps = [d.step for d in plan.decisions]
    order = [Step.PROTECT, Step.TRIM, Step.HEDGE, Step.ENTRY]
    assert [s for s in order if s in steps] == order
    assert steps == sorted(steps, key=order.index)


def test_oversized_unprotected_position_is_trimmed_and_protected_once(settings):
    snap = snapshot(cash=20_000, holdings=[("AMD", 400, 150.0)], prices={"AMD": 200.0})  # 80% of portfolio
    plan = plan_iteration(snap, settings, Fixed(0.9))
    kinds = [i.kind for i in plan.intents if i.symbol == "AMD"]
    assert kinds == [IntentKind.TRIM], "the trim re-protects; no separate OCO for the full size"
    protect = next(d for d in plan.decisions if d.action == "protect" and d.symbol == "AMD")
    assert "superseded by the trim" in protect.reason


def test_software_stop_beats_the_trim(settings):
    snap = snapshot(cash=1_000, holdings=[("TSLA", 100, 100.0)], prices={"TSLA": 90.0})
    plan = plan_iteration(snap, settings, Fixed(0.9))
    assert [i.kind for i in plan.intents] == [IntentKind.EXIT]


def test_hedge_unwind_supersedes_a_trim_of_the_hedge(settings):
    rows = {s: {"close": 100, "rsi": 40} for s in settings.bellwethers}
    rows["SH"] = {"close": 10.0}
    snap = snapshot(cash=70_000, holdings=[("SH", 3000, 10.0)], orders=oco_legs("SH", 3000, 9.5, 11.5), prices=rows)
    plan = plan_iteration(snap, settings, Fixed(0.9))
    assert [i.kind for i in plan.intents] == [IntentKind.UNHEDGE]


def test_hedge_and_entries_share_the_cash_above_the_reserve(settings):
    rows = {s: {"close": 100.0, "rsi": 80} for s in settings.bellwethers[:3]}
    rows.update({"TSLA": {"close": 100, "rsi": 20, "trend": 90}, "SH": {"close": 10.0}})
    snap = snapshot(cash=12_000, portfolio_value=100_000, prices=rows)
    plan = plan_iteration(snap, settings, Fixed(0.9))
    spent = sum(o.notional for i in plan.intents for o in i.orders)
    assert spent <= 12_000 - settings.min_cash_reserve
    assert [i.kind for i in plan.intents] == [IntentKind.HEDGE], "the hedge used the cash first"


def test_open_buy_orders_reserve_cash(settings):
    rows = {"TSLA": {"close": 100, "rsi": 20, "trend": 90}}
    pending = OpenOrder("o1", "AAPL", "buy", "market", 100, limit_price=100.0)
    snap = snapshot(cash=11_000, portfolio_value=100_000, prices=rows, orders=[pending])
    plan = plan_iteration(snap, settings, Fixed(0.9))
    assert not plan.intents, "$11,000 - $1,000 reserve - $10,000 promised leaves nothing"


def test_a_stock_below_one_dollar_gets_four_decimal_legs_and_its_protection_too():
    from decimal import Decimal

    from trading.orders import BracketOrder, OcoOrder, is_valid_increment
    from trading.settings import Settings

    s = Settings.defaults(universe=("SIRI", "NOK"))
    snap = snapshot(cash=50_000, holdings=[("NOK", 3000, 0.9)],
                    prices={"SIRI": {"close": 0.5731, "rsi": 18, "trend": 0.6}, "NOK": 0.8917})
    plan = plan_iteration(snap, s, Fixed(0.9))
    (entry,) = [i.orders[0] for i in plan.intents if i.kind == IntentKind.ENTER]
    (oco,) = [i.orders[0] for i in plan.intents if i.kind == IntentKind.PROTECT]
    assert isinstance(entry, BracketOrder) and isinstance(oco, OcoOrder)
    for price in (entry.stop_loss, entry.take_profit, oco.stop_loss, oco.take_profit):
        assert is_valid_increment(price)
    assert entry.stop_loss == Decimal("0.5444") and entry.take_profit == Decimal("0.6591")  # -5% / +15%, rounded out
    assert oco.qty == 3000 and oco.stop_loss == Decimal("0.855")  # 4 decimals below $1 ...
    assert oco.take_profit == Decimal("1.04")  # ... and cents from $1 up (0.9 x 1.15 = 1.035, rounded up)


# ---------------------------------------------------------------------------------------------- one intent per symbol
def _intent_decision(kind, symbol="AAPL"):
    from trading.intents import Decision, Intent

    return Decision(Step.PLAN, symbol, kind.value, f"{kind.value} {symbol}", Intent(kind, symbol, ()))


def test_precedence_table_keeps_exactly_the_higher_intent_of_every_pair():
    """The table in trading/steps/planner.py's docstring, walked pair by pair in both orders."""
    from trading.steps.planner import PRECEDENCE, arbitrate

    assert len(set(PRECEDENCE)) == len(IntentKind), "every intent kind has a rank"
    for i, high in enumerate(PRECEDENCE):
        for low in PRECEDENCE[i + 1:]:
            for pair in ((high, low), (low, high)):
                out = arbitrate([_intent_decision(k) for k in pair])
                kept = [d.intent.kind for d in out if d.intent is not None]
                assert kept == [high], f"{pair}: kept {kept}"
                loser = next(d for d in out if d.intent is None)
                assert f"superseded by the {high.value} of AAPL" in loser.reason
                assert [d.action for d in out] == [k.value for k in pair], "order of the log kept"


def test_arbitration_leaves_other_symbols_and_a_single_intent_alone():
    from trading.steps.planner import arbitrate

    out = arbitrate([_intent_decision(IntentKind.PROTECT, "AAPL"), _intent_decision(IntentKind.TRIM, "MSFT"),
                     _intent_decision(IntentKind.PROTECT, "MSFT"), _intent_decision(IntentKind.ENTER, "XOM")])
    assert [(d.symbol, d.intent.kind) for d in out if d.intent] == [
        ("AAPL", IntentKind.PROTECT), ("MSFT", IntentKind.TRIM), ("XOM", IntentKind.ENTER)]
    same = arbitrate([_intent_decision(IntentKind.PROTECT), _intent_decision(IntentKind.PROTECT)])
    assert sum(d.intent is not None for d in same) == 1, "two intents of one kind on one symbol: the first only"


def _stale_trade(symbol, qty, entry, hours, **kw):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from trading.records.ledger import Lot

    return Lot(symbol, qty, entry, datetime(2024, 3, 1, 9, 30, tzinfo=ZoneInfo("America/New_York")), "entry",
               entry * 0.95, entry * 0.95, entry * 1.15, hours_held=hours, **kw)


def test_time_exit_on_an_unprotected_position_is_the_only_intent(settings):
    """Defect 5: the OCO of step 1 would take every share and the sale would be refused (insufficient qty)."""
    snap = snapshot(cash=80_000, holdings=[("JPM", 100, 100.0)], prices={"JPM": 100.5})
    timed = replace(settings, time_exit_hours=24.0)  # off by default
    plan = plan_iteration(snap, timed, Fixed(0.0), trades={"JPM": _stale_trade("JPM", 100, 100.0, 500)})
    assert [i.kind for i in plan.intents if i.symbol == "JPM"] == [IntentKind.TIME_EXIT]
    protect = next(d for d in plan.decisions if d.action == "protect" and d.symbol == "JPM")
    assert protect.intent is None and "superseded by the time-exit" in protect.reason


def test_partial_on_a_partly_protected_position_is_the_only_intent(settings):
    legs = oco_legs("JPM", 50, 96.0, 120.0)  # half the shares covered: step 1 wants an OCO for the rest
    snap = snapshot(cash=80_000, holdings=[("JPM", 100, 100.0)], orders=legs, prices={"JPM": 110.0})
    plan = plan_iteration(snap, settings, Fixed(0.0), trades={"JPM": _stale_trade("JPM", 100, 100.0, 2)})
    assert [i.kind for i in plan.intents if i.symbol == "JPM"] == [IntentKind.PARTIAL]


def test_hedge_unwind_of_an_unprotected_hedge_is_the_only_intent(settings):
    rows = {s: {"close": 100, "rsi": 40} for s in settings.bellwethers}
    rows["SH"] = {"close": 10.0}
    snap = snapshot(cash=90_000, holdings=[("SH", 500, 10.0)], prices=rows)  # no legs: step 1 wants an OCO
    plan = plan_iteration(snap, settings, Fixed(0.0))
    assert [i.kind for i in plan.intents if i.symbol == "SH"] == [IntentKind.UNHEDGE]


def test_the_planner_never_sells_one_symbol_twice_in_one_iteration(settings):
    """Many random books: at most one intent per symbol, and never two intents that sell the same symbol."""
    import random

    rng = random.Random(5)
    syms = ["AAPL", "MSFT", "JPM", "XOM", "SH"]
    for _ in range(150):
        holdings, orders, trades, rows = [], [], {}, {}
        for sym in syms:
            price = rng.uniform(5, 300)
            rows[sym] = {"close": price, "rsi": rng.uniform(10, 90), "trend": price * 0.9, "atr": price * 0.02}
            if rng.random() < 0.7:
                qty = rng.randint(1, 400)
                entry = price * rng.uniform(0.85, 1.2)
                holdings.append((sym, qty, entry))
                if rng.random() < 0.5:
                    orders += list(oco_legs(sym, qty, round(entry * 0.95, 2), round(entry * 1.3, 2), f"g{sym}"))
                if rng.random() < 0.6 and sym != "SH":
                    trades[sym] = _stale_trade(sym, qty, entry, rng.choice([1, 30, 500]))
        for b in settings.bellwethers:
            rows.setdefault(b, {"close": 100.0, "rsi": rng.uniform(20, 90)})
        snap = snapshot(cash=rng.uniform(0, 50_000), holdings=holdings, orders=orders, prices=rows)
        plan = plan_iteration(snap, settings, Fixed(0.9), trades=trades)
        per_symbol = [i.symbol for i in plan.intents]
        assert len(per_symbol) == len(set(per_symbol)), per_symbol
