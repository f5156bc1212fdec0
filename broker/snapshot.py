"""The live snapshot, read straight from Alpaca (the source of truth), in the shape the planners use.

Holdings come from /v2/positions, open orders from /v2/orders?nested=true (bracket and OCO legs carry
their parent's id), indicators from one batched bars request over the rolling window (regular-session
bars that have ended), and the current price of each symbol from one latest-trades request.
"""

from datetime import datetime

import pandas as pd

from broker.gateway import AlpacaGateway
from broker.live_bars import LiveBars
from marketdata.sessions import in_extended_hours
from trading.execution.venue import enum_value as _value
from trading.indicators import IndicatorBook, market_frames
from trading.orders import Session
from trading.settings import Settings
from trading.snapshot import Holding, OpenOrder, Snapshot

NY = "America/New_York"


def _float(x) -> float | None:
    return None if x is None else float(x)


def open_orders(orders: list) -> tuple[OpenOrder, ...]:
    """Alpaca orders (legs nested) as OpenOrders: filled or cancelled parents drop out, their live legs
    stay and point at the parent."""
    out = []
    live = {"new", "accepted", "pending_new", "partially_filled", "held", "accepted_for_bidding", "pending_replace",
            "calculated"}

    def add(o, parent_id: str | None) -> None:
        if _value(o.status) in live:
            qty = float(o.qty or 0) - float(o.filled_qty or 0)
            out.append(OpenOrder(order_id=str(o.id), symbol=o.symbol, side=_value(o.side), order_type=_value(o.type),
                                 qty=qty, limit_price=_float(o.limit_price), stop_price=_float(o.stop_price),
                                 order_class=_value(o.order_class) or "simple", parent_id=parent_id,
                                 client_order_id=o.client_order_id))
        for leg in o.legs or ():
            add(leg, str(o.id))

    for o in orders:
        add(o, None)
    return tuple(out)


def session_now(clock, now: datetime, extended_enabled: bool) -> Session | None:
    """regular while Alpaca's clock says open; extended in the pre-market or after-hours window of a trading
    day (the real calendar: 13:00-17:00 after an early close, nothing on a holiday) when enabled; None
    otherwise (nothing to do)."""
    if clock.is_open:
        return "regular"
    if not extended_enabled:
        return None
    return "extended" if in_extended_hours(now) else None


def build_live_snapshot(gateway: AlpacaGateway, s: Settings, now: datetime, bar_period: pd.Timedelta,
                        features=None, history_bars: int = 400, session: Session = "regular",
                        raw_orders: list | None = None, bars: LiveBars | None = None) -> Snapshot:
    """`raw_orders`: the open orders when the caller has just read them (they are not read twice);
    `bars`: the bar window kept between iterations (default: a fresh one, fetched in full)."""
    account = gateway.account()
    positions = gateway.positions()
    orders = open_orders(gateway.open_orders() if raw_orders is None else raw_orders)
    symbols = list(dict.fromkeys([*s.all_symbols(benchmarks=("SPY",)), *(p.symbol for p in positions)]))
    frames = (bars or LiveBars(gateway, bar_period, history_bars)).update(symbols, now)
    notes = []
    history = None
    if frames:
        book = IndicatorBook(market_frames(frames, s.rsi_period, features), bar_period)
        market = book.as_of(now)
        history = lambda symbols, n: book.closes(now, symbols, n)  # noqa: E731 - the correlation cap's closes
    else:
        market = pd.DataFrame(columns=["close", "rsi", "trend", "atr", "high", "low", "bar_time"],
                              index=pd.Index([], name="symbol"))
        notes.append("no bars from the data feed: indicators unavailable this iteration")
    latest = gateway.latest_prices(symbols)
    for sym, price in latest.items():
        if sym in market.index:
            market.loc[sym, "close"] = price
    missing = [p.symbol for p in positions if p.symbol not in market.index]
    if missing:
        extra = pd.DataFrame({"close": [latest.get(m, float("nan")) for m in missing]}, index=pd.Index(missing,
                                                                                                      name="symbol"))
        market = pd.concat([market, extra])
    holdings = {p.symbol: Holding(p.symbol, float(p.qty), _float(p.avg_entry_price)) for p in positions
                if float(p.qty) != 0}
    stale = feed_lag(frames, now, bar_period, s.stale_bars) if session == "regular" else None
    if stale:
        notes.append(stale)
    quotes = None
    if s.max_spread_bps > 0 and session == "regular":  # the spread gate's quotes, one request for the universe
        try:
            quotes = gateway.latest_quotes(list(s.universe))
        except Exception as exc:  # noqa: BLE001 - an optional read: without it the gate is skipped, never the rest
            notes.append(f"latest quotes unavailable ({exc}): the spread gate is skipped this iteration")
    return Snapshot(now=now, cash=float(account.cash), portfolio_value=float(account.equity), holdings=holdings,
                    open_orders=orders, market=market, session=session, notes=tuple(notes), feed_stale=stale,
                    history=history, quotes=quotes)


def feed_lag(frames: dict[str, pd.DataFrame], now: datetime, bar_period: pd.Timedelta, stale_bars: int) -> str | None:
    """Why the whole feed is stale, or None. The stale-data rule compares each symbol with the freshest
    one, which cannot see every symbol stop at once: here the freshest bar's end is compared with the
    clock, counting only session time (the night before the open is not a lag)."""
    if stale_bars <= 0 or bar_period >= pd.Timedelta(days=1) or not frames:
        return None
    last = max((df.index[-1] for df in frames.values() if len(df)), default=None)
    if last is None:
        return None
    local = pd.Timestamp(now).tz_convert(NY)
    opened = local.normalize() + pd.Timedelta(hours=9, minutes=30)
    since = max(pd.Timestamp(last).tz_convert(NY) + bar_period, opened)
    lag = local - since
    if lag <= stale_bars * bar_period:
        return None
    return (f"the data feed's newest bar started {pd.Timestamp(last).tz_convert(NY):%Y-%m-%d %H:%M}, "
            f"{lag / bar_period:.1f} bar periods of session ago (STALE_BARS={stale_bars}): no new entries or "
            "hedges until it catches up")
