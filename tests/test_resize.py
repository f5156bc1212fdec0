"""trading/resize.fit_to_position: what is actually sold (and re-protected) once the cancels are confirmed.

The planner sized every sale from a snapshot taken before the cancel; a leg can fill in between. These
tests fix what a trader sees for each intent kind that sells against each position the broker may show
after the cancel: the same, smaller (a leg filled in part), flat, short, fractional, partly held by
other orders, or rounding dust. The invariants (never sell a long below zero, never add to a short, OCO
plus sale within the free shares, whole shares where Alpaca requires them, a note exactly when
something changed) are checked again on generated positions.
"""

import math
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.builders import NOW
from trading.execution.resize import DUST, FULL_EXITS, BrokerPosition, changes_position, fit_to_position
from trading.intents import Intent, IntentKind
from trading.order_ids import client_order_id
from trading.orders import LimitOrder, MarketOrder, OcoOrder, StopUpdate

SYM = "AAPL"
LEGS = ("g1-sl", "g1-tp")  # the protective legs the intent cancels first
TOL = 1e-9  # 9-decimal rounding of a fractional quantity may move it by half a billionth


def cid(intent: str) -> str:
    return client_order_id("combined", SYM, intent, NOW)


def sell(qty, intent="exit") -> MarketOrder:
    return MarketOrder(SYM, qty, "sell", cid(intent))


def buy(qty, intent="cover") -> MarketOrder:
    return MarketOrder(SYM, qty, "buy", cid(intent))


def limit(qty: int, side="sell", intent="exit") -> LimitOrder:
    return LimitOrder(SYM, qty, side, Decimal("99.50"), cid(intent), extended_hours=True)


def oco(qty: int, intent="trim-oco") -> OcoOrder:
    return OcoOrder(SYM, qty, Decimal("115.00"), Decimal("95.00"), cid(intent))


def pos(qty: float, available: float | None = None) -> BrokerPosition:
    return BrokerPosition(qty, qty if available is None else available)


def shape(orders) -> list[tuple[str, str, float]]:
    """(type, side, qty) of each order: what the broker would receive."""
    return [(type(o).__name__, o.side, o.qty) for o in orders]


def _sells(orders) -> list:
    return [o for o in orders if o.side == "sell"]


# ---------------------------------------------------------------------------------------------- full exits
FULL = [
    # (case, position, expected (type, side, qty) list or None for "exactly as planned", words in the note)
    ("unchanged", pos(10), None, ""),
    ("a leg filled in part", pos(4), [("MarketOrder", "sell", 4)], "sell 4 sh, not the planned 10"),
    ("grew", pos(12), [("MarketOrder", "sell", 12)], "sell 12 sh"),
    ("flat", pos(0), [], "flat"),
    ("short", pos(-3), [], "-3"),
    ("fractional", pos(10.5), [("MarketOrder", "sell", 10.5)], "sell 10.5 sh"),
    ("fraction left by a fill", pos(0.25), [("MarketOrder", "sell", 0.25)], "sell 0.25 sh"),
    ("held by other orders", pos(10, 6), [("MarketOrder", "sell", 6)], "sell 6 sh"),
    ("all held by other orders", pos(10, 0), [], "all held by other orders"),
    ("available reported negative", pos(10, -2), [], "all held by other orders"),
    ("available above the position", pos(7, 9), [("MarketOrder", "sell", 7)], "sell 7 sh"),
    ("dust", pos(1e-10), [], "flat"),
    ("dust above a whole position", pos(10 + 1e-11), None, ""),
]


@pytest.mark.parametrize("kind", FULL_EXITS)
@pytest.mark.parametrize(("case", "position", "expected", "words"), FULL, ids=[c[0] for c in FULL])
def test_a_full_exit_sells_exactly_what_is_free(kind, case, position, expected, words):
    intent = Intent(kind, SYM, (sell(10, kind.value),), LEGS)
    orders, note = fit_to_position(intent, position)
    if expected is None:
        assert orders == intent.orders
        assert note == ""
    else:
        assert shape(orders) == expected
        assert words in note
        assert note  # something changed, so the log says what
    for o in orders:  # the refitted sale keeps its id (a restart cannot send it twice)
        assert o.client_order_id == cid(kind.value)


LIMIT_FULL = [
    ("unchanged", pos(10), None, ""),
    ("fractional: whole shares only", pos(10.5), None, ""),
    ("smaller and fractional", pos(6.75), [("LimitOrder", "sell", 6)], "sell 6 sh"),
    ("held by other orders", pos(10, 3.9), [("LimitOrder", "sell", 3)], "sell 3 sh"),
    ("less than one share", pos(0.5), [], "less than one share to sell"),
    ("flat", pos(0), [], "flat"),
]


@pytest.mark.parametrize(("case", "position", "expected", "words"), LIMIT_FULL, ids=[c[0] for c in LIMIT_FULL])
def test_an_extended_hours_exit_sells_whole_shares_only(case, position, expected, words):
    intent = Intent(IntentKind.EXIT, SYM, (limit(10),), LEGS)
    orders, note = fit_to_position(intent, position)
    if expected is None:
        assert orders == intent.orders and note == ""
    else:
        assert shape(orders) == expected
        assert words in note
    for o in orders:
        assert isinstance(o.qty, int) and o.limit_price == Decimal("99.50") and o.extended_hours


# ---------------------------------------------------------------------------------------------- part sales
PART = [
    # planned from 10 sh: sell 3, re-protect 7
    ("unchanged", pos(10), None, ()),
    ("a leg filled in part", pos(8), [("MarketOrder", "sell", 3), ("OcoOrder", "sell", 5)],
     ("re-protect 5 sh (planned 7)",)),
    ("one whole share left after the sale", pos(4), [("MarketOrder", "sell", 3), ("OcoOrder", "sell", 1)],
     ("re-protect 1 sh (planned 7)",)),
    ("only the sale is left", pos(3), [("MarketOrder", "sell", 3)], ("no whole share left to re-protect",)),
    ("less than the sale left", pos(2), [("MarketOrder", "sell", 2)],
     ("sell 2 sh, not the planned 3", "no whole share left to re-protect")),
    ("flat", pos(0), [], ("flat",)),
    ("short", pos(-2), [], ("-2",)),
    ("fractional, same whole shares", pos(10.5), None, ()),
    ("fractional, one whole share fewer", pos(9.5), [("MarketOrder", "sell", 3), ("OcoOrder", "sell", 6)],
     ("re-protect 6 sh (planned 7)",)),
    ("held by other orders", pos(10, 6), [("MarketOrder", "sell", 3), ("OcoOrder", "sell", 3)],
     ("re-protect 3 sh (planned 7)",)),
    ("held, a fraction left after the sale", pos(10, 3.5), [("MarketOrder", "sell", 3)],
     ("no whole share left to re-protect",)),
    ("all held by other orders", pos(10, 0), [], ("all held by other orders",)),
    ("grew", pos(12), [("MarketOrder", "sell", 3), ("OcoOrder", "sell", 9)], ("re-protect 9 sh (planned 7)",)),
    ("dust", pos(10 - 1e-11), None, ()),
    ("flat dust", pos(5e-10), [], ("flat",)),
]


@pytest.mark.parametrize("kind", [IntentKind.TRIM, IntentKind.PARTIAL])
@pytest.mark.parametrize(("case", "position", "expected", "words"), PART, ids=[c[0] for c in PART])
def test_a_part_sale_sells_at_most_the_plan_and_reprotects_the_whole_shares_left(kind, case, position, expected,
                                                                                   words):
    prefix = kind.value
    planned = (sell(3, prefix), oco(7, f"{prefix}-oco"))
    intent = Intent(kind, SYM, planned, LEGS, {"partial_done": True} if kind == IntentKind.PARTIAL else None)
    orders, note = fit_to_position(intent, position)
    if expected is None:
        assert orders == planned and note == ""
    else:
        assert shape(orders) == expected
        assert note
        for w in words:
            assert w in note
    # the refitted OCO keeps the planned levels and id; the sale goes first (it frees nothing the OCO needs)
    for o in orders:
        if isinstance(o, OcoOrder):
            assert (o.stop_loss, o.take_profit, o.client_order_id) == (Decimal("95.00"), Decimal("115.00"),
                                                                       cid(f"{prefix}-oco"))
    if orders:
        assert isinstance(orders[0], MarketOrder)


def test_an_extended_hours_trim_sells_and_keeps_whole_shares():
    intent = Intent(IntentKind.TRIM, SYM, (limit(3, intent="trim"), oco(7)), LEGS)
    orders, note = fit_to_position(intent, pos(2.5))
    assert shape(orders) == [("LimitOrder", "sell", 2)]
    assert "sell 2 sh, not the planned 3" in note and "no whole share left to re-protect" in note
    orders, note = fit_to_position(intent, pos(8.6))
    assert shape(orders) == [("LimitOrder", "sell", 3), ("OcoOrder", "sell", 5)]
    assert "re-protect 5 sh (planned 7)" in note
    orders, note = fit_to_position(intent, pos(0.9))
    assert orders == () and "less than one share to sell" in note


def test_a_part_sale_without_an_oco_sells_at_most_the_plan():
    intent = Intent(IntentKind.TRIM, SYM, (sell(3, "trim"),), LEGS)
    assert fit_to_position(intent, pos(10)) == (intent.orders, "")
    orders, note = fit_to_position(intent, pos(1.5))
    assert shape(orders) == [("MarketOrder", "sell", 1.5)] and "sell 1.5 sh, not the planned 3" in note
    assert "re-protect" not in note


# ---------------------------------------------------------------------------------------------- bare OCO
PROTECT = [
    ("unchanged", pos(10), None, ""),
    ("a leg filled in part", pos(6), [("OcoOrder", "sell", 6)], "protect 6 sh (planned 10; the broker holds 6)"),
    ("fractional, same whole shares", pos(10.7), None, ""),
    ("held by other orders", pos(10, 4), [("OcoOrder", "sell", 4)], "protect 4 sh (planned 10"),
    ("exactly one free share", pos(10, 1), [("OcoOrder", "sell", 1)], "protect 1 sh (planned 10"),
    ("rounding residue below the whole shares", pos(10 - 1e-11), None, ""),
    ("less than one free share", pos(10, 0.5), [], "no free whole share to protect (0.5 of 10 available)"),
    ("fraction only", pos(0.8), [], "no free whole share to protect"),
    ("grew", pos(12), [("OcoOrder", "sell", 12)], "protect 12 sh (planned 10"),
    ("flat", pos(0), [], "flat"),
    ("short", pos(-4), [], "-4"),
    ("dust", pos(3e-10), [], "flat"),
]


@pytest.mark.parametrize(("case", "position", "expected", "words"), PROTECT, ids=[c[0] for c in PROTECT])
def test_a_protect_covers_the_free_whole_shares(case, position, expected, words):
    intent = Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),), ("orphan-tp",))
    orders, note = fit_to_position(intent, position)
    if expected is None:
        assert orders == intent.orders and note == ""
    else:
        assert shape(orders) == expected
        assert words in note
    for o in orders:
        assert (o.stop_loss, o.take_profit, o.client_order_id) == (Decimal("95.00"), Decimal("115.00"),
                                                                   cid("protect"))


# ---------------------------------------------------------------------------------------------- buy-backs
BUY_BACK = [
    ("unchanged", pos(-5), None, ""),
    ("partly covered", pos(-3), [("MarketOrder", "buy", 3)], "buy back 3 sh, not the planned 5"),
    ("deeper", pos(-8), [("MarketOrder", "buy", 8)], "buy back 8 sh"),
    ("fractional", pos(-2.5), [("MarketOrder", "buy", 2.5)], "buy back 2.5 sh"),
    ("covered", pos(0), [], "no short left to buy back (position 0)"),
    ("now long", pos(4), [], "no short left to buy back (position 4)"),
    ("dust", pos(-1e-10), [], "no short left to buy back"),
]


@pytest.mark.parametrize("kind", [IntentKind.EXIT, IntentKind.FLATTEN])
@pytest.mark.parametrize(("case", "position", "expected", "words"), BUY_BACK, ids=[c[0] for c in BUY_BACK])
def test_a_short_is_only_bought_back(kind, case, position, expected, words):
    intent = Intent(kind, SYM, (buy(5),), LEGS)
    orders, note = fit_to_position(intent, position)
    if expected is None:
        assert orders == intent.orders and note == ""
    else:
        assert shape(orders) == expected
        assert words in note


def test_an_extended_hours_buy_back_is_whole_shares():
    intent = Intent(IntentKind.EXIT, SYM, (limit(5, "buy", "cover"),), LEGS)
    orders, note = fit_to_position(intent, pos(-3.5))
    assert shape(orders) == [("LimitOrder", "buy", 3)] and "buy back 3 sh" in note
    orders, note = fit_to_position(intent, pos(-0.5))
    assert orders == () and "less than one share to buy back" in note


# ---------------------------------------------------------------------------------------------- which intents
@pytest.mark.parametrize(("intent", "refit"), [
    (Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS), True),
    (Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS), True),
    (Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),)), True),
    (Intent(IntentKind.EXIT, SYM, (limit(10),)), True),
    (Intent(IntentKind.FLATTEN, SYM, (buy(5, "flatten"),), LEGS), True),
    (Intent(IntentKind.ENTER, SYM, (MarketOrder(SYM, 5, "buy", cid("enter")),)), False),  # opens exposure
    (Intent(IntentKind.HEDGE, "SH", (MarketOrder("SH", 5, "buy", cid("hedge")),)), False),
    (Intent(IntentKind.MOVE_STOP, SYM, (StopUpdate(SYM, "g1-sl", Decimal("99.00"), cid("move-stop")),)), False),
    (Intent(IntentKind.UNHEDGE, "SH", (), ("o-1",)), False),  # cancel only: nothing to refit
    (Intent(IntentKind.CANCEL, SYM, (), ("o-1",)), False),
])
def test_only_intents_that_close_shares_are_refitted(intent, refit):
    assert changes_position(intent) is refit


def test_an_intent_with_no_sale_and_no_oco_is_left_alone():
    intent = Intent(IntentKind.MOVE_STOP, SYM, (StopUpdate(SYM, "g1-sl", Decimal("99.00"), cid("move-stop")),))
    assert fit_to_position(intent, pos(10)) == (intent.orders, "")


def test_a_flat_position_reads_as_flat():
    assert BrokerPosition.flat() == BrokerPosition(0.0, 0.0)
    orders, note = fit_to_position(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS), BrokerPosition.flat())
    assert orders == () and note == "nothing left to sell: the position is flat"


# ---------------------------------------------------------------------------------------------- invariants
qty_values = st.one_of(
    st.integers(-20_000, 30_000).map(lambda n: n / 1000),  # Alpaca-like quantities (3 decimals)
    st.integers(-30, 30).map(float),  # whole shares
    st.integers(-3, 8).map(float),  # a few whole shares: around the planned sale and OCO
    st.floats(-20, 30, allow_nan=False, allow_infinity=False),  # anything in between
    st.sampled_from([0.0, 1e-10, -1e-10, 5e-10, 1.0 - 1e-11, 1.0 + 1e-11]),  # dust
)


@st.composite
def held(draw):
    qty = draw(qty_values)
    how = draw(st.sampled_from(["all", "some", "none", "odd"]))
    if how == "all":
        available = qty
    elif how == "some":
        available = draw(st.floats(0, max(0.0, qty), allow_nan=False))  # max(-0.0, 0.0) is -0.0
    elif how == "none":
        available = 0.0
    else:
        available = draw(st.floats(-5, 40, allow_nan=False))
    return BrokerPosition(qty, available)


@st.composite
def selling_intent(draw):
    kind = draw(st.sampled_from([*FULL_EXITS, IntentKind.TRIM, IntentKind.PARTIAL, IntentKind.PROTECT]))
    if kind == IntentKind.PROTECT:
        return Intent(kind, SYM, (oco(draw(st.integers(1, 40)), "protect"),), LEGS)
    whole = draw(st.one_of(st.integers(1, 4), st.integers(1, 40)))
    if draw(st.booleans()):
        sale = limit(whole, intent=kind.value)
    else:
        sale = sell(draw(st.one_of(st.just(float(whole)), st.integers(1, 40_000).map(lambda n: n / 1000))),
                    kind.value)
    orders = (sale,)
    if kind in (IntentKind.TRIM, IntentKind.PARTIAL) and draw(st.booleans()):
        orders += (oco(draw(st.one_of(st.integers(1, 4), st.integers(1, 40))), f"{kind.value}-oco"),)
    return Intent(kind, SYM, orders, LEGS)


@st.composite
def buy_back_intent(draw):
    kind = draw(st.sampled_from([IntentKind.EXIT, IntentKind.FLATTEN]))
    whole = draw(st.integers(1, 40))
    sale = limit(whole, "buy", "cover") if draw(st.booleans()) else buy(draw(
        st.one_of(st.just(float(whole)), st.integers(1, 40_000).map(lambda n: n / 1000))))
    return Intent(kind, SYM, (sale,), LEGS)


def _free(p: BrokerPosition) -> float:
    return max(min(p.available, p.qty), 0.0)


def _whole_shares_where_required(orders) -> None:
    for o in orders:
        if isinstance(o, LimitOrder | OcoOrder):
            assert isinstance(o.qty, int) and o.qty >= 1, o
        else:
            assert o.qty > 0 and round(o.qty, 9) == o.qty, o


@settings(deadline=None)  # the machine is shared: timing is not what is tested
@given(selling_intent(), held())
@example(Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),), LEGS), BrokerPosition(1 - 1e-11, 1 - 1e-11))
@example(Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS), BrokerPosition(4 - 1e-11, 4 - 1e-11))
def test_a_long_is_never_sold_below_zero(intent, p):
    orders, note = fit_to_position(intent, p)
    _whole_shares_where_required(orders)
    assert all(o.side == "sell" for o in orders)  # a sale is never turned into a buy
    if p.qty <= DUST:
        assert orders == ()  # flat or short: no sell order, and no OCO (it would sell short)
        assert note
        return
    free = _free(p)
    sales = [o for o in orders if not isinstance(o, OcoOrder)]
    assert len(sales) <= 1 and len(orders) - len(sales) <= 1
    assert sum(float(o.qty) for o in sales) <= max(min(p.available, p.qty), 0.0) + TOL
    assert sum(float(o.qty) for o in orders) <= free + TOL  # the OCO and the sale together fit the free shares
    planned = next((o for o in intent.orders if not isinstance(o, OcoOrder)), None)
    if sales and intent.kind not in FULL_EXITS:
        assert sales[0].qty <= planned.qty  # a part sale never sells more than planned
    if planned is not None and isinstance(planned, MarketOrder) and free > DUST:
        expected = round(free if intent.kind in FULL_EXITS else min(float(planned.qty), free), 9)
        if expected > DUST:
            assert sales and math.isclose(sales[0].qty, expected, abs_tol=TOL)
    planned_oco = next((o for o in intent.orders if isinstance(o, OcoOrder)), None)
    if planned_oco is not None:  # the OCO covers every whole share the sale leaves free
        sold = float(sales[0].qty) if sales else 0.0
        left = math.floor(free - sold + DUST)
        if planned is None or sales:
            ocos = [o for o in orders if isinstance(o, OcoOrder)]
            assert [o.qty for o in ocos] == ([left] if left >= 1 else [])


@settings(deadline=None)  # the machine is shared: timing is not what is tested
@given(buy_back_intent(), held())
def test_a_short_is_never_added_to(intent, p):
    orders, note = fit_to_position(intent, p)
    _whole_shares_where_required(orders)
    assert all(o.side == "buy" for o in orders)  # never a sell: that would deepen the short
    if p.qty >= -DUST:
        assert orders == () and "no short left to buy back" in note
        return
    assert len(orders) <= 1
    assert sum(float(o.qty) for o in orders) <= -p.qty + TOL
    if orders and isinstance(orders[0], MarketOrder):
        assert math.isclose(orders[0].qty, round(-p.qty, 9), abs_tol=TOL)  # the whole short is bought back


@settings(deadline=None)  # the machine is shared: timing is not what is tested
@given(st.one_of(selling_intent(), buy_back_intent()), held())
def test_the_note_is_empty_exactly_when_nothing_changed(intent, p):
    orders, note = fit_to_position(intent, p)
    assert (note == "") == (orders == intent.orders)
