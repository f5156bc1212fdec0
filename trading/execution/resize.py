"""Sales sized from the broker's position as it is once the cancels are confirmed, not as it was planned.

An intent that cancels a position's legs and then sells (trim, partial, time exit, software stop, hedge
unwind, flatten) was planned from a snapshot taken before the cancel. A leg can fill in between (the
stop triggers, the take-profit fills): Alpaca then answers the cancel "already filled" and the planned
sale would sell shares that are gone, opening an unprotected short. So after the cancels the executor
reads the position again and this function refits the orders to it:
- a long is never sold below zero: a sale takes at most the shares available (not held by other
  orders), a full exit sells exactly what is there, a flat position sells nothing;
- a short is only ever bought back (flatten, cover), never added to, and a covered one buys nothing;
- the OCO that re-protects what a trim or partial keeps covers the whole shares actually left.
"""

import math
from dataclasses import dataclass, replace

from trading.intents import Intent, IntentKind
from trading.orders import LimitOrder, MarketOrder, OcoOrder, Order

FULL_EXITS = (IntentKind.EXIT, IntentKind.TIME_EXIT, IntentKind.MODEL_EXIT, IntentKind.UNHEDGE, IntentKind.FLATTEN)
DUST = 1e-9


@dataclass(frozen=True)
class BrokerPosition:
    """One symbol at the broker: `qty` signed (negative for a short), `available` not held by open orders."""

    qty: float
    available: float

    @classmethod
    def flat(cls) -> "BrokerPosition":
        return cls(0.0, 0.0)


def changes_position(intent: Intent) -> bool:
    """Intents whose orders close shares (and so must be refitted after a fresh read)."""
    return any(isinstance(o, MarketOrder | LimitOrder | OcoOrder) for o in intent.orders) and not intent.opens_exposure


def fit_to_position(intent: Intent, pos: BrokerPosition) -> tuple[tuple[Order, ...], str]:
    """The intent's orders refitted to `pos`, and a note when anything changed (empty when nothing did)."""
    sale = next((o for o in intent.orders if isinstance(o, MarketOrder | LimitOrder)), None)
    oco = next((o for o in intent.orders if isinstance(o, OcoOrder)), None)
    if sale is not None and sale.side == "buy":  # buying back a short
        if pos.qty >= -DUST:
            return (), f"no short left to buy back (position {pos.qty:g})"
        return _resized(sale, -pos.qty, (), "buy back")
    if pos.qty <= DUST:
        return (), f"nothing left to sell: the position is {'flat' if abs(pos.qty) <= DUST else f'{pos.qty:g}'}"
    free = max(min(pos.available, pos.qty), 0.0)
    if sale is None:  # a bare OCO (protect): only the whole shares not already held
        if oco is None:
            return intent.orders, ""
        whole = math.floor(free + DUST)
        if whole < 1:
            return (), f"no free whole share to protect ({free:g} of {pos.qty:g} available)"
        if whole == oco.qty:
            return intent.orders, ""
        return (replace(oco, qty=whole),), f"protect {whole} sh (planned {oco.qty}; the broker holds {pos.qty:g})"
    if free <= DUST:
        return (), f"no shares available to sell ({pos.qty:g} held, all held by other orders)"
    want = free if intent.kind in FULL_EXITS else min(float(sale.qty), free)
    orders, note = _resized(sale, want, (), "sell")
    if not orders:
        return (), note
    keep = math.floor(free - float(orders[0].qty) + DUST)
    if oco is not None and keep >= 1:
        orders += (replace(oco, qty=keep),) if keep != oco.qty else (oco,)
        if keep != oco.qty:
            note = _join(note, f"re-protect {keep} sh (planned {oco.qty})")
    elif oco is not None:
        note = _join(note, "no whole share left to re-protect")
    return orders, note


def _resized(order: MarketOrder | LimitOrder, qty: float, rest: tuple, verb: str) -> tuple[tuple[Order, ...], str]:
    """`order` for `qty` shares (whole shares for a limit order), or nothing when none are left."""
    q = math.floor(qty + DUST) if isinstance(order, LimitOrder) else round(qty, 9)
    if q <= DUST:
        return (), f"less than one share to {verb} ({qty:g})"
    q = int(q) if float(q).is_integer() else q
    if q == order.qty:
        return (order, *rest), ""
    return (replace(order, qty=q), *rest), f"{verb} {q:g} sh, not the planned {order.qty:g} (the broker's position)"


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
