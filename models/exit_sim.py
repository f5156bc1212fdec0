"""The realised-R label: what the bot's exit policy would have made of each candidate, bar by bar.

The bracket label (labels.py) asks whether +TAKE_PROFIT_PCT comes before -STOP_LOSS_PCT within H bars; the
bot's trades rarely end that way (time exits, breakeven stops, partials, trailing stops). This label follows
the trade the bot really makes, with the rules of trading/steps/exits.py:

- levels from the candidate bar's close, as the bot sets them (fixed percentages, or ATR multiples with
  STOP_MODE=atr), the fill at the next bar's open; R is in units of the stop distance the bot sized by;
- during each bar the resting legs act: a bar opening through the stop or the target fills at its open; a
  bar reaching both counts as the stop (the worse case, as the bracket label does);
- at each bar's close (the iteration) in the exit step's order: the time exit (TIME_EXIT_HOURS trading hours
  without ever reaching +1R: sold at the close), the partial (half sold at the close at +PARTIAL_AT_R, the
  stop to breakeven), else the higher of breakeven and trailing stops below the close (never lowered);
- a trade still open after H bars (MODEL_HORIZON_BARS) is valued at that bar's close.

Costs: COST_BPS per side (slippage) is taken off, in R, so a gate on expected R is a gate net of costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BREAKEVEN_OFFSET = 0.001  # as trading/steps/exits.py
EXIT_REASONS = ("stop", "target", "time", "horizon")


@dataclass(frozen=True)
class ExitPolicy:
    horizon_bars: int
    stop_pct: float
    target_pct: float
    stop_mode: str = "fixed"
    atr_stop_mult: float = 1.5
    atr_target_mult: float = 3.75
    breakeven_at_r: float = 1.0
    partial_at_r: float = 2.0
    trail_after_r: float = 2.0
    trail_atr_mult: float = 1.0
    time_exit_hours: float = 24.0
    hours_per_bar: float = 1.0
    cost_bps: float = 2.0

    @classmethod
    def from_settings(cls, s, bar_period: pd.Timedelta) -> ExitPolicy:
        hours = min(pd.Timedelta(bar_period) / pd.Timedelta(hours=1), 6.5)  # as the ledger counts them
        return cls(s.model_horizon_bars, s.stop_loss_pct, s.take_profit_pct, s.stop_mode, s.atr_stop_mult,
                   s.atr_target_mult, s.breakeven_at_r, s.partial_at_r, s.trail_after_r, s.trail_atr_mult,
                   s.time_exit_hours, hours, s.slippage_bps if s.backtest_costs else 0.0)

    def describe(self) -> str:
        levels = {"atr": f"stop {self.atr_stop_mult:g} ATR, target {self.atr_target_mult:g} ATR",
                  "model": f"stop from the stop model, target {self.target_pct / self.stop_pct:g}x it"}.get(
            self.stop_mode, f"stop -{self.stop_pct:.1%}, target +{self.target_pct:.1%}")
        return (f"realised R of the exit policy ({levels}; breakeven {self.breakeven_at_r:g}R, partial "
                f"{self.partial_at_r:g}R, trail after {self.trail_after_r:g}R at {self.trail_atr_mult:g} ATR, "
                f"time exit {self.time_exit_hours:g} h) within {self.horizon_bars} bars, net of {self.cost_bps:g} "
                "bps a side")


def realised_r(df: pd.DataFrame, atr: np.ndarray, positions: np.ndarray, policy: ExitPolicy,
               stop_pcts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, bars held, exit reason index into EXIT_REASONS) per candidate bar position; NaN R (and -1) where the
    data ends before t+H or the levels cannot be set (no ATR in atr mode). `stop_pcts` (STOP_MODE=model): each
    candidate's stop distance as a fraction, the target the policy's reward multiple of it."""
    o, h, lo, c = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    n, p = len(df), policy
    rs, held, why = np.full(len(positions), np.nan), np.full(len(positions), -1), np.full(len(positions), -1)
    for k, t in enumerate(positions):
        if t + p.horizon_bars >= n:
            continue
        if stop_pcts is not None:
            if not np.isfinite(stop_pcts[k]) or not 0 < stop_pcts[k] < 1:
                continue
            stop = c[t] * (1 - stop_pcts[k])
            target = c[t] * (1 + stop_pcts[k] * p.target_pct / p.stop_pct)
        elif p.stop_mode == "atr":
            if not np.isfinite(atr[t]) or atr[t] <= 0:
                continue
            stop, target = c[t] - p.atr_stop_mult * atr[t], c[t] + p.atr_target_mult * atr[t]
        elif p.stop_mode == "model":  # levels come from the stop model: without them there is no label
            continue
        else:
            stop, target = c[t] * (1 - p.stop_pct), c[t] * (1 + p.target_pct)
        entry, risk = o[t + 1], c[t] - stop  # R in the stop distance the bot sized the trade by
        if entry <= stop:  # opened through the stop: the resting stop sells at once, about the fill price
            rs[k], held[k], why[k] = _net(0.0, entry, risk, p), 1, 0
            continue
        rs[k], held[k], why[k] = _follow(o, h, lo, c, atr, t, entry, stop, target, risk, p)
    return rs, held, why


def _follow(o, h, lo, c, atr, t, entry, stop, target, risk, p: ExitPolicy) -> tuple[float, int, int]:
    left, banked, highest, hours = 1.0, 0.0, entry, 0.0
    partial_done = breakeven_done = False
    last = t + p.horizon_bars
    for j in range(t + 1, last + 1):
        fill, reason = None, -1
        if o[j] <= stop:
            fill, reason = o[j], 0
        elif o[j] >= target:
            fill, reason = o[j], 1
        elif lo[j] <= stop:
            fill, reason = stop, 0
        elif h[j] >= target:
            fill, reason = target, 1
        if fill is not None:
            return _net(banked + left * (fill - entry), entry, risk, p), j - t, reason
        highest, hours = max(highest, h[j]), hours + p.hours_per_bar
        r_now, r_best = (c[j] - entry) / risk, (highest - entry) / risk
        if p.time_exit_hours > 0 and hours >= p.time_exit_hours and r_best < 1.0:
            return _net(banked + left * (c[j] - entry), entry, risk, p), j - t, 2
        if p.partial_at_r > 0 and not partial_done and r_now >= p.partial_at_r:
            banked += 0.5 * (c[j] - entry)
            left, partial_done, breakeven_done = 0.5, True, True
            stop = max(stop, entry * (1 + BREAKEVEN_OFFSET))
            continue
        moves = []
        if p.breakeven_at_r > 0 and not breakeven_done and r_now >= p.breakeven_at_r:
            moves.append(entry * (1 + BREAKEVEN_OFFSET))
        if p.trail_after_r > 0 and r_best >= p.trail_after_r and np.isfinite(atr[j]) and atr[j] > 0:
            moves.append(highest - p.trail_atr_mult * atr[j])
        moves = [m for m in moves if m < c[j]]  # one at or above the close waits; it never holds back a lower one
        if moves and stop < max(moves):
            stop = max(moves)
            breakeven_done = breakeven_done or stop >= entry
    return _net(banked + left * (c[last] - entry), entry, risk, p), last - t, 3


def adverse_excursion(df: pd.DataFrame, positions: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(MAE, winner) per candidate: how far below the entry (next bar's open, as a fraction) the price went within
    `horizon` bars, and whether the trade closed those bars above its entry. The stop model learns how deep an
    eventual winner dips; NaN where the data ends first."""
    o, lo, c = (df[k].to_numpy(dtype=float) for k in ("open", "low", "close"))
    mae, win = np.full(len(positions), np.nan), np.zeros(len(positions), dtype=bool)
    for k, t in enumerate(positions):
        if t + horizon >= len(df):
            continue
        entry = o[t + 1]
        mae[k] = max(0.0, 1 - lo[t + 1:t + horizon + 1].min() / entry)
        win[k] = c[t + horizon] > entry
    return mae, win


def _net(pnl_per_share: float, entry: float, risk: float, p: ExitPolicy) -> float:
    return (pnl_per_share - 2 * p.cost_bps * 1e-4 * entry) / risk
