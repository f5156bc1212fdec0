"""STOP_MODE=model: each entry's stop distance from a model of how deep eventual winners dip.

For every training candidate that closed its horizon above its entry (a winner), the maximum adverse
excursion (how far below the entry it went first, exit_sim.adverse_excursion) is the target of a LightGBM
quantile regression on the features: for a new candidate it predicts the dip that QUANTILE of similar
winners stayed within. The stop goes there, bounded by STOP_MODEL_MIN_PCT .. STOP_MODEL_MAX_PCT, and the
target keeps the fixed bracket's reward multiple (TAKE_PROFIT_PCT / STOP_LOSS_PCT) of it. Volatile names
get room, quiet ones a tight stop; the position size follows, as risk per trade is fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILE = 0.8
MIN_WINNERS = 50


class StopModel:
    def __init__(self, quantile: float = QUANTILE, seed: int = 0):
        self.quantile, self.seed = quantile, seed

    def fit(self, X: pd.DataFrame, mae: np.ndarray) -> StopModel:
        from lightgbm import LGBMRegressor

        if len(mae) < MIN_WINNERS:
            raise ValueError(f"{len(mae)} winning candidates to learn stops from; need {MIN_WINNERS}")
        self.est_ = LGBMRegressor(objective="quantile", alpha=self.quantile, n_estimators=150, learning_rate=0.05,
                                  num_leaves=7, min_child_samples=30, random_state=self.seed, n_jobs=1,
                                  verbose=-1).fit(X, mae)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The predicted stop distance, as a fraction of the price (unbounded: the caller applies its bounds)."""
        return np.clip(self.est_.predict(X), 0.0, None)

