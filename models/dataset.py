"""The training set: every candidate the strategy would consider, its features at the candidate bar and
what the exit policy would have made of it (exit_sim.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pandas_ta_classic as ta

from models.exit_sim import EXIT_REASONS, ExitPolicy, realised_r
from models.features import FEATURE_NAMES, FeatureParams, feature_frames


class TrainingError(ValueError):
    """Not enough data to train or validate; the message says what is missing."""


@dataclass
class Dataset:
    X: pd.DataFrame
    r: np.ndarray  # realised R, net of costs
    held: np.ndarray  # bars from entry to exit
    reason: np.ndarray  # index into EXIT_REASONS
    times: pd.DatetimeIndex
    symbols: np.ndarray
    bar_pos: np.ndarray  # position of each candidate's bar on the timeline
    timeline: pd.DatetimeIndex

    @property
    def y(self) -> np.ndarray:
        """1 for a trade that made money net of costs: what AUC is measured against."""
        return (self.r > 0).astype(float)

    def exits(self) -> dict[str, int]:
        return {name: int((self.reason == k).sum()) for k, name in enumerate(EXIT_REASONS)}

    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X.to_numpy(dtype=float)).tobytes())
        h.update(self.r.tobytes())
        h.update(self.times.asi8.tobytes())
        h.update("|".join(self.symbols).encode())
        return h.hexdigest()


def build_dataset(bars: dict[str, pd.DataFrame], universe: tuple[str, ...], params: FeatureParams,
                  oversold: float, policy: ExitPolicy, start: date, end: date) -> Dataset:
    """Every candidate (RSI below `oversold`, complete features) in [start, end] with its realised R. Bars
    before `start` only warm the features up; bars after `end` are never read (a candidate whose trade would
    need them is dropped, so nothing past `end` leaks in through a label)."""
    feats = feature_frames(bars, params, symbols=universe)
    timeline = None
    for sym in feats:
        timeline = bars[sym].index if timeline is None else timeline.union(bars[sym].index)
    if timeline is None:
        raise TrainingError("none of the universe symbols has bars; check --data and UNIVERSE")
    lo, hi = pd.Timestamp(start, tz=timeline.tz), pd.Timestamp(end, tz=timeline.tz) + pd.Timedelta(days=1)
    timeline = timeline[(timeline >= lo) & (timeline < hi)]  # folds split the window; warm-up only feeds features
    parts = []
    for sym, f in feats.items():
        df = bars[sym][bars[sym].index < hi]
        f = f[f.index < hi]
        atr = ta.atr(df["high"].astype(float), df["low"].astype(float), df["close"].astype(float), length=14)
        atr = atr.to_numpy(dtype=float) if atr is not None else np.full(len(df), np.nan)
        complete = f.notna().all(axis=1).to_numpy()
        pos = np.flatnonzero((f["rsi"].to_numpy() < oversold) & complete & (f.index >= lo))
        r, held, reason = realised_r(df, atr, pos, policy)
        keep = np.isfinite(r)
        if keep.any():
            parts.append(pd.DataFrame({"symbol": sym, "r": r[keep], "held": held[keep], "reason": reason[keep]},
                                      index=f.index[pos[keep]]).join(f.iloc[pos[keep]]))
    if not parts:
        raise TrainingError(f"no candidates (RSI < {oversold:g} with complete features and {policy.horizon_bars} "
                            f"bars after them) between {start} and {end}; use a longer window or more symbols.")
    data = pd.concat(parts).rename_axis("time").reset_index().sort_values(["time", "symbol"], kind="stable")
    times = pd.DatetimeIndex(data["time"])
    return Dataset(X=data[list(FEATURE_NAMES)].reset_index(drop=True), r=data["r"].to_numpy(dtype=float),
                   held=data["held"].to_numpy(), reason=data["reason"].to_numpy(), times=times,
                   symbols=data["symbol"].to_numpy(), bar_pos=timeline.get_indexer(times), timeline=timeline)
