"""The meta-model's ensemble: three model families that each predict a candidate's realised R.

Members differ in kind, so their disagreement says something about how sure the ensemble is:
- `lgbm`: LightGBM gradient boosting (the design names it): non-linear, fits interactions;
- `linear`: a ridge regression on standardised features: smooth, hard to overfit;
- `forest`: extra randomised trees: non-linear, averaged, robust to noisy features.
Every member gets the K-Means volatility-regime feature from the same step (fitted on training rows only).

For each candidate the ensemble gives the expected R (the members' mean), the agreement (the share of
members whose prediction is at least the gate's threshold) and the uncertainty (the members' standard
deviation, in R). The target is clipped to [R_CLIP_LOW, R_CLIP_HIGH] for fitting: a handful of gap days
would otherwise decide a least-squares fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.features import VolRegime

MEMBERS = ("lgbm", "linear", "forest")
R_CLIP_LOW, R_CLIP_HIGH = -3.0, 5.0


def make_member(name: str, seed: int = 0):
    from sklearn.pipeline import Pipeline

    if name == "lgbm":
        from lightgbm import LGBMRegressor

        est = LGBMRegressor(n_estimators=200, learning_rate=0.03, num_leaves=15, min_child_samples=40,
                            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                            random_state=seed, n_jobs=1, verbose=-1)
    elif name == "linear":
        from sklearn.linear_model import Ridge
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("regime", VolRegime(random_state=seed)), ("scale", StandardScaler()),
                         ("est", Ridge(alpha=10.0))])
    elif name == "forest":
        from sklearn.ensemble import ExtraTreesRegressor

        est = ExtraTreesRegressor(n_estimators=200, min_samples_leaf=40, max_features=0.5, random_state=seed,
                                  n_jobs=1)
    else:
        raise ValueError(f"unknown ensemble member {name!r}; choose from {', '.join(MEMBERS)}")
    return Pipeline([("regime", VolRegime(random_state=seed)), ("est", est)])


@dataclass
class Assessment:
    """Per candidate: the ensemble's expected R, agreement and uncertainty, and each member's prediction."""

    expected_r: np.ndarray
    agreement: np.ndarray
    uncertainty: np.ndarray
    members: np.ndarray  # (candidates, members)

    def frame(self, index=None) -> pd.DataFrame:
        return pd.DataFrame({"expected_r": self.expected_r, "agreement": self.agreement,
                             "uncertainty": self.uncertainty}, index=index)


class Ensemble:
    """Fitted members predicting realised R; picklable with joblib (the card vouches for the file)."""

    def __init__(self, names: tuple[str, ...] = MEMBERS, seed: int = 0):
        self.names, self.seed = tuple(names), seed
        self.members_: list = []

    def fit(self, X: pd.DataFrame, r: np.ndarray) -> Ensemble:
        target = np.clip(np.asarray(r, dtype=float), R_CLIP_LOW, R_CLIP_HIGH)
        self.members_ = [make_member(name, self.seed).fit(X, target) for name in self.names]
        return self

    def predict_members(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([m.predict(X) for m in self.members_])

    def assess(self, X: pd.DataFrame, threshold: float) -> Assessment:
        return assess_predictions(self.predict_members(X), threshold)


def assess_predictions(preds: np.ndarray, threshold: float) -> Assessment:
    preds = np.atleast_2d(np.asarray(preds, dtype=float))
    return Assessment(preds.mean(axis=1), (preds >= threshold).mean(axis=1), preds.std(axis=1), preds)
