"""What the account's open orders hold (shares, buying power) and what its positions are worth.

A mixin of engine.Engine (it reads `orders`, `positions`, `cash`, `settings` and the order-group helpers).
An order waiting for its replacement (`pending_replace`) holds the larger of itself and its pending
replacement (A13: "buying power reserves the larger of the old and new order"); the replacement itself
(`pending_new`, `replaces` set) holds nothing of its own until the replace resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import rules

if TYPE_CHECKING:
    from .orders import OrderRec


@dataclass
class Position:
    qty: float
    avg_entry_price: float


class Accounting:
    def _twin(self, o: OrderRec) -> OrderRec | None:
        """The pending replacement of an order in pending_replace, else None."""
        return self.orders.get(o.replacement) if o.replacement and o.status == "pending_replace" else None

    @staticmethod
    def _is_pending_replacement(o: OrderRec) -> bool:
        return o.status == "pending_new" and o.replaces is not None

    def _est_remaining(self, o: OrderRec) -> float:
        if o.qty is not None:
            return o.remaining
        mark = self.mark(o.symbol) or 0.0
        return max(0.0, (o.notional - o.filled_value) / mark) if mark else 0.0

    def _held_qty(self, o: OrderRec) -> float:
        twin = self._twin(o)
        own = self._est_remaining(o)
        return max(own, self._est_remaining(twin)) if twin is not None else own

    def held_for_orders(self, symbol: str, side: str, exclude_id: str | None = None) -> tuple[float, list[str]]:
        """Shares held by open orders on `side` that close the position (simple orders, live exit legs)."""
        held, related, seen_groups = 0.0, [], set()
        excluded = self.orders.get(exclude_id) if exclude_id else None
        skip_group = excluded.group if excluded is not None else None
        for o in self.open_orders(symbol):
            if o.side != side or o.id == exclude_id or o.role == "entry" or self._is_pending_replacement(o):
                continue
            if o.group and o.group == skip_group:
                continue
            if o.role == "simple":
                held += self._held_qty(o)
                related.append(o.id)
                continue
            entry = self.entry_of(o)
            if (entry is not None and entry.status != "filled") or o.group in seen_groups:
                continue
            seen_groups.add(o.group)
            legs = [m for m in self.group_members(o) if m.is_open and m.side == side]
            held += max(self._held_qty(m) for m in legs)
            related.extend(m.id for m in legs)
        return round(held, 9), related

    def _order_cost(self, o: OrderRec) -> float:
        notional = (o.notional - o.filled_value) if o.notional is not None and o.side == "buy" else None
        return rules.order_cost(o.side, o.type, o.remaining, o.limit_price, o.stop_price, self.mark(o.symbol),
                                notional)

    def _reserved(self) -> float:
        total = 0.0
        for o in self.open_orders():
            if o.role not in ("simple", "entry") or self._is_pending_replacement(o):
                continue
            pos = self.position_qty(o.symbol)
            opening = (o.side == "buy" and pos >= 0) or (o.side == "sell" and pos <= 0)
            if opening:
                twin = self._twin(o)
                cost = self._order_cost(o)
                total += max(cost, self._order_cost(twin)) if twin is not None else cost
        return total

    def market_values(self) -> tuple[float, float]:
        lmv = smv = 0.0
        for sym, p in self.positions.items():
            px = self.mark(sym) or p.avg_entry_price
            if p.qty > 0:
                lmv += p.qty * px
            else:
                smv += p.qty * px
        return lmv, smv

    def equity(self) -> float:
        lmv, smv = self.market_values()
        return self.cash + lmv + smv

    def multiplier(self) -> int:
        if self.settings.multiplier is not None:
            return int(self.settings.multiplier)
        return 2 if self.equity() >= 2000 else 1

    def base_buying_power(self) -> float:
        lmv, smv = self.market_values()
        mult = self.multiplier()
        if mult <= 1:
            return max(self.cash, 0.0)
        initial_margin = 0.5 * lmv + 0.5 * abs(smv)
        return max(self.equity() - initial_margin, 0.0) * mult

    def buying_power(self) -> float:
        return max(self.base_buying_power() - self._reserved(), 0.0)

    def apply_fill(self, symbol: str, side: str, qty: float, px: float) -> None:
        signed = qty if side == "buy" else -qty
        self.cash -= signed * px
        p = self.positions.get(symbol)
        if p is None:
            self.positions[symbol] = Position(round(signed, 9), px)
            return
        new_qty = round(p.qty + signed, 9)
        if abs(new_qty) < 1e-9:
            del self.positions[symbol]
        elif p.qty == 0 or (p.qty > 0) == (signed > 0):
            p.avg_entry_price = (abs(p.qty) * p.avg_entry_price + qty * px) / abs(new_qty)
            p.qty = new_qty
        elif (p.qty > 0) != (new_qty > 0):
            p.qty, p.avg_entry_price = new_qty, px
        else:
            p.qty = new_qty
