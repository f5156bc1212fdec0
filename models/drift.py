"""Feature drift: are the candidates the bot scores now drawn from what the model was trained on?

Training stores, per feature, the decile edges of its training candidates and the share of them in each bin
(`reference`, written into the card). Live, the population stability index of the recent candidates against
those shares (`psi`, summed over bins of (now - then) x ln(now / then)) says how far each feature has moved.
The usual reading, used here: below 0.1 stable, 0.1 .. 0.25 worth watching, 0.25 and above drifted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PSI_WATCH, PSI_DRIFT = 0.1, 0.25
MIN_ROWS = 100  # fewer recent candidates than this say nothing reliable about a distribution of ten bins
BINS = 10
_FLOOR = 1e-4  # an empty bin counts as this share, so one empty bin cannot make the index infinite


def reference(x: pd.DataFrame, bins: int = BINS) -> dict[str, dict]:
    """{feature: {"edges": interior bin edges, "shares": share of training rows per bin}} from training rows."""
    out = {}
    for name in x.columns:
        values = x[name].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        out[name] = {"edges": edges.tolist(), "shares": _shares(values, edges).tolist()}
    return out


def psi(ref: dict, values: np.ndarray) -> float:
    """Population stability index of `values` against one feature's reference (NaN without finite values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan")
    expected = np.maximum(np.asarray(ref["shares"], dtype=float), _FLOOR)
    actual = np.maximum(_shares(values, np.asarray(ref["edges"], dtype=float)), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class DriftReport:
    rows: int
    psi: dict[str, float]  # feature -> index, largest first

    @property
    def drifted(self) -> dict[str, float]:
        return {k: v for k, v in self.psi.items() if v >= PSI_DRIFT}

    @property
    def watch(self) -> dict[str, float]:
        return {k: v for k, v in self.psi.items() if PSI_WATCH <= v < PSI_DRIFT}

    def describe(self) -> str:
        def names(d: dict[str, float]) -> str:
            return ", ".join(f"{k} {v:.2f}" for k, v in list(d.items())[:5])

        head = f"model inputs over the last {self.rows} candidates (PSI against training):"
        if self.drifted:
            return (f"{head} {len(self.drifted)} of {len(self.psi)} features drifted (>= {PSI_DRIFT}): "
                    f"{names(self.drifted)}; the model scores a market it was not trained on: retrain "
                    "(python -m models.train)")
        if self.watch:
            return f"{head} stable but {len(self.watch)} worth watching (>= {PSI_WATCH}): {names(self.watch)}"
        return f"{head} stable (every feature below {PSI_WATCH})"


def drift_report(ref: dict[str, dict], x: pd.DataFrame, min_rows: int = MIN_ROWS) -> DriftReport | None:
    """PSI per feature of the rows in `x` against the card's reference; None with fewer than `min_rows` rows or
    no reference."""
    if not ref or len(x) < min_rows:
        return None
    scores = {name: psi(ref[name], x[name].to_numpy()) for name in x.columns if name in ref}
    ranked = dict(sorted(((k, v) for k, v in scores.items() if np.isfinite(v)), key=lambda kv: -kv[1]))
    return DriftReport(len(x), ranked)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)
