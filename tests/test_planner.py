"""The four steps together: order of steps, conflict resolution, shared cash."""

from tests.builders import Fixed, oco_legs, snapshot
from trading.intents import IntentKind, Step
from trading.planner import plan_iteration
from trading.snapshot import OpenOrder


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
    assert "placed by the trim" in protect.reason


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
