"""Entry filters of step 4, each a small rule with its own setting (off at its default) and its own gate name,
so the journal counts what each one blocked:

- market_vol: no entries while SPY's 20-bar realised volatility is above MARKET_VOL_MAX_PCTILE of its last 250
  bars (a market-wide gate: every candidate waits);
- trend: the close above the 200-bar trend line (TREND_FILTER);
- volatility: ATR(14) as a share of the price within [ATR_PCT_MIN, ATR_PCT_MAX];
- liquidity: average daily dollar volume over 20 sessions at least MIN_DOLLAR_VOLUME;
- spread (live): the latest quote's spread at most MAX_SPREAD_BPS of its midpoint; no two-sided quote, or a
  crossed one, does not pass; a backtest has no quotes, so the gate is skipped there and the strategy's
  start-up line says so;
- correlation: the candidate's returns over CORRELATION_BARS bars correlate at most CORRELATION_MAX with the
  book's value-weighted returns: what is held, then with the entries this iteration has already planned added
  at their notional (`CorrelationBook`), so two stocks that move together are not both
  bought in one iteration because the book was empty when it began (a planned entry the risk review or the
  broker then refuses still counted: its twin waits for the next iteration, which judges again).

Each returns a reason or None; a missing input (no SPY data, too little history, no quote) never blocks, it is
a filter on what is known.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from trading.settings import Settings
from trading.snapshot import Snapshot

BENCHMARK = "SPY"


def market_gate(snap: Snapshot, s: Settings) -> str | None:
    if s.market_vol_max_pctile >= 1:
        return None
    pct = _value(snap.rows([BENCHMARK]), BENCHMARK, "vol_pctile")
    if math.isfinite(pct) and pct > s.market_vol_max_pctile:
        return (f"SPY's 20-bar realised volatility is at the {pct:.0%} percentile of its last 250 bars > "
                f"{s.market_vol_max_pctile:.0%} (MARKET_VOL_MAX_PCTILE): no entries in a volatile market")
    return None


def market_volatility(snap: Snapshot) -> float:
    """SPY's annualised 20-bar realised volatility as of the snapshot (NaN when unknown): VOL_TARGET_PCT's input."""
    return _value(snap.rows([BENCHMARK]), BENCHMARK, "vol_ann")


def screen(snap: Snapshot, s: Settings, candidates: list[str],
           book: CorrelationBook | None = None) -> dict[str, tuple[str, str]]:
    """{symbol: (gate, reason)} for the candidates a filter blocks; the others pass. `book`: the correlation
    cap's (None: the cap is off)."""
    if not candidates:
        return {}
    rows = snap.rows(candidates)
    out: dict[str, tuple[str, str]] = {}
    for sym in candidates:
        why = (_trend(rows, sym, s) or _volatility(rows, sym, s) or _liquidity(rows, sym, s)
               or _spread(snap, sym, s) or (book.check(sym) if book is not None else None))
        if why:
            out[sym] = why
    return out


class CorrelationBook:
    """The correlation cap for one iteration: the returns of what is held and of the candidates, read once; the
    book's value-weighted returns (long positions, hedges included as held) recomputed only when an entry is
    planned (`add`), so a candidate is judged against the book as it will be once this iteration's entries fill."""

    def __init__(self, snap: Snapshot, s: Settings, candidates: list[str]) -> None:
        self.s = s
        self.values = {sym: v for sym, h in snap.holdings.items()
                       if math.isfinite(v := h.value(snap.price(sym))) and v != 0}
        self.rets = snap.returns(list(dict.fromkeys([*self.values, *candidates])), s.correlation_bars)
        self.planned = False
        self.returns = self._weighted()

    def add(self, sym: str, notional: float) -> None:
        self.values[sym] = self.values.get(sym, 0.0) + notional
        self.planned = True
        self.returns = self._weighted()

    def check(self, sym: str) -> tuple[str, str] | None:
        return _correlation(self.rets, sym, self.s, self.returns, " with this iteration's entries" if self.planned
                            else "")

    def _weighted(self) -> pd.Series | None:
        rets = self.rets[[c for c in self.values if c in self.rets]]
        if rets.empty or len(rets) < self.s.correlation_bars // 2:
            return None
        weights = pd.Series(self.values)[rets.columns]
        return (rets.fillna(0.0) * (weights / weights.abs().sum())).sum(axis=1)


def spread_note(s: Settings, live: bool) -> str | None:
    """The start-up note of a backtest with the spread gate set: it cannot apply without quotes."""
    if s.max_spread_bps > 0 and not live:
        return f"MAX_SPREAD_BPS={s.max_spread_bps:g} is skipped in this backtest: it has no quotes"
    return None


def _trend(rows: pd.DataFrame, sym: str, s: Settings) -> tuple[str, str] | None:
    if not s.trend_filter:
        return None
    close, trend = _value(rows, sym, "close"), _value(rows, sym, "trend")
    if math.isfinite(trend) and close <= trend:
        return "trend", f"close {close:.2f} is not above its 200-bar trend line {trend:.2f} (TREND_FILTER)"
    return None


def _volatility(rows: pd.DataFrame, sym: str, s: Settings) -> tuple[str, str] | None:
    if s.atr_pct_min <= 0 and s.atr_pct_max >= 1:
        return None
    atr_pct = _value(rows, sym, "atr_pct")
    if not math.isfinite(atr_pct):
        return None
    if atr_pct < s.atr_pct_min:
        return "volatility", f"ATR is {atr_pct:.2%} of the price < ATR_PCT_MIN {s.atr_pct_min:.2%}: too quiet"
    if atr_pct > s.atr_pct_max:
        return "volatility", f"ATR is {atr_pct:.2%} of the price > ATR_PCT_MAX {s.atr_pct_max:.2%}: too wild"
    return None


def _liquidity(rows: pd.DataFrame, sym: str, s: Settings) -> tuple[str, str] | None:
    if s.min_dollar_volume <= 0:
        return None
    adv = _value(rows, sym, "adv")
    if math.isfinite(adv) and adv < s.min_dollar_volume:
        return "liquidity", (f"trades ${adv / 1e6:,.1f}M a day on average < MIN_DOLLAR_VOLUME "
                             f"${s.min_dollar_volume / 1e6:,.1f}M")
    return None


def _spread(snap: Snapshot, sym: str, s: Settings) -> tuple[str, str] | None:
    if s.max_spread_bps <= 0 or snap.quotes is None:  # a backtest, or the quotes could not be read (a note says so)
        return None
    if sym not in snap.quotes:  # read, but Alpaca had no two-sided quote for it (the gateway leaves those out)
        return "spread", "no two-sided quote (bid and ask) to judge the spread by"
    bid, ask = snap.quotes[sym]
    if not (math.isfinite(bid) and math.isfinite(ask) and 0 < bid <= ask):  # one-sided or crossed: no price to trust
        return "spread", f"quote {bid:.2f} x {ask:.2f} is not a two-sided market (one side missing or crossed)"
    mid = (bid + ask) / 2
    bps = (ask - bid) / mid * 1e4
    if bps > s.max_spread_bps:
        return "spread", f"quote {bid:.2f} x {ask:.2f} is {bps:.0f} bp wide > MAX_SPREAD_BPS {s.max_spread_bps:g}"
    return None


def _correlation(rets: pd.DataFrame, sym: str, s: Settings, book: pd.Series | None,
                 book_is: str) -> tuple[str, str] | None:
    if book is None:
        return None
    if sym not in rets or rets[sym].count() < s.correlation_bars // 2:
        return None
    pair = pd.concat([rets[sym], book], axis=1).dropna()
    if len(pair) < s.correlation_bars // 2 or pair.std().min() == 0:
        return None
    corr = float(np.corrcoef(pair.iloc[:, 0], pair.iloc[:, 1])[0, 1])
    if corr > s.correlation_max:
        return "correlation", (f"its returns correlate {corr:.2f} with the book's{book_is} over "
                               f"{s.correlation_bars} bars > CORRELATION_MAX {s.correlation_max:.2f}")
    return None


def _value(rows: pd.DataFrame, sym: str, col: str) -> float:
    if col not in rows or sym not in rows.index:
        return math.nan
    v = rows.at[sym, col]
    return float(v) if v is not None and pd.notna(v) else math.nan
