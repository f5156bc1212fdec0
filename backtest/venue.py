"""The backtest venue: positions and orders from Lumibot's backtesting broker, indicators from the book
computed once per series, fills from Lumibot's callbacks, cancels at once."""

from strategies.lumibot_orders import to_lumibot
from trading.execution.resize import BrokerPosition
from trading.execution.venue import Submitted
from trading.execution.venue import enum_value as _value
from trading.orders import StopUpdate
from trading.snapshot import Snapshot


class BacktestVenue:
    live = False

    def __init__(self, strategy, costs=None):
        self.st = strategy
        if costs is not None:  # slippage on the backtester's market and stop fills (backtest/costs.py)
            costs.install(strategy.broker)

    def snapshot(self, now) -> Snapshot:
        return self.st.snapshot_from_lumibot(now)

    def sync_fills(self, now) -> list[str]:
        return []  # Lumibot's on_filled_order callbacks feed the ledger

    def cancel(self, order_ids: tuple[str, ...]) -> bool:
        wanted = set(order_ids)
        for o in self.st.open_lumibot_orders():
            if o.identifier in wanted:
                self.st.cancel_order(o)
        return True  # the backtester cancels at once

    def submit(self, order, role: str) -> Submitted:
        submitted = self.st.submit_order(to_lumibot(self.st, order))
        if submitted is None:
            return Submitted(False, note="the backtesting broker refused it")
        self.st.ledger.register(submitted.identifier, role)
        for child in submitted.child_orders or ():  # legs do not always carry their parent id
            self.st.ledger.register(child.identifier, "target" if _value(child.order_type) == "limit" else "stop")
        return Submitted(True, submitted.identifier, _value(submitted.status), lumibot_order=submitted,
                         response=_lumibot_answer(submitted))

    def position(self, symbol: str) -> BrokerPosition:
        """Lumibot's position, less what its open sell orders hold (one leg per bracket/OCO group)."""
        pos = self.st.get_position(symbol)
        qty = float(pos.quantity) if pos is not None else 0.0
        held: dict[str, float] = {}
        for o in self.st.open_lumibot_orders():
            if o.asset.symbol == symbol and _value(o.side).startswith("sell") and not o.child_orders:
                key = o.parent_identifier or o.identifier
                held[key] = max(held.get(key, 0.0), float(o.quantity))
        return BrokerPosition(qty, qty - sum(held.values()))

    def move_stop(self, update: StopUpdate) -> Submitted:
        target = next((o for o in self.st.open_lumibot_orders() if o.identifier == update.order_id), None)
        if target is None:
            return Submitted(False, note=f"stop leg {update.order_id} is no longer open")
        self.st.modify_order(target, stop_price=float(update.stop_price))
        return Submitted(True, update.order_id, "replaced", response=_lumibot_answer(target))


def _lumibot_answer(order) -> dict:
    """The backtesting broker's order: its id, status and legs."""
    legs = [{"id": c.identifier, "type": _value(c.order_type), "limit_price": c.limit_price,
             "stop_price": c.stop_price, "status": _value(c.status)} for c in order.child_orders or ()]
    return {"id": order.identifier, "status": _value(order.status), "type": _value(order.order_type),
            "order_class": _value(order.order_class), "qty": float(order.quantity),
            "limit_price": order.limit_price, "stop_price": order.stop_price, "legs": legs}
