"""`--data alpaca`: historical bars from Alpaca's market-data API, cached on disk (marketdata/bar_cache.py).

Bars come through the bot's one data path (broker/gateway.py: alpaca-py's historical client, multi-symbol
requests paged by the SDK, 429s and 5xx retried with backoff) for the configured feed (free IEX keys work)
and the adjustment asked for. Hourly bars are fetched as 30-minute bars and rebuilt as the session's hourly
bars anchored at 09:30, exactly as `--data csv:DIR` rebuilds finer CSV bars, so both loaders hand the
backtest the same frames (Alpaca's own hourly bars are clock-aligned and their 09:00 bar mixes pre-market
trades into the first half hour). Daily bars are stamped at midnight New York time, as the CSV loader does.

A second run reads the cache and fetches only the days before or after the span already fetched (raw bars; an
adjusted span that has to grow is fetched again whole, since Alpaca adjusts history as of the day it is asked
for); a day not over in New York yet is never recorded as covered; `refresh` fetches everything again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from alpaca.common.exceptions import APIError

from broker.errors import BrokerUnavailable, message_of, status_of
from marketdata.bar_cache import COLUMNS, BarCache, CacheKey
from marketdata.csv_source import DataError, regular_session, to_hourly
from marketdata.market import Market
from marketdata.sessions import NY

logger = logging.getLogger("trader.data")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
TIMEFRAMES = {"hour": pd.Timedelta(minutes=30), "day": pd.Timedelta(days=1)}  # what is fetched for each
SYMBOLS_PER_REQUEST = 25  # a failed page restarts its request: keep each request small


@dataclass(frozen=True)
class HistoryRequest:
    symbols: tuple[str, ...]
    timeframe: str  # "hour" or "day"
    start: date
    end: date  # inclusive
    feed: str = "iex"
    adjustment: str = "all"


def no_keys_error() -> DataError:
    return DataError("--data alpaca needs Alpaca API keys: set ALPACA_API_KEY and ALPACA_API_SECRET in .env (free "
                     "paper keys from https://app.alpaca.markets work, with ALPACA_DATA_FEED=iex), or backtest on "
                     "your own files with --data csv:DIR.")


def validate(req: HistoryRequest) -> None:
    if req.timeframe not in TIMEFRAMES:
        raise DataError(f"--timeframe {req.timeframe!r}: use hour or day.")
    if req.adjustment not in ADJUSTMENTS:
        raise DataError(f"adjustment {req.adjustment!r}: use one of {', '.join(ADJUSTMENTS)}.")
    if req.end < req.start:
        raise DataError(f"--end {req.end} is before --start {req.start}.")


def load_history(gateway, req: HistoryRequest, cache: BarCache, refresh: bool = False,
                 progress: bool = True) -> Market:
    """The market for `req`: cached bars where the cache covers the span, fetched (and cached) where not."""
    validate(req)
    frames: dict[str, pd.DataFrame] = {}
    todo: dict[tuple[date, date], list[str]] = {}  # missing span -> symbols
    cached: dict[str, pd.DataFrame] = {}
    spans: dict[str, tuple[date, date]] = {}
    done = last_complete_day()
    for sym in req.symbols:
        key = CacheKey(sym, req.timeframe, req.feed, req.adjustment)
        hit = None if refresh else cache.read(key)
        extends = hit is not None and (req.start < hit.start or req.end > hit.end)
        if hit is not None and extends and req.adjustment != "raw":
            # adjusted bars are adjusted as of the day they are fetched: new ones appended to old ones would
            # splice two adjustments (a split between the fetches shows as a crash), so the whole span is fetched
            logger.info("bar cache: %s extends its %s-adjusted span: fetching all of it again", sym, req.adjustment)
            span = (min(hit.start, req.start), max(hit.end, req.end))
            todo.setdefault(span, []).append(sym)
            spans[sym] = (span[0], min(span[1], done))
            continue
        if hit is None:
            todo.setdefault((req.start, req.end), []).append(sym)
            spans[sym] = (req.start, min(req.end, done))  # a day not over yet is not covered: fetched again later
            continue
        cached[sym] = hit.bars
        spans[sym] = (min(hit.start, req.start), min(max(hit.end, req.end), done))
        if req.start < hit.start:
            todo.setdefault((req.start, hit.start - timedelta(days=1)), []).append(sym)
        if req.end > hit.end:
            todo.setdefault((hit.end + timedelta(days=1), req.end), []).append(sym)
    fetched = _fetch_all(gateway, req, todo, progress)
    changed = []
    for sym in req.symbols:
        parts = [df for df in (cached.get(sym), *fetched.get(sym, ())) if df is not None and len(df)]
        bars = _merge(parts)
        if sym in fetched or sym not in cached:
            changed.append((CacheKey(sym, req.timeframe, req.feed, req.adjustment), bars, *spans[sym]))
        lo = pd.Timestamp(datetime.combine(req.start, time()), tz=NY)
        hi = pd.Timestamp(datetime.combine(req.end + timedelta(days=1), time()), tz=NY)
        frames[sym] = bars[(bars.index >= lo) & (bars.index < hi)]
    cache.write(changed)  # the files, then the manifest once (not once per symbol)
    return _market(frames, req)


def last_complete_day() -> date:
    """The last New York day whose bars are final (yesterday in New York, whatever this machine's zone)."""
    return datetime.now(ZoneInfo(NY)).date() - timedelta(days=1)


def _fetch_all(gateway, req: HistoryRequest, todo: dict, progress: bool) -> dict[str, list[pd.DataFrame]]:
    from tqdm import tqdm

    jobs = [(span, syms[i:i + SYMBOLS_PER_REQUEST]) for span, syms in todo.items()
            for i in range(0, len(syms), SYMBOLS_PER_REQUEST)]
    out: dict[str, list[pd.DataFrame]] = {}
    if not jobs:
        return out
    period = TIMEFRAMES[req.timeframe]
    bar = tqdm(jobs, desc=f"Alpaca {req.timeframe} bars", unit="request", disable=not progress)
    for (start, end), syms in bar:
        bar.set_postfix_str(f"{syms[0]}..{syms[-1]} {start}..{end}")
        try:
            got = gateway.bars(list(syms), period, pd.Timestamp(start, tz=NY),
                               pd.Timestamp(datetime.combine(end, time(23, 59)), tz=NY), adjustment=req.adjustment)
        except BrokerUnavailable as exc:
            raise DataError(f"--data alpaca: Alpaca's market-data API did not answer ({exc}); nothing new was "
                            "cached from this run. Run it again later.") from None
        except APIError as exc:
            raise DataError(f"--data alpaca: Alpaca refused the bars request ({status_of(exc)}: {message_of(exc)}); "
                            "check the keys, ALPACA_DATA_FEED (iex on free keys) and the dates.") from None
        for sym in syms:
            df = got.get(sym)
            if df is None or df.empty:
                continue
            out.setdefault(sym, []).append(_shape(df, req.timeframe))
    return out


def _shape(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Alpaca's bars as the backtest's frames (the CSV loader's shape)."""
    df = df[COLUMNS].astype(float)
    if timeframe == "day":
        return df.set_axis(df.index.normalize())
    return to_hourly(regular_session(df))


def _merge(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in COLUMNS}, index=pd.DatetimeIndex([], tz=NY))
    df = pd.concat(parts).sort_index()
    return df[~df.index.duplicated(keep="last")]


def _market(frames: dict[str, pd.DataFrame], req: HistoryRequest) -> Market:
    empty = sorted(s for s, df in frames.items() if df.empty)
    frames = {s: df for s, df in frames.items() if not df.empty}
    if not frames:
        raise DataError(f"--data alpaca: no bars for any symbol in {req.start} .. {req.end} (feed {req.feed}); "
                        "check the dates (a trading period) and the feed.")
    warnings = [f"no Alpaca bars for {', '.join(empty)} in {req.start} .. {req.end}"] if empty else []
    timestep, period = ("day", pd.Timedelta(days=1)) if req.timeframe == "day" else ("hour", pd.Timedelta(hours=1))
    source = f"alpaca ({req.feed} feed, {req.adjustment} adjustment, {req.timeframe} bars)"
    return Market(frames, timestep, period, source, tuple(warnings))

