"""Labels that ask the question the gate asks: does the bracket win?

For a candidate at bar t (RSI below RSI_OVERSOLD at t's close), the entry is the open of bar t+1,
the target entry x (1 + TAKE_PROFIT_PCT), the stop entry x (1 - STOP_LOSS_PCT). Bars t+1 .. t+H are
scanned in order: label 1 if the target is reached before the stop, else 0. When one bar's range
reaches both, the stop counts (an hourly bar does not say which came first, and assuming the worse
one keeps the label honest). Neither within H bars is 0.

The outcome in R (multiples of the stop distance) goes with it: a target is +TP/SL, a stop -1 (worse
when a bar opens through the stop: the fill is that open), neither is the close at t+H.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LabelSpec:
    horizon_bars: int
    stop_pct: float
    target_pct: float

    def describe(self) -> str:
        return (f"1 if +{self.target_pct:.0%} is reached before -{self.stop_pct:.0%} within {self.horizon_bars} bars "
                "of entering at the next bar's open; a bar reaching both counts as the stop")


def bracket_outcomes(df: pd.DataFrame, positions: np.ndarray, spec: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(label, R) for candidates at the given bar positions; NaN where the data ends before t+H."""
    o, h, lo, c = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    n = len(df)
    labels = np.full(len(positions), np.nan)
    rs = np.full(len(positions), np.nan)
    for k, t in enumerate(positions):
        last = t + spec.horizon_bars
        if last >= n:
            continue
        entry = o[t + 1]
        stop, target = entry * (1 - spec.stop_pct), entry * (1 + spec.target_pct)
        window = slice(t + 1, last + 1)
        hit_stop = np.flatnonzero(lo[window] <= stop)
        hit_target = np.flatnonzero(h[window] >= target)
        first_stop = hit_stop[0] if len(hit_stop) else np.inf
        first_target = hit_target[0] if len(hit_target) else np.inf
        if first_stop <= first_target and np.isfinite(first_stop):
            fill = min(stop, o[t + 1 + int(first_stop)])
            labels[k], rs[k] = 0.0, (fill / entry - 1) / spec.stop_pct
        elif np.isfinite(first_target):
            fill = max(target, o[t + 1 + int(first_target)])
            labels[k], rs[k] = 1.0, (fill / entry - 1) / spec.stop_pct
        else:
            labels[k], rs[k] = 0.0, (c[last] / entry - 1) / spec.stop_pct
    return labels, rs
