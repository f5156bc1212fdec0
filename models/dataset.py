"""The training set: every candidate the strategy would consider, its features at the candidate bar and
what the exit policy would have made of it (exit_sim.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
import pandas_ta_classic as ta

from models.exit_sim import EXIT_REASONS, ExitPolicy, adverse_excursion, realised_r
from models.features import FEATURE_NAMES, FeatureParams, feature_frames


class TrainingError(ValueError):
    """Not enough data to train or validate; the message says what is missing."""


@dataclass
class Dataset:
    X: pd.DataFrame
    r: np.ndarray  # realised R, net of costs
    reason: np.ndarray  # index into EXIT_REASONS
    times: pd.DatetimeIndex
    symbols: np.ndarray
    bar_pos: np.ndarray  # position of each candidate's bar on the timeline
    timeline: pd.DatetimeIndex
    pos: np.ndarray  # position of each candidate's bar in its symbol's frame
    mae: np.ndarray  # how far below its entry the price went within the horizon (fraction)
    winner: np.ndarray  # closed the horizon above its entry
    sources: dict = field(repr=False, default_factory=dict)  # symbol -> (bars, ATR14) the trades are replayed on

    @property
    def y(self) -> np.ndarray:
        """1 for a trade that made money net of costs: what AUC is measured against."""
        return (self.r > 0).astype(float)

    def exits(self) -> dict[str, int]:
        return {name: int((self.reason == k).sum()) for k, name in enumerate(EXIT_REASONS)}

    def replay(self, rows: np.ndarray, policy: ExitPolicy,
               stop_pcts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(realised R, exit reason) of the candidates at `rows` (indices) under `policy`, with their own stop
        distances when given (STOP_MODE=model)."""
        r, why = np.full(len(rows), np.nan), np.full(len(rows), -1)
        for sym in np.unique(self.symbols[rows]):
            mine = self.symbols[rows] == sym
            df, atr = self.sources[sym]
            out = realised_r(df, atr, self.pos[rows][mine], policy, None if stop_pcts is None else stop_pcts[mine])
            r[mine], why[mine] = out[0], out[2]
        return r, why

    def stop_distance(self, rows: np.ndarray, policy: ExitPolicy) -> np.ndarray:
        """The stop distance (fraction of the price) the policy's fixed or ATR levels give each candidate."""
        if policy.stop_mode != "atr":
            return np.full(len(rows), policy.stop_pct)
        out = np.full(len(rows), np.nan)
        for sym in np.unique(self.symbols[rows]):
            mine = self.symbols[rows] == sym
            df, atr = self.sources[sym]
            pos = self.pos[rows][mine]
            out[mine] = policy.atr_stop_mult * atr[pos] / df["close"].to_numpy(dtype=float)[pos]
        return out

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
    parts, sources = [], {}
    # with STOP_MODE=model the stops come from a model fitted per fold (train.py); the rows and the summary use
    # the fixed stops until then
    base = replace(policy, stop_mode="fixed") if policy.stop_mode == "model" else policy
    for sym, f in feats.items():
        df = bars[sym][bars[sym].index < hi]
        f = f[f.index < hi]
        atr = ta.atr(df["high"].astype(float), df["low"].astype(float), df["close"].astype(float), length=14)
        atr = atr.to_numpy(dtype=float) if atr is not None else np.full(len(df), np.nan)
        complete = f.notna().all(axis=1).to_numpy()
        pos = np.flatnonzero((f["rsi"].to_numpy() < oversold) & complete & (f.index >= lo))
        r, _, reason = realised_r(df, atr, pos, base)
        mae, winner = adverse_excursion(df, pos, policy.horizon_bars)
        keep = np.isfinite(r) & np.isfinite(mae)
        if keep.any():
            sources[sym] = (df, atr)
            parts.append(pd.DataFrame({"symbol": sym, "r": r[keep], "reason": reason[keep],
                                       "pos": pos[keep], "mae": mae[keep], "winner": winner[keep]},
                                      index=f.index[pos[keep]]).join(f.iloc[pos[keep]]))
    if not parts:
        raise TrainingError(f"no candidates (RSI < {oversold:g} with complete features and {policy.horizon_bars} "
                            f"bars after them) between {start} and {end}; use a longer window or more symbols.")
    data = pd.concat(parts).rename_axis("time").reset_index().sort_values(["time", "symbol"], kind="stable")
    times = pd.DatetimeIndex(data["time"])
    return Dataset(X=data[list(FEATURE_NAMES)].reset_index(drop=True), r=data["r"].to_numpy(dtype=float),
                   reason=data["reason"].to_numpy(), times=times,
                   symbols=data["symbol"].to_numpy(), bar_pos=timeline.get_indexer(times), timeline=timeline,
                   pos=data["pos"].to_numpy(), mae=data["mae"].to_numpy(dtype=float),
                   winner=data["winner"].to_numpy(dtype=bool), sources=sources)
