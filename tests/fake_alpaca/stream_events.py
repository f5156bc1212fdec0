"""The messages of the two websocket streams, built from the engine's state (streams.py sends them).

trade_updates (reference alpaca-streams.md A3, D5): {"stream": "trade_updates", "data": {"event", "timestamp",
"order", ...}}. `order` is the REST order JSON (legs nested for a bracket/OCO parent, as GET ?nested=true shows
it), so it satisfies alpaca-py's Order model; a fill adds execution_id (a fresh UUID), price and qty of that one
execution and position_qty after it, all as strings like Alpaca's docs. Timestamps come from the simulated clock.

Market data (B3, B4): arrays of maps with T and S; `t` stays a tz-aware datetime until encoding, which makes it a
msgpack Timestamp (alpaca-py calls t.to_datetime() on every data point) or an RFC 3339 string in JSON mode.
Every field the alpaca-py models require is present (trades S t p s, quotes S t bp bs ap as, bars S o h l c v t
n vw), with the exchange letter "V" (IEX) from alpaca-py's Exchange enum.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgpack

from .values import fmt_num, from_ns, iso_utc

if TYPE_CHECKING:
    from .engine import Engine
    from .marketdata import MarketData
    from .orders import OrderRec

PENDING_EVENTS = frozenset({"pending_new", "pending_cancel", "pending_replace"})
DATA_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
CHANNEL_OF = {"t": "trades", "q": "quotes", "b": "bars", "u": "updatedBars", "d": "dailyBars", "s": "statuses"}
ERRORS = {400: "invalid syntax", 401: "not authenticated", 402: "auth failed", 403: "already authenticated",
          404: "auth timeout", 405: "symbol limit exceeded", 406: "connection limit exceeded",
          410: "invalid subscribe action for this feed"}


# ---------------------------------------------------------------------------------------------- trade_updates
def trade_update(engine: Engine, event: str, o: OrderRec, fill: tuple[float, float] | None) -> dict:
    """One trade_updates message as of now; fill = (price, qty) of the execution that caused it."""
    data = {"event": event, "timestamp": iso_utc(engine.now), "order": engine.render(o, nested=True)}
    if fill is not None:
        px, qty = fill
        data.update(execution_id=str(uuid.uuid4()), price=fmt_num(px), qty=fmt_num(qty),
                    position_qty=fmt_num(engine.position_qty(o.symbol)))
    return {"stream": "trade_updates", "data": data}


def releasable(outbox: list[tuple], unsent: set[int]) -> list[dict]:
    """Pop the leading events whose request has been answered (tag None: a clock move or a test call). One event
    still waiting for its response holds back every later one, so all events keep the engine's order."""
    n = 0
    while n < len(outbox) and outbox[n][0] not in unsent:
        n += 1
    msgs = [m for _, m in outbox[:n]]
    del outbox[:n]
    return msgs


# ---------------------------------------------------------------------------------------------- market data
def trade_msg(sym: str, t: datetime, price: float, size: float, trade_id: int) -> dict:
    return {"T": "t", "S": sym, "i": trade_id, "x": "V", "p": price, "s": size, "c": ["@"], "t": t, "z": "C"}


def quote_msg(sym: str, t: datetime, price: float) -> dict:
    """The REST latest quote's shape: one cent either side of the last trade."""
    return {"T": "q", "S": sym, "bx": "V", "bp": round(price - 0.01, 4), "bs": 1, "ax": "V",
            "ap": round(price + 0.01, 4), "as": 1, "c": ["R"], "t": t, "z": "C"}


def bar_msg(sym: str, row: dict) -> dict:
    """A scripted bar as a `b` message, labelled with its start like Alpaca's minute bars."""
    return {"T": "b", "S": sym, "o": row["o"], "h": row["h"], "l": row["l"], "c": row["c"], "v": row["v"],
            "t": from_ns(row["t"]), "n": int(row["n"]), "vw": round(float(row["vw"]), 6)}


def subscription_msg(subs: dict[str, set[str]]) -> dict:
    """The full current set after every (un)subscribe; corrections and cancelErrors mirror trades."""
    body = {c: sorted(subs[c]) for c in DATA_CHANNELS}
    return {"T": "subscription", **body, "corrections": body["trades"], "cancelErrors": body["trades"]}


def error_msg(code: int) -> list[dict]:
    return [{"T": "error", "code": code, "msg": ERRORS[code]}]


def _symbols(engine: Engine, subs: frozenset[str]) -> list[str]:
    """Subscribed symbols the fake has bars for; "*" means all of them."""
    if "*" in subs:
        return sorted(engine.series)
    return sorted(s for s in subs if s in engine.series)


def clock_data(engine: Engine, md: MarketData, subs: dict[str, frozenset[str]], old_ns: int,
               trade_ids: Iterator[int]) -> list[dict]:
    """What the data stream sends when the clock moved forward from old_ns to now: the bars that ended in between
    (for bar subscribers, up to the data API's cutoff), then one trade and one quote at the new time per
    subscribed symbol at the price REST's latest trade gives now. A halted symbol prints nothing."""
    now, new_ns = engine.now, engine.now_ns
    out: list[dict] = []
    for sym in _symbols(engine, subs["bars"]):
        s = engine.series[sym]
        last = s.last_ended(min(new_ns, md.cutoff(sym)))
        out.extend(bar_msg(sym, s.row(i)) for i in range(s.last_ended(old_ns) + 1, last + 1))
    for channel in ("trades", "quotes"):
        for sym in _symbols(engine, subs[channel]):
            last_trade = md.last_trade(sym) if engine.halted_since(sym) is None else None
            if last_trade is None:
                continue
            price = last_trade[1]
            out.append(trade_msg(sym, now, price, 100, next(trade_ids)) if channel == "trades"
                       else quote_msg(sym, now, price))
    return out


# ---------------------------------------------------------------------------------------------- encoding
def _rfc3339(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    raise TypeError(f"not JSON serializable: {value!r}")


def encode_data(obj, as_msgpack: bool) -> bytes | str:
    """msgpack as a binary frame (datetimes -> Timestamp extension), else JSON as a text frame."""
    if as_msgpack:
        return msgpack.packb(obj, datetime=True)
    return json.dumps(obj, default=_rfc3339)


def decode_data(raw: bytes | str, as_msgpack: bool):
    """A client frame; ValueError/TypeError for garbage (the caller answers 400)."""
    if as_msgpack:
        return msgpack.unpackb(raw)
    return json.loads(raw)


def encode_trading(msg: dict) -> bytes:
    """JSON in a binary frame, as the real paper trade_updates stream sends it (json.loads takes bytes)."""
    return json.dumps(msg).encode()
