"""Fixed, ATR and model stops compared on the same out-of-sample candidates, fold by fold.

Each fold fits the stop model (stop_model.py) on its training window's winners and replays its test
candidates three ways: the fixed bracket (STOP_LOSS_PCT), ATR multiples (ATR_STOP_MULT) and the model's
stops within their bounds. Reported per way: the average realised R (what a trade earns when every trade
risks the same amount, as the bot sizes them), the average return per trade (R x the stop distance: what
it earns per dollar invested), how many trades the stop ended, and the average stop distance; intervals
from a bootstrap over days.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.dataset import Dataset
from models.evaluation import DayBootstrap, mean
from models.exit_sim import ExitPolicy
from models.stop_model import MIN_WINNERS, StopModel

MODES = ("fixed", "atr", "model")


class StopComparison:
    def __init__(self, ds: Dataset, policy: ExitPolicy, bounds: tuple[float, float]):
        self.ds, self.policy, self.bounds = ds, policy, bounds
        self.rows: list[np.ndarray] = []
        self.results: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {m: [] for m in MODES}

    def fit(self, rows: np.ndarray, seed: int = 0) -> StopModel | None:
        """The stop model fitted on the winners among `rows`, or None when there are too few of them."""
        won = rows[self.ds.winner[rows]]
        if len(won) < MIN_WINNERS:
            return None
        return StopModel(seed=seed).fit(self.ds.X.iloc[won], self.ds.mae[won])

    def distances(self, rows: np.ndarray, model: StopModel) -> np.ndarray:
        return np.clip(model.predict(self.ds.X.iloc[rows]), *self.bounds)

    def labels(self, rows: np.ndarray, model: StopModel) -> np.ndarray:
        """Realised R of `rows` with the model's stops (STOP_MODE=model labels)."""
        return self.ds.replay(rows, replace(self.policy, stop_mode="model"), self.distances(rows, model))[0]

    def fold(self, train_rows: np.ndarray, test_rows: np.ndarray, seed: int = 0) -> StopModel | None:
        """Fit this fold's stop model and replay its test candidates the three ways; returns the model."""
        model = self.fit(train_rows, seed)
        if model is None:
            return None
        self.rows.append(test_rows)
        for mode in MODES:
            pol = replace(self.policy, stop_mode=mode)
            dist = self.distances(test_rows, model) if mode == "model" else self.ds.stop_distance(test_rows, pol)
            r, why = self.ds.replay(test_rows, pol, dist if mode == "model" else None)
            self.results[mode].append((r, why, dist))
        return model

    def report(self) -> dict:
        if not self.rows:
            return {}
        rows = np.concatenate(self.rows)
        boot = DayBootstrap(self.ds.times[rows].normalize().asi8)
        out = {"candidates": len(rows), "bounds": list(self.bounds)}
        for mode in MODES:
            r, why, dist = (np.concatenate(parts) for parts in zip(*self.results[mode], strict=True))
            ok = np.isfinite(r)
            ret = np.where(ok, r * dist, np.nan)
            out[mode] = {"n": int(ok.sum()), "avg_r": mean(r), "avg_r_ci": boot.interval(mean, r),
                         "avg_return": mean(ret), "avg_return_ci": boot.interval(mean, ret),
                         "stopped": float((why[ok] == 0).mean()) if ok.any() else float("nan"),
                         "avg_stop": mean(dist[ok])}
        return out

