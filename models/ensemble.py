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


class Ensemble:
    """Fitted members predicting realised R; picklable with joblib (the card vouches for the file)."""

    def __init__(self, names: tuple[str, ...] = MEMBERS, seed: int = 0):
        self.names, self.seed = tuple(names), seed
        self.members_: list = []
        self.stop_model_ = None  # STOP_MODE=model: set by training (models/stop_model.py)

    def fit(self, X: pd.DataFrame, r: np.ndarray) -> Ensemble:
        target = np.clip(np.asarray(r, dtype=float), R_CLIP_LOW, R_CLIP_HIGH)
        self.members_ = [make_member(name, self.seed).fit(X, target) for name in self.names]
        return self

    def predict_members(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([m.predict(X) for m in self.members_])

    def assess(self, X: pd.DataFrame, threshold: float) -> Assessment:
        return assess_predictions(self.predict_members(X), threshold)


def assess_predictions(preds: np.ndarray, threshold) -> Assessment:
    """`threshold`: one number, or one per candidate (each walk-forward fold is judged with its own)."""
    preds = np.atleast_2d(np.asarray(preds, dtype=float))
    thr = np.asarray(threshold, dtype=float)
    agree = (preds >= (thr[:, None] if thr.ndim else thr)).mean(axis=1)
    return Assessment(preds.mean(axis=1), agree, preds.std(axis=1), preds)


def failed_gates(expected_r, agreement, uncertainty, threshold, min_agreement: float,
                 max_uncertainty: float) -> np.ndarray:
    """The gate each candidate fails first ("expected_r", "agreement", "uncertainty"), or "" when it passes: the
    one rule the bot's entry step and the training report both apply. NaN never passes; max_uncertainty 0 is
    off."""
    er, ag, un = (np.asarray(x, dtype=float) for x in (expected_r, agreement, uncertainty))
    with np.errstate(invalid="ignore"):
        low = ~(er >= threshold)
        split = ~(ag >= min_agreement)
        wide = ~(un <= max_uncertainty) if max_uncertainty > 0 else np.zeros(er.shape, dtype=bool)
    return np.select([low, split, wide], ["expected_r", "agreement", "uncertainty"], "")
