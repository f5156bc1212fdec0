"""The backtest venue (backtest/venue.py) against a stand-in for the Lumibot strategy: real Lumibot orders,
a backtesting broker that keeps them in a list, no backtest run."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from lumibot.entities import Asset
from lumibot.entities import Order as LumiOrder

from backtest.venue import BacktestVenue, _lumibot_answer, _value
from trading.execution.resize import BrokerPosition
from trading.orders import BracketOrder, LimitOrder, MarketOrder, OcoOrder, StopUpdate


class Ledger:
    def __init__(self) -> None:
        self.roles: dict[str, str] = {}

    def register(self, order_id: str, role: str) -> None:
        self.roles[order_id] = role


class StandIn:
    """What the venue uses of the strategy: create/submit/cancel/modify orders, open orders, positions."""

    def __init__(self, positions: dict[str, float] | None = None, refuse: bool = False) -> None:
        self.positions = dict(positions or {})
        self.open: list[LumiOrder] = []
        self.cancelled: list[LumiOrder] = []
        self.modified: list[tuple[LumiOrder, dict]] = []
        self.submitted: list[LumiOrder] = []
        self.refuse = refuse
        self.ledger = Ledger()
        self.snapshots: list = []

    def create_order(self, asset, quantity, side, **kwargs) -> LumiOrder:
        return LumiOrder("stand-in", Asset(asset), quantity, side, **kwargs)

    def submit_order(self, order: LumiOrder):
        self.submitted.append(order)
        if self.refuse:
            return None
        order.status = "new"
        for child in order.child_orders or ():
            child.status = "new"
        self.open.append(order)
        return order

    def open_lumibot_orders(self) -> list[LumiOrder]:
        return list(self.open)

    def cancel_order(self, order: LumiOrder) -> None:
        self.cancelled.append(order)
        self.open.remove(order)

    def modify_order(self, order: LumiOrder, **kwargs) -> None:
        self.modified.append((order, kwargs))
        order.stop_price = kwargs.get("stop_price", order.stop_price)

    def get_position(self, symbol: str):
        qty = self.positions.get(symbol)
        return None if qty is None else SimpleNamespace(quantity=qty)

    def snapshot_from_lumibot(self, now):
        self.snapshots.append(now)
        return ("snapshot", now)


def resting(symbol: str, qty: float, side: str, *, order_type: str = "limit", parent: str | None = None,
            children: list | None = None, identifier: str | None = None) -> LumiOrder:
    kwargs = {"limit_price": 110.0} if order_type == "limit" else {"stop_price": 90.0}
    o = LumiOrder("stand-in", Asset(symbol), qty, side, identifier=identifier, **kwargs)
    o.parent_identifier = parent
    if children is not None:
        o.child_orders = children
    o.status = "new"
    return o


BRACKET = BracketOrder("AAPL", 10, Decimal("100"), Decimal("110"), Decimal("95"), "cid-bracket")


def test_snapshot_comes_from_the_strategy_and_fills_from_lumibot_callbacks():
    st = StandIn()
    venue = BacktestVenue(st)
    assert venue.live is False
    assert venue.snapshot("t1") == ("snapshot", "t1")
    assert st.snapshots == ["t1"]
    assert venue.sync_fills("t1") == []


def test_cancel_cancels_only_the_wanted_open_orders_and_is_confirmed_at_once():
    st = StandIn()
    keep = resting("AAPL", 5, "sell", identifier="keep")
    drop1 = resting("AAPL", 5, "sell", identifier="drop1")
    drop2 = resting("MSFT", 3, "sell", identifier="drop2")
    st.open = [keep, drop1, drop2]
    assert BacktestVenue(st).cancel(("drop1", "drop2", "not-open")) is True
    assert [o.identifier for o in st.cancelled] == ["drop1", "drop2"]
    assert [o.identifier for o in st.open] == ["keep"]


def test_cancel_of_nothing_open_still_reports_done():
    st = StandIn()
    assert BacktestVenue(st).cancel(("gone",)) is True
    assert st.cancelled == []


def test_refused_submit_is_not_ok_and_registers_nothing():
    st = StandIn(refuse=True)
    result = BacktestVenue(st).submit(MarketOrder("AAPL", 5, "buy", "cid-1"), "entry")
    assert result.ok is False
    assert result.broker_id is None
    assert result.note == "the backtesting broker refused it"
    assert st.ledger.roles == {}
    assert len(st.submitted) == 1


def test_bracket_submit_registers_parent_and_legs_by_type():
    st = StandIn()
    result = BacktestVenue(st).submit(BRACKET, "entry")
    sent = st.submitted[0]
    assert sent.tag == "cid-bracket"
    assert sent.custom_params == {"client_order_id": "cid-bracket"}
    tp, sl = sent.child_orders
    assert st.ledger.roles == {sent.identifier: "entry", tp.identifier: "target", sl.identifier: "stop"}
    assert result.ok is True
    assert result.broker_id == sent.identifier
    assert result.status == "new"
    assert result.lumibot_order is sent
    assert result.note == ""
    assert result.response == {
        "id": sent.identifier, "status": "new", "type": "market", "order_class": "bracket", "qty": 10.0,
        "limit_price": None, "stop_price": None,
        "legs": [{"id": tp.identifier, "type": "limit", "limit_price": 110.0, "stop_price": None, "status": "new"},
                 {"id": sl.identifier, "type": "stop", "limit_price": None, "stop_price": 95.0, "status": "new"}]}


def test_oco_submit_registers_target_and_stop_legs():
    st = StandIn()
    result = BacktestVenue(st).submit(OcoOrder("AAPL", 7, Decimal("120"), Decimal("90"), "cid-oco"), "protect")
    sent = st.submitted[0]
    tp, sl = sent.child_orders
    assert st.ledger.roles[sent.identifier] == "protect"
    assert st.ledger.roles[tp.identifier] == "target"
    assert st.ledger.roles[sl.identifier] == "stop"
    assert result.response["order_class"] == "oco"
    assert result.response["qty"] == 7.0
    assert [leg["type"] for leg in result.response["legs"]] == ["limit", "stop"]


def test_simple_limit_submit_has_no_legs():
    st = StandIn()
    result = BacktestVenue(st).submit(LimitOrder("MSFT", 3, "sell", Decimal("401.5"), "cid-lim"), "trim")
    sent = st.submitted[0]
    assert st.ledger.roles == {sent.identifier: "trim"}
    assert result.response == {"id": sent.identifier, "status": "new", "type": "limit", "order_class": "simple",
                               "qty": 3.0, "limit_price": 401.5, "stop_price": None, "legs": []}


def test_position_is_flat_when_lumibot_has_none():
    assert BacktestVenue(StandIn()).position("AAPL") == BrokerPosition(0.0, 0.0)


def test_position_less_what_open_sells_hold_one_leg_per_group():
    st = StandIn({"AAPL": 20, "MSFT": 4})
    st.open = [
        resting("AAPL", 6, "sell", parent="grp1", identifier="grp1-tp"),  # one OCO group: counted once,
        resting("AAPL", 4, "sell", order_type="stop", parent="grp1", identifier="grp1-sl"),  # at its largest leg
        resting("AAPL", 0.5, "sell", identifier="lone"),  # a simple sell holds what it sells
        resting("AAPL", 3, "buy", identifier="buy"),  # buys hold no shares
        resting("MSFT", 4, "sell", identifier="other-symbol"),
    ]
    assert BacktestVenue(st).position("AAPL") == BrokerPosition(20.0, 13.5)
    assert BacktestVenue(st).position("MSFT") == BrokerPosition(4.0, 0.0)


def test_position_counts_bracket_legs_not_their_parent():
    st = StandIn({"AAPL": 10})
    venue = BacktestVenue(st)
    venue.submit(OcoOrder("AAPL", 10, Decimal("120"), Decimal("90"), "cid-oco"), "protect")
    # the backtesting broker lists the legs with their parent's id: one group, counted once at its largest leg
    parent = st.open[0]
    assert parent.child_orders
    st.open = [*parent.child_orders]
    for child in st.open:
        child.parent_identifier = parent.identifier
    assert venue.position("AAPL") == BrokerPosition(10.0, 0.0)
    st.open = [parent]  # a parent with legs is not counted itself
    assert venue.position("AAPL") == BrokerPosition(10.0, 10.0)


def test_position_counts_sell_to_close_legs():
    st = StandIn({"AAPL": 10})
    st.open = [resting("AAPL", 10, "sell_to_close", order_type="stop", identifier="sl")]
    assert BacktestVenue(st).position("AAPL") == BrokerPosition(10.0, 0.0)


def test_move_stop_modifies_the_open_leg():
    st = StandIn()
    leg = resting("AAPL", 10, "sell", order_type="stop", identifier="sl-1")
    other = resting("AAPL", 10, "sell", order_type="stop", identifier="sl-2")
    st.open = [other, leg]
    result = BacktestVenue(st).move_stop(StopUpdate("AAPL", "sl-1", Decimal("97.25"), "cid-move"))
    assert st.modified == [(leg, {"stop_price": 97.25})]
    assert isinstance(st.modified[0][1]["stop_price"], float)
    assert result.ok is True
    assert result.broker_id == "sl-1"
    assert result.status == "replaced"
    assert result.response["id"] == "sl-1"
    assert result.response["stop_price"] == 97.25


def test_move_stop_of_a_leg_no_longer_open_changes_nothing():
    st = StandIn()
    st.open = [resting("AAPL", 10, "sell", order_type="stop", identifier="sl-2")]
    result = BacktestVenue(st).move_stop(StopUpdate("AAPL", "sl-1", Decimal("97"), "cid-move"))
    assert result.ok is False
    assert result.note == "stop leg sl-1 is no longer open"
    assert st.modified == []


@pytest.mark.parametrize(("raw", "text"), [(LumiOrder.OrderClass.BRACKET, "bracket"), ("limit", "limit"),
                                           (None, ""), ("", "")])
def test_value_reads_enums_and_strings(raw, text):
    assert _value(raw) == text


def test_answer_of_an_order_without_legs_attribute():
    o = SimpleNamespace(identifier="x", status="filled", order_type="market", order_class=None, quantity=2,
                        limit_price=None, stop_price=None, child_orders=None)
    assert _lumibot_answer(o) == {"id": "x", "status": "filled", "type": "market", "order_class": "", "qty": 2.0,
                                  "limit_price": None, "stop_price": None, "legs": []}
