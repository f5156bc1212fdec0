"""Lumibot's own books read as our snapshot: the positions and open orders the backtester (and Lumibot's broker
live) tracks. A mixin of CombinedStrategy; the backtest venue and the report read the snapshot through it."""

import math

from lumibot.entities import Asset
from lumibot.entities import Order as LumiOrder

from trading.execution.venue import enum_value as _value
from trading.snapshot import LOOKUP_COLUMNS, Holding, OpenOrder, Snapshot


class LumibotBooks:
    def snapshot_from_lumibot(self, now) -> Snapshot:
        market, lookups = self.book.as_of(now, lookups=True)
        holdings = {}
        for pos in self.get_positions():
            sym = pos.asset.symbol
            qty = float(pos.quantity)
            if qty == 0 or pos.asset.asset_type not in ("stock", Asset.AssetType.STOCK):
                continue
            cost = pos.avg_fill_price if pos.avg_fill_price else self.cost_basis.get(sym)
            holdings[sym] = Holding(sym, qty, float(cost) if cost else None)
        orders = tuple(o for o in (_open_order(x) for x in self.open_lumibot_orders()) if o is not None)
        missing = [s for s in holdings if s not in self.book.symbols]
        notes = tuple(f"{sym}: held but no price data" for sym in missing)
        for col in LOOKUP_COLUMNS:
            lookups[col].update(dict.fromkeys(missing, math.nan))
        return Snapshot(now=now, cash=float(self.get_cash()), portfolio_value=float(self.get_portfolio_value()),
                        holdings=holdings, open_orders=orders, market=market, notes=notes, lookups=lookups)

    def open_lumibot_orders(self) -> list[LumiOrder]:
        """Open orders only. Lumibot's broker keeps them in their own buckets; scanning every order ever
        tracked (get_orders) grows with the run. A filled bracket parent stays "active" while its legs
        rest, so filled and canceled orders are dropped: the legs are listed on their own."""
        active = getattr(self.broker, "get_active_tracked_orders", None)
        orders = active(strategy=self.name) if callable(active) else self.get_orders()
        return [o for o in orders if o.is_active() and not o.is_filled() and not o.is_canceled()]


def _open_order(o: LumiOrder) -> OpenOrder | None:
    order_class = _value(o.order_class) or "simple"
    if order_class == "oco" and o.child_orders:
        return None  # the OCO placeholder: its two legs are listed as orders of their own
    side = "buy" if _value(o.side).startswith("buy") else "sell"
    return OpenOrder(order_id=o.identifier, symbol=o.asset.symbol, side=side, order_type=_value(o.order_type),
                     qty=float(o.quantity), limit_price=_float(o.limit_price), stop_price=_float(o.stop_price),
                     order_class=order_class, parent_id=o.parent_identifier, client_order_id=o.tag or None)


def _float(x) -> float | None:
    return None if x is None else float(x)
