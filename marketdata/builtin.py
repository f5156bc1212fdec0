"""The built-in market: a deterministic, seeded simulation of hourly bars. NOT real prices.

Tickers are real names so the strategy's settings read naturally, but every price is generated:
- bars are regular-session hours on the real NYSE calendar, stamped at their start (09:30 ... 15:30);
- returns = beta x market factor + loading x tech factor + idiosyncratic noise; both factors follow a
  GARCH(1,1) (volatility clustering) driven by Student-t(4) shocks (fat tails);
- each session opens with an overnight gap; each stock has four earnings-style jump days a year;
- the backtest year is scripted into regimes: a steady bull market, a tech melt-up that drives the
  bellwethers overbought, a second broad rally, then a sharp sell-off with doubled volatility, a choppy
  recovery and a calm finish; one stock (the "doubler", AMD by default) ends the year at 2x its start;
- SPY and QQQ are the index proxies; SH, SPXS and SQQQ are derived from them as daily-reset -1x, -3x,
  -3x products (with a yearly fee), so a hedge behaves like the real ETFs, leveraged decay included.
The same seed gives the same market on every machine.
"""

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from marketdata.market import Market
from marketdata.sessions import hourly_bars, nyse_sessions, sessions_before

HOURS_PER_YEAR = 252 * 6.5
DEFAULT_SEED = 2024
WARMUP_SESSIONS = 80  # history before the start: RSI, the 200-bar trend EMA, model features
DOUBLER = "AMD"


@dataclass(frozen=True)
class Profile:
    price: float  # price at the start of the warm-up
    beta: float  # loading on the market factor
    tech: float  # loading on the tech factor
    idio_vol: float  # annual idiosyncratic volatility
    drift: float  # annual idiosyncratic log drift
    volume: float  # average shares per day


PROFILES: dict[str, Profile] = {
    "SPY": Profile(450, 1.0, 0.25, 0.02, 0.0, 8e7),
    "QQQ": Profile(380, 1.05, 0.9, 0.03, 0.0, 5e7),
    "AAPL": Profile(185, 1.0, 0.6, 0.18, 0.02, 5.5e7),
    "MSFT": Profile(370, 0.95, 0.6, 0.16, 0.03, 2.2e7),
    "GOOGL": Profile(138, 1.05, 0.6, 0.22, 0.02, 2.8e7),
    "NVDA": Profile(48, 1.4, 1.0, 0.38, 0.08, 4.5e8),
    "TSLA": Profile(240, 1.5, 0.8, 0.50, -0.04, 1.1e8),
    "AMZN": Profile(150, 1.15, 0.6, 0.25, 0.03, 4.5e7),
    "META": Profile(340, 1.2, 0.7, 0.28, 0.03, 1.6e7),
    "AMD": Profile(120, 1.4, 0.9, 0.40, 0.0, 5.5e7),
    "JPM": Profile(165, 1.0, -0.2, 0.18, 0.02, 9e6),
    "XOM": Profile(102, 0.6, -0.4, 0.22, 0.0, 1.6e7),
    "UNH": Profile(520, 0.6, -0.3, 0.20, 0.0, 3.5e6),
    "COST": Profile(650, 0.7, 0.1, 0.17, 0.03, 2.2e6),
}

# Scripted regimes over the backtest window, as fractions of its sessions:
# (start, end, market drift per day, tech drift per day, volatility multiplier)
REGIMES = (
    (0.00, 0.18, 0.0005, 0.0002, 1.0),  # steady bull
    (0.18, 0.24, 0.0030, 0.0090, 0.8),  # tech melt-up: bellwethers overbought
    (0.24, 0.45, 0.0003, -0.0003, 1.0),  # digestion
    (0.45, 0.49, 0.0045, 0.0035, 0.8),  # broad rally
    (0.49, 0.56, -0.0085, -0.0040, 1.8),  # sharp sell-off
    (0.56, 0.70, 0.0015, 0.0005, 1.3),  # choppy recovery
    (0.70, 1.01, 0.0005, 0.0002, 1.0),  # calm finish
)
BASE = {"market": (0.10, 0.0004), "tech": (0.09, 0.0)}  # annual vol, warm-up drift per day
GAP_VOL = 0.003  # overnight market gap, per session
GARCH_ALPHA, GARCH_BETA = 0.08, 0.90


def _stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per name, so adding a symbol never changes the others."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _t4(rng: np.random.Generator, n: int) -> np.ndarray:
    # unit variance, fat tails; clipped at 8 sigma so one draw cannot produce an absurd bar
    return np.clip(rng.standard_t(4, n) / np.sqrt(2.0), -8.0, 8.0)


def _profile(symbol: str, seed: int, nasdaq: bool) -> Profile:
    if symbol in PROFILES:
        return PROFILES[symbol]
    r = _stream(seed, "profile:" + symbol)
    return Profile(price=float(np.round(r.uniform(20, 300), 2)), beta=float(r.uniform(0.7, 1.4)),
                   tech=float(r.uniform(0.3, 0.9)) if nasdaq else float(r.uniform(-0.3, 0.2)),
                   idio_vol=float(r.uniform(0.2, 0.45)), drift=float(r.uniform(-0.05, 0.08)),
                   volume=float(r.uniform(2e6, 3e7)))


def _regime_arrays(grid: pd.DataFrame, start: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar drift (market, tech, per hour) and volatility multiplier from the regime script."""
    sessions = pd.Index(sorted(set(grid["session"])))
    in_window = sessions[sessions >= pd.Timestamp(start)]
    pos = pd.Series(np.nan, index=sessions)
    pos[in_window] = np.arange(len(in_window)) / max(len(in_window), 1)
    frac = pos.reindex(grid["session"]).to_numpy()
    m = np.full(len(grid), BASE["market"][1])
    k = np.full(len(grid), BASE["tech"][1])
    v = np.ones(len(grid))
    for a, b, md, kd, vm in REGIMES:
        sel = (frac >= a) & (frac < b)
        m[sel], k[sel], v[sel] = md, kd, vm
    hours = grid["minutes"].to_numpy() / 60.0
    return m / 6.5 * hours, k / 6.5 * hours, v


def _garch_factor(rng: np.random.Generator, annual_vol: float, vol_mult: np.ndarray, hours: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar returns with GARCH(1,1) variance around a regime-scaled long-run level, and the
    conditional volatility relative to the long-run level (for stocks' idiosyncratic noise)."""
    n = len(hours)
    eps = _t4(rng, n)
    base_var = (annual_vol / np.sqrt(HOURS_PER_YEAR)) ** 2
    out = np.empty(n)
    ratio = np.empty(n)
    var = base_var
    for i in range(n):
        target = base_var * vol_mult[i] ** 2
        shock = out[i - 1] ** 2 / hours[i - 1] if i else target  # last bar's squared return, per hour
        var = (1 - GARCH_ALPHA - GARCH_BETA) * target + GARCH_ALPHA * shock + GARCH_BETA * var
        out[i] = np.sqrt(var * hours[i]) * eps[i]
        ratio[i] = np.sqrt(var / base_var)
    return out, ratio


def generate(symbols: Iterable[str], inverse: Mapping[str, tuple[str, float]], start: date, end: date,
             seed: int = DEFAULT_SEED, warmup_sessions: int = WARMUP_SESSIONS,
             nasdaq: Iterable[str] = ()) -> Market:
    """Hourly OHLCV for `symbols` (plus SPY and QQQ) and the `inverse` ETFs {symbol: (underlying, leverage)}."""
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if end <= start:
        raise ValueError(f"end {end} is not after start {start}")
    sessions = pd.concat([sessions_before(start, warmup_sessions), nyse_sessions(start, end)])
    if len(sessions) <= warmup_sessions:
        raise ValueError(f"no NYSE sessions between {start} and {end}")
    grid = hourly_bars(sessions)
    hours = grid["minutes"].to_numpy() / 60.0
    first = grid["first"].to_numpy()
    m_drift, k_drift, vol_mult = _regime_arrays(grid, start)

    frng = _stream(seed, "factors")
    market_noise, market_vol = _garch_factor(frng, BASE["market"][0], vol_mult, hours)
    tech_noise, _ = _garch_factor(_stream(seed, "tech"), BASE["tech"][0], vol_mult, hours)
    market, tech = m_drift + market_noise, k_drift + tech_noise
    gap_m = np.where(first, GAP_VOL * vol_mult * _t4(frng, len(grid)), 0.0)
    gap_k = np.where(first, 0.6 * GAP_VOL * vol_mult * _t4(frng, len(grid)), 0.0)
    in_window = (grid.index >= pd.Timestamp(start, tz=grid.index.tz)).astype(float)

    wanted = list(dict.fromkeys(list(symbols) + ["SPY", "QQQ"]))
    wanted = [s for s in wanted if s not in inverse]
    nasdaq = set(nasdaq)
    bars: dict[str, pd.DataFrame] = {}
    for sym in wanted:
        p = _profile(sym, seed, sym in nasdaq)
        r = _stream(seed, sym)
        idio_bar = p.idio_vol / np.sqrt(HOURS_PER_YEAR)
        # idiosyncratic volatility rises and falls with the market's (volatility clustering in every stock)
        idio = (p.drift / HOURS_PER_YEAR) * hours + idio_bar * np.sqrt(hours) * market_vol * _t4(r, len(grid))
        idio_gap = 0.5 * p.idio_vol / np.sqrt(252)
        gaps = p.beta * gap_m + p.tech * gap_k + np.where(first, idio_gap * _t4(r, len(grid)), 0.0)
        earnings = _earnings_jumps(r, grid, p)
        ret = p.beta * market + p.tech * tech + idio
        gap = gaps + earnings
        if sym == DOUBLER:
            # scripted: the doubler ends the backtest window at exactly 2x where it started
            realised = float(((ret + gap) * in_window).sum())
            ret = ret + in_window * hours * (np.log(2.0) - realised) / float((in_window * hours).sum())
        bars[sym] = _ohlcv(p.price, ret, gap, grid, p, r)

    for sym, (underlying, leverage) in inverse.items():
        base = bars[underlying]
        bars[sym] = _daily_reset(base, grid, leverage, start_price=_inverse_start(sym), fee=0.009)
    return Market(bars, "hour", pd.Timedelta(hours=1), f"built-in simulated market (seed {seed})")


def _earnings_jumps(r: np.random.Generator, grid: pd.DataFrame, p: Profile) -> np.ndarray:
    firsts = np.flatnonzero(grid["first"].to_numpy())
    out = np.zeros(len(grid))
    if p.idio_vol < 0.1 or len(firsts) < 70:  # index funds have no earnings
        return out
    for k in range(0, len(firsts) - 1, 63):  # about once a quarter
        day = firsts[min(k + int(r.integers(5, 58)), len(firsts) - 1)]
        out[day] = r.normal(0.0, 0.05) + 0.01 * np.sign(r.normal())
    return out


def _ohlcv(price0: float, ret: np.ndarray, gap: np.ndarray, grid: pd.DataFrame, p: Profile,
           r: np.random.Generator) -> pd.DataFrame:
    logp_close = np.log(price0) + np.cumsum(ret + gap)
    close = np.exp(logp_close)
    prev_close = np.r_[price0, close[:-1]]
    open_ = prev_close * np.exp(gap)
    hours = grid["minutes"].to_numpy() / 60.0
    spread = np.abs(ret) * 0.5 + 0.25 * (p.idio_vol + 0.1) / np.sqrt(HOURS_PER_YEAR) * np.sqrt(hours)
    high = np.maximum(open_, close) * np.exp(np.abs(r.normal(0, 1, len(grid))) * spread)
    low = np.minimum(open_, close) * np.exp(-np.abs(r.normal(0, 1, len(grid))) * spread)
    # U-shaped intraday volume, more on big moves
    shape = np.where(grid["first"].to_numpy(), 1.8, np.where(hours < 1, 1.5, 0.85))
    vol = p.volume / 6.5 * hours * shape * np.exp(0.25 * r.normal(0, 1, len(grid))) \
        * (1 + 25 * np.abs(ret + gap))
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                       "volume": np.round(vol).astype(np.int64)}, index=grid.index)
    return df.round({"open": 4, "high": 4, "low": 4, "close": 4})


def _inverse_start(symbol: str) -> float:
    return {"SH": 14.0, "SPXS": 12.0, "SQQQ": 15.0}.get(symbol, 20.0)


def _daily_reset(base: pd.DataFrame, grid: pd.DataFrame, leverage: float, start_price: float,
                 fee: float) -> pd.DataFrame:
    """A product returning `leverage` x the underlying's move since the previous close, reset daily."""
    session = grid["session"].to_numpy()
    o, h, lo, c = (base[k].to_numpy() for k in ("open", "high", "low", "close"))
    out = np.empty((len(base), 4))
    ref_under = o[0]
    ref_inv = start_price
    day_fee = 1 - fee / 252
    for i in range(len(base)):
        if i > 0 and session[i] != session[i - 1]:
            ref_under, ref_inv = c[i - 1], out[i - 1, 3] * day_fee
        # the product's level is its last close times (1 + leverage x the underlying's move since then)
        lv = ref_inv * np.maximum(1 + leverage * (np.array([o[i], h[i], lo[i], c[i]]) / ref_under - 1), 0.01)
        hi, low = (lv[2], lv[1]) if leverage < 0 else (lv[1], lv[2])
        out[i] = (lv[0], hi, low, lv[3])
    df = pd.DataFrame(out, columns=["open", "high", "low", "close"], index=base.index).round(4)
    df["volume"] = (base["volume"] * 0.15).round().astype(np.int64)
    return df


def inverse_map(inverse_etfs: Mapping[str, str]) -> dict[str, tuple[str, float]]:
    """Settings' role map -> {symbol: (underlying, leverage)}: general -1x SPY, sp500 -3x SPY, tech -3x QQQ."""
    spec = {"general": ("SPY", -1.0), "sp500": ("SPY", -3.0), "tech": ("QQQ", -3.0)}
    return {sym: spec[role] for role, sym in inverse_etfs.items()}
