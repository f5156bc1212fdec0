"""The deterministic matching engine.

When a new order's first match comes due (pending.py: a server step after the POST, never inside it unless
Settings.fill_delay_steps is 0) and the market is open: market orders fill at the mark; marketable limits fill at
the mark (the limit or better); stops already through their stop fill at the mark; at most
Settings.max_volume_fraction of the current bar's volume per step. When the clock moves, events between the old and the
new time are processed in time order: at equal times first the range of bars that end then, then expiries, then
session opens, then the opens of bars that start then. Per bar: first the open (gaps fill at the open price),
then the range (limits fill at the limit, stops at the stop; when a range reaches both legs of a bracket the stop
is taken first, the pessimistic reading). Market orders queued while closed fill at the open of the first bar
in the session. Halted symbols do not fill.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .orders import OrderRec
from .values import to_ns

if TYPE_CHECKING:
    from .engine import Engine

WORKING = ("accepted", "new", "partially_filled", "held")
RANGE, EXPIRE, SESSION, OPEN = 0, 1, 2, 3


def _working(engine: Engine, symbol: str) -> list[OrderRec]:
    return sorted((o for o in engine.open_orders(symbol) if o.active and o.status in WORKING), key=lambda o: o.seq)


# ---------------------------------------------------------------------------------------------- fills
def fill(engine: Engine, o: OrderRec, px: float, key: tuple, cap: float | None = None) -> None:
    """Fill the remaining quantity at px; `cap` limits the shares of this one fill (the volume cap)."""
    t = engine.now
    if o.qty is None:  # notional: the quantity is set by the fill price
        qty_total = round((o.notional - o.filled_value) / px, 9) + o.filled_qty
        o_remaining = round(qty_total - o.filled_qty, 9)
    else:
        o_remaining = o.remaining
    q = o_remaining
    if o.partial_fraction is not None:
        f = o.partial_fraction
        o.partial_fraction = None
        if o.qty is not None and float(o.qty).is_integer():
            q = float(max(1, math.floor(o_remaining * f)))
        else:
            q = round(o_remaining * f, 9)
        if q >= o_remaining - 1e-9:
            q = o_remaining
        o.eligible_after = key
    if cap is not None and q > cap:
        whole = o.qty is not None and float(o.qty).is_integer()
        q = float(max(1, math.floor(cap))) if whole else round(cap, 9)
        q = min(q, o_remaining)
    if q <= 0:
        return
    o.filled_qty = round(o.filled_qty + q, 9)
    o.filled_value += q * px
    o.filled_at = o.updated_at = t
    done = q >= o_remaining - 1e-9
    o.status = "filled" if done else "partially_filled"
    engine.apply_fill(o.symbol, o.side, q, px)
    engine.emit("fill" if done else "partial_fill", o, fill=(px, q))  # before the legs and siblings react
    if o.role in ("tp",) and not done:
        sib = engine.sibling_of(o)
        if sib is not None and sib.is_open:
            sib.qty = o.remaining
    if done:
        _after_fill(engine, o, key)


def _after_fill(engine: Engine, o: OrderRec, key: tuple) -> None:
    t = engine.now
    if o.role == "entry":
        for leg in engine.legs_of(o):
            if not leg.is_open:
                continue
            leg.active = True
            leg.eligible_after = key
            leg.qty = o.filled_qty
            if leg.role == "sl" and o.reject_leg:
                engine.set_status(leg, "rejected", t)
            elif leg.role == "tp":
                engine.set_status(leg, "new", t)
            if leg.type == "trailing_stop":
                leg.hwm = engine.mark(leg.symbol)
    elif o.role in ("tp", "oco_tp", "sl", "oco_sl"):
        sib = engine.sibling_of(o)
        if sib is not None and sib.is_open:
            engine.set_status(sib, "canceled" if o.role in ("tp", "oco_tp") else "replaced", t)


def match_now(engine: Engine, o: OrderRec, key: tuple, cap: float | None = None) -> None:
    """Matching against the mark when a new order's first match comes due (pending.py), market open, not halted."""
    if not (o.is_open and o.active and o.status in ("new", "partially_filled", "held")):
        return
    if o.status == "held" and o.role not in ("sl", "oco_sl"):
        return
    if not engine.tradable_now(o):
        return
    px = engine.mark(o.symbol)
    if px is not None and o.time_in_force != "cls":
        if o.type == "trailing_stop" and o.hwm is None:
            o.hwm = px
        elif o.type != "trailing_stop":
            _at_price(engine, o, px, key, cap)
    unfilled = o.status == "new" or (o.status == "partially_filled" and o.time_in_force == "fok")
    if o.time_in_force in ("ioc", "fok") and unfilled:
        engine.set_status(o, "canceled")
    for leg in engine.legs_of(o) if o.role == "entry" and o.status == "filled" else []:
        match_now(engine, leg, key)


def _at_price(engine: Engine, o: OrderRec, px: float, key: tuple, cap: float | None = None) -> None:
    """Fill at a single price (the mark when the first match is due, or a bar's open), if marketable there."""
    buy = o.side == "buy"
    if o.type == "market":
        fill(engine, o, px, key, cap)
    elif o.type == "limit":
        if (buy and px <= o.limit_price) or (not buy and px >= o.limit_price):
            fill(engine, o, px, key, cap)
    elif o.type == "stop":
        if (buy and px >= o.stop_price) or (not buy and px <= o.stop_price):
            fill(engine, o, px, key, cap)
    elif o.type == "stop_limit":
        if not o.triggered and ((buy and px >= o.stop_price) or (not buy and px <= o.stop_price)):
            o.triggered = True
        if o.triggered and ((buy and px <= o.limit_price) or (not buy and px >= o.limit_price)):
            fill(engine, o, px, key, cap)
    elif o.type == "trailing_stop":
        stop = o.current_stop()
        if stop is not None and ((buy and px >= stop) or (not buy and px <= stop)):
            fill(engine, o, px, key, cap)
        else:
            o.hwm = px if o.hwm is None else (min(o.hwm, px) if buy else max(o.hwm, px))


def _in_range(engine: Engine, o: OrderRec, lo: float, hi: float, key: tuple) -> None:
    """Fill inside a bar's range: limits at the limit, stops at the stop."""
    buy = o.side == "buy"
    if o.type == "limit":
        if (buy and lo <= o.limit_price) or (not buy and hi >= o.limit_price):
            fill(engine, o, o.limit_price, key)
    elif o.type == "stop":
        if (buy and hi >= o.stop_price) or (not buy and lo <= o.stop_price):
            fill(engine, o, o.stop_price, key)
    elif o.type == "stop_limit":
        s, lim = o.stop_price, o.limit_price
        if not o.triggered:
            if not ((buy and hi >= s) or (not buy and lo <= s)):
                return
            o.triggered = True
            px = s if ((not buy and s >= lim) or (buy and s <= lim)) else lim
        else:
            px = lim
        if lo <= px <= hi and ((buy and px <= lim) or (not buy and px >= lim)):
            fill(engine, o, px, key)
    elif o.type == "trailing_stop":
        stop = o.current_stop()
        if stop is not None and ((buy and hi >= stop) or (not buy and lo <= stop)):
            fill(engine, o, stop, key)
        elif o.hwm is not None:
            o.hwm = min(o.hwm, lo) if buy else max(o.hwm, hi)


# ---------------------------------------------------------------------------------------------- clock
def advance(engine: Engine, new_now) -> None:
    """Move the clock to new_now, processing every event in (now, new_now]. Moving back processes nothing."""
    old = engine.now
    if new_now <= old:
        engine.now = new_now
        return
    old_ns, new_ns = to_ns(old), to_ns(new_now)
    events: list[tuple] = []
    open_orders = engine.open_orders()
    for sym in sorted({o.symbol for o in open_orders}):
        s = engine.series.get(sym)
        if s is None or not len(s):
            continue
        lo, hi = np.searchsorted(s.start, [old_ns, new_ns], side="right")
        events.extend((int(s.start[i]), OPEN, sym, int(i)) for i in range(lo, hi))
        lo, hi = np.searchsorted(s.end, [old_ns, new_ns], side="right")
        events.extend((int(s.end[i]), RANGE, sym, int(i)) for i in range(lo, hi))
    for o in open_orders:
        if o.expires_at is not None and old_ns < to_ns(o.expires_at) <= new_ns:
            events.append((to_ns(o.expires_at), EXPIRE, o.symbol, o.seq))
    if engine.market_is_open is None:
        events.extend((to_ns(t), SESSION, "", 0) for t in engine.sessions.opens_between(old, new_now))
    events.sort()
    by_seq = {o.seq: o for o in open_orders}
    for ev in events:
        engine.now = engine.time_of(ev[0])
        kind = ev[1]
        if kind == EXPIRE:
            _expire(engine, by_seq[ev[3]])
        elif kind == SESSION:
            _session_open(engine)
        elif engine.halted_since(ev[2]) is None:
            _bar_event(engine, ev)
    engine.now = new_now


def _expire(engine: Engine, o: OrderRec) -> None:
    if not o.is_open:
        return
    engine.set_status(o, "expired")
    if o.role == "entry":
        for leg in engine.legs_of(o):
            if leg.is_open:
                engine.set_status(leg, "canceled")


def _session_open(engine: Engine) -> None:
    for o in engine.open_orders():
        if o.status == "accepted" and o.active:
            engine.set_status(o, "new")
            if o.type == "trailing_stop" and o.hwm is None:
                o.hwm = engine.mark(o.symbol)


def _bar_event(engine: Engine, ev: tuple) -> None:
    _, kind, sym, i = ev
    s = engine.series[sym]
    start, end = engine.time_of(int(s.start[i])), engine.time_of(int(s.end[i]))
    open_live = engine.is_open_at(start)
    in_session = open_live if kind == OPEN else open_live or engine.is_open_at(engine.time_of(int(s.end[i]) - 1000))
    extended = engine.sessions.extended_window(start)
    orders = _working(engine, sym)
    if kind == RANGE:  # stops before limits: the pessimistic order inside one bar
        orders.sort(key=lambda o: (0 if o.type in ("stop", "stop_limit", "trailing_stop") else 1, o.seq))
    for o in orders:
        if not (o.is_open and o.active and o.status in WORKING) or (o.eligible_after and ev <= o.eligible_after):
            continue
        if not (in_session or (o.extended_hours and extended)):
            continue
        if o.status == "held" and o.role not in ("sl", "oco_sl"):
            continue
        if kind == OPEN:
            if o.status == "accepted":
                engine.set_status(o, "new")
            if o.time_in_force == "cls":
                continue
            _at_price(engine, o, float(s.open[i]), ev)
            if o.is_open and o.time_in_force in ("opg", "ioc", "fok"):
                engine.set_status(o, "canceled")
        else:
            if o.status == "accepted" or (o.type == "market" and o.time_in_force != "cls"):
                continue
            if o.time_in_force == "cls":
                session = engine.sessions.session_at(start)
                if session is not None and session[1] == end:
                    fill(engine, o, float(s.close[i]), ev)
                continue
            _in_range(engine, o, float(s.low[i]), float(s.high[i]), ev)


def trade_at(engine: Engine, sym: str, px: float) -> None:
    """A trade printed at px now (FakeAlpaca.push_trade): working orders it makes marketable fill at px and stops
    it reaches trigger, as at a bar's open. Orders whose first match is still queued (pending.py) have not reached
    the exchange yet and wait for it."""
    key = (engine.now_ns, 100, "", engine.next_seq())  # after this instant's earlier events and earlier pushes
    queued = {a.order_id for a in engine.pending.actions if a.kind == "match"}
    for o in _working(engine, sym):
        if not (o.is_open and o.active and o.status in WORKING) or (o.eligible_after and key <= o.eligible_after):
            continue
        if o.id in queued or o.status == "accepted" or o.time_in_force == "cls" or not engine.tradable_now(o):
            continue
        if o.status == "held" and o.role not in ("sl", "oco_sl"):
            continue
        _at_price(engine, o, px, key)
