"""Market Data API v2 (stocks) served from the scripted bars: bars with paging, latest trade/quote/bar, snapshots.

No bar whose end is after the clock is ever served. `stale_data` and `halt_symbol` faults move a symbol's cutoff
back. Errors are {"message": ...} like Alpaca's data API.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import TYPE_CHECKING

from .series import BarSeries, parse_timeframe
from .values import BadValue, from_ns, iso_utc, iso_utc_bar, parse_time, to_ns

if TYPE_CHECKING:
    from .engine import Engine

MAX_LIMIT = 10_000


def _err(status: int, message: str) -> tuple[int, dict]:
    return status, {"message": message}


def _num(x: float):
    return int(x) if float(x).is_integer() else round(float(x), 6)


def bar_json(row: dict) -> dict:
    return {"t": iso_utc_bar(from_ns(row["t"])), "o": _num(row["o"]), "h": _num(row["h"]), "l": _num(row["l"]),
            "c": _num(row["c"]), "v": _num(row["v"]), "n": int(row["n"]), "vw": round(float(row["vw"]), 6)}


class MarketData:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.max_page_size = MAX_LIMIT      # test knob: smaller pages force next_page_token paging
        self.enforce_sip_delay = False      # True: 403 for recent SIP data (Basic plan), as in the reference C

    # ------------------------------------------------------------------ visibility
    def cutoff(self, symbol: str) -> int:
        """Bars of `symbol` with end <= cutoff are visible to data clients."""
        e = self.engine
        cut = e.now_ns
        halt = e.halted_since(symbol)
        if halt is not None:
            cut = min(cut, to_ns(halt))
        stale = e.faults.stale_bars(symbol)
        s = e.series[symbol]
        if stale and len(s):
            i = s.last_ended(cut) - stale
            cut = int(s.end[i]) if i >= 0 else int(s.start[0]) - 1
        return cut

    def _symbols(self, query: dict) -> list[str] | None:
        raw = query.get("symbols") or ""
        syms = sorted({x.strip().upper() for x in raw.split(",") if x.strip()})
        return syms or None

    def handle(self, path: str, query: dict) -> tuple[int, dict]:
        route = {"/v2/stocks/bars": self.bars, "/v2/stocks/bars/latest": self.latest_bars,
                 "/v2/stocks/trades/latest": self.latest_trades, "/v2/stocks/quotes/latest": self.latest_quotes,
                 "/v2/stocks/snapshots": self.snapshots}.get(path.rstrip("/"))
        if route is None:
            return _err(404, "endpoint not found")
        syms = self._symbols(query)
        if syms is None:
            return _err(400, "missing symbols")
        return route([s for s in syms if s in self.engine.series], query)

    # ------------------------------------------------------------------ bars
    def bars(self, syms: list[str], query: dict) -> tuple[int, dict]:
        e = self.engine
        try:
            kind, tf_ns = parse_timeframe(query.get("timeframe", ""))
        except ValueError:
            return _err(400, "invalid timeframe")
        if kind in ("week", "month"):
            return _err(422, "the fake serves Min, Hour and Day timeframes only")
        try:
            limit = int(query.get("limit") or 1000)
            start = parse_time(query["start"]) if query.get("start") else e.now.replace(hour=0, minute=0, second=0,
                                                                                        microsecond=0)
            end = parse_time(query["end"], end_of_day=True) if query.get("end") else e.now
        except (ValueError, BadValue):
            return _err(400, "invalid limit, start or end")
        if not 1 <= limit <= MAX_LIMIT:
            return _err(422, "invalid limit: must be between 1 and 10000")
        if self.enforce_sip_delay and query.get("feed", "sip") == "sip" and end > e.now - timedelta(minutes=15):
            return _err(403, "subscription does not permit querying recent SIP data")
        desc = (query.get("sort") or "asc").lower() == "desc"
        lo, hi = to_ns(start), to_ns(end)
        rows: list[tuple[str, dict]] = []
        for sym in syms:
            got = e.series[sym].bars(kind, tf_ns, self.cutoff(sym), e.sessions) or []
            got = [r for r in got if lo <= r["t"] <= hi]
            if desc:
                got.reverse()
            rows.extend((sym, r) for r in got)
        token = query.get("page_token")
        if token:
            try:
                tsym, tt = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            except (ValueError, TypeError):
                return _err(400, "invalid page_token")
            rows = [(s, r) for s, r in rows if s > tsym or (s == tsym and (r["t"] < tt if desc else r["t"] > tt))]
        page = rows[:min(limit, self.max_page_size)]
        more = len(rows) > len(page)
        out: dict[str, list] = {}
        for sym, r in page:
            out.setdefault(sym, []).append(bar_json(r))
        next_token = None
        if more and page:
            last_sym, last = page[-1]
            next_token = base64.urlsafe_b64encode(json.dumps([last_sym, last["t"]]).encode()).decode()
        return 200, {"bars": out, "next_page_token": next_token}

    # ------------------------------------------------------------------ latest
    def _last(self, s: BarSeries, cut: int) -> tuple[int, float] | None:
        """(time ns, price) of the last trade visible at cut: the last bar's close, else the current bar's open."""
        i = s.last_ended(cut)
        if i >= 0:
            return int(s.end[i]), float(s.close[i])
        j = s.current(cut)
        return (int(s.start[j]), float(s.open[j])) if j >= 0 else None

    def last_trade(self, sym: str) -> tuple[int, float] | None:
        """(time ns, price) of the last trade: a push_trade price until the clock moves (not while halted), else
        the bars' (_last). The stream's trades and the engine's mark agree with this."""
        e = self.engine
        if sym in e.pushed and e.halted_since(sym) is None:
            return e.now_ns, e.pushed[sym][0]
        return self._last(e.series[sym], self.cutoff(sym))

    def trade_json(self, sym: str) -> dict | None:
        last = self.last_trade(sym)
        if last is None:
            return None
        t, p = last
        size = self.engine.pushed[sym][1] if sym in self.engine.pushed and t == self.engine.now_ns else 100
        return {"t": iso_utc(from_ns(t)), "x": "V", "p": _num(p), "s": size, "c": ["@"], "i": int(t // 1000) % 10**12,
                "z": "C"}

    def quote_json(self, sym: str) -> dict | None:
        last = self.last_trade(sym)
        if last is None:
            return None
        t, p = last
        return {"t": iso_utc(from_ns(t)), "ax": "V", "ap": round(p + 0.01, 4), "as": 1, "bx": "V",
                "bp": round(p - 0.01, 4), "bs": 1, "c": ["R"], "z": "C"}

    def latest_trades(self, syms: list[str], query: dict) -> tuple[int, dict]:
        got = {s: self.trade_json(s) for s in syms}
        return 200, {"trades": {s: v for s, v in got.items() if v is not None}}

    def latest_quotes(self, syms: list[str], query: dict) -> tuple[int, dict]:
        got = {s: self.quote_json(s) for s in syms}
        return 200, {"quotes": {s: v for s, v in got.items() if v is not None}}

    def _last_bar(self, sym: str) -> dict | None:
        s = self.engine.series[sym]
        i = s.last_ended(self.cutoff(sym))
        return bar_json(s.row(i)) if i >= 0 else None

    def latest_bars(self, syms: list[str], query: dict) -> tuple[int, dict]:
        got = {s: self._last_bar(s) for s in syms}
        return 200, {"bars": {s: v for s, v in got.items() if v is not None}}

    def snapshots(self, syms: list[str], query: dict) -> tuple[int, dict]:
        out = {}
        for sym in syms:
            trade = self.trade_json(sym)
            if trade is None:
                continue
            days = self.engine.series[sym].day_bars(self.cutoff(sym))
            out[sym] = {"latestTrade": trade, "latestQuote": self.quote_json(sym), "minuteBar": self._last_bar(sym),
                        "dailyBar": bar_json(days[-1]) if days else None,
                        "prevDailyBar": bar_json(days[-2]) if len(days) > 1 else None}
        return 200, out
