"""How good the gate is, out of sample, with the uncertainty of every figure.

Candidates on the same day move together (one market), so intervals come from a bootstrap over days
(every candidate of a drawn day comes along), not over candidates: resampling correlated rows one by
one would print intervals that are too narrow.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

N_BOOT = 400
MIN_PASS_SHARE, MIN_PASSED = 0.10, 20


class DayBootstrap:
    """Resamples of row indices, drawn by day, shared by every statistic so their intervals line up."""

    def __init__(self, days: np.ndarray, n_boot: int = N_BOOT, seed: int = 0):
        codes = np.unique(np.asarray(days), return_inverse=True)[1]
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        groups = np.split(order, bounds)
        rng = np.random.default_rng(seed)
        self.samples = [np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])
                        for _ in range(n_boot)] if len(groups) else []

    def interval(self, stat, *arrays: np.ndarray) -> tuple[float, float]:
        """The 2.5% and 97.5% quantiles of stat(*arrays[sample]) over the resamples (NaN ones dropped)."""
        values = [stat(*(a[s] for a in arrays)) for s in self.samples]
        values = np.array([v for v in values if v is not None and math.isfinite(v)])
        if len(values) < 10:
            return math.nan, math.nan
        return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def auc(score: np.ndarray, y: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else math.nan


def mean(r: np.ndarray) -> float:
    """The mean of the finite values (a candidate without a label counts for nothing); NaN when none."""
    r = np.asarray(r, dtype=float)
    r = r[np.isfinite(r)]
    return float(r.mean()) if len(r) else math.nan


def choose_threshold(expected: np.ndarray, r: np.ndarray) -> float | None:
    """The expected-R threshold whose passed candidates had the best average realised R, among thresholds that
    pass at least 10% and 20 candidates, if that average is positive and beats taking every candidate; None
    when none does (a threshold that only loses less is no edge: the gate then stays at expected R >= 0)."""
    if len(r) < MIN_PASSED:
        return None
    best, best_r = None, max(mean(r), 0.0)
    for thr in np.unique(np.round(np.quantile(expected, np.linspace(0.0, 0.9, 37)), 4)):
        passed = expected >= thr
        if passed.mean() < MIN_PASS_SHARE or passed.sum() < MIN_PASSED:
            continue
        avg = mean(r[passed])
        if avg > best_r + 1e-12:
            best, best_r = float(thr), avg
    return best


def gate_report(score: np.ndarray, r: np.ndarray, passed: np.ndarray, boot: DayBootstrap) -> dict:
    """AUC of `score` against r > 0 and the average R of passed against rejected candidates, each with its
    day-bootstrap 95% interval and count."""
    y = (r > 0).astype(float)
    out = {"n": len(r), "auc": auc(score, y), "auc_ci": boot.interval(auc, score, y),
           "n_passed": int(passed.sum()), "pass_share": float(passed.mean()) if len(r) else math.nan}
    for name, mask in (("passed", passed), ("rejected", ~passed)):
        out[f"avg_r_{name}"] = mean(r[mask])
        out[f"avg_r_{name}_ci"] = boot.interval(lambda rr, m: mean(rr[m]), r, mask)
    out["avg_r_all"] = mean(r)
    return out


def fmt_ci(value: float, ci: tuple[float, float], spec: str = "+.2f") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    lo, hi = ci
    inner = f" [{lo:{spec}}, {hi:{spec}}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{value:{spec}}{inner}"
