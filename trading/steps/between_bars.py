"""Between hourly iterations, a price from the stream for one held symbol: the checks that cannot wait an hour.

The same planners as the iteration, on a snapshot whose price for the symbol is the stream's: step 1
(protection: the software stop of a position without a server-side stop, the near-stop warning, an OCO for
unprotected shares, covering a short) and the exit policy's stop moves (breakeven, trailing). Time exits and
partial take-profits, trims, hedges and entries stay on the hourly iteration. The caller reviews the result
with the risk controller and carries it out through the executor, the one order path.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from trading.intents import Decision, IntentKind
from trading.order_ids import OrderIds
from trading.settings import Settings
from trading.snapshot import Snapshot
from trading.steps.exits import plan_exits
from trading.steps.planner import arbitrate
from trading.steps.protection import plan_protection

STREAM_KINDS = (IntentKind.EXIT, IntentKind.PROTECT, IntentKind.MOVE_STOP)


def with_price(snap: Snapshot, symbol: str, price: float, now: datetime) -> Snapshot:
    """The snapshot with the symbol's last price replaced (indicators stay those of the last completed bar)."""
    market = snap.market.copy()
    if symbol in market.index:
        market.loc[symbol, "close"] = price
        if "high" in market:
            market.loc[symbol, "high"] = max(float(market.loc[symbol, "high"]), price)
    else:
        market.loc[symbol, "close"] = price
    return dataclasses.replace(snap, market=market, now=now, notes=(), lookups=None)


def plan_between_bars(snap: Snapshot, s: Settings, trades: dict, ids: OrderIds, symbol: str) -> list[Decision]:
    """Decisions for `symbol` only: those with an intent of the kinds the stream may act on, and warnings."""
    if symbol not in snap.holdings:
        return []
    if any(o.side == "sell" and o.parent_id is None and o.order_class == "simple" and not o.is_protective_stop
           for o in snap.orders_for(symbol)):
        return []  # an exit the iteration placed is working (a resting limit, a partial fill): let it finish
    protection = plan_protection(snap, s, ids)
    mine = [d for d in protection.decisions if d.symbol == symbol]
    lot = trades.get(symbol)
    # the exit policy without its hourly actions: a partial or time exit due would otherwise win the symbol's one
    # intent and hold back the stop move the stream is for (the iteration does them at the next bar)
    moves_only = dataclasses.replace(s, partial_at_r=0.0, time_exit_hours=0.0)
    exits = plan_exits(snap, moves_only, {symbol: lot}, protection.exiting, ids) if lot is not None else []
    decisions = arbitrate([*mine, *exits])
    out = []
    for d in decisions:
        if d.intent is not None and d.intent.kind in STREAM_KINDS:
            out.append(d)
        elif d.intent is None and d.level == "warning":
            out.append(d)
    return out
