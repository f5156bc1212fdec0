"""Is the model's expected R worth ranking by, live? Realised R against the expected R it gave at entry.

The meta-model predicts an expected R (the realised R multiple of the bot's exit policy), not a probability, so
its calibration is read as a regression: for the closed trades it let in since it was trained, pairs of (expected R
at entry, realised R), oldest first (Journal.entry_predictions_since).

- bins: the trades sorted by expected R and cut into equal-count groups (by quantile) - deciles from
  DECILES_FROM trades on, quintiles below - each with its count, mean expected and mean realised R: does the
  realised R of the top bin beat the bottom's, and does each bin's realised R match what was expected of it?
- slope: least squares of realised on expected R (1 would be perfectly calibrated, 0 no relation, below 0
  inverted: the trades it liked most did worst);
- the slope's standard error is the heteroscedasticity-robust (White, HC1) one: realised R is bounded by the stop
  below and spread out above, so the plain textbook error would be too small where the noise is largest. The
  reading is `inverted` only when the slope is below 0 by more than Z_BAND standard errors (one-sided: a model
  with no relation at all is called inverted about one time in forty; a few bad trades at the top do not do it),
  `rises` when above 0 by as much, `flat` otherwise (too noisy, or no relation).

Nothing is judged below `min_trades` (None): with trades' R as noisy as they are, fewer say little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_BAND = 2.0
DECILES_FROM = 100  # trades from which the bins are deciles (quintiles below)
MIN_TRADES = 50


@dataclass(frozen=True)
class Bin:
    n: int
    expected_lo: float
    expected_hi: float
    expected: float  # mean expected R
    realised: float  # mean realised R

    def as_dict(self) -> dict:
        return {"n": self.n, "expected_lo": self.expected_lo, "expected_hi": self.expected_hi,
                "expected_r": self.expected, "realised_r": self.realised}


@dataclass(frozen=True)
class Calibration:
    n: int
    bins: tuple[Bin, ...]
    slope: float | None  # None when the expected R hardly varies (no slope to fit)
    se: float | None  # its robust standard error
    mean_expected: float
    mean_realised: float

    @property
    def scheme(self) -> str:
        return "deciles" if len(self.bins) == 10 else "quintiles"

    @property
    def trend(self) -> str:
        """`rises`, `inverted` or `flat` (no slope, or within Z_BAND standard errors of none)."""
        if self.slope is None or self.se is None:
            return "flat"
        if self.slope - Z_BAND * self.se > 0:
            return "rises"
        if self.slope + Z_BAND * self.se < 0:
            return "inverted"
        return "flat"

    @property
    def inverted(self) -> bool:
        return self.trend == "inverted"

    def describe(self) -> str:
        unit = self.scheme[:-1]  # decile / quintile
        head = f"calibration over {self.n} trades ({self.scheme}): "
        if self.slope is None:
            body = f"expected R barely varies (all near {self.mean_expected:+.2f}R): no slope to judge"
        else:
            fit = f"slope {self.slope:+.2f}, standard error {self.se:.2f}"
            body = {"rises": f"realised R rises with expected R ({fit})",
                    "inverted": f"realised R FALLS as expected R rises ({fit}): the model's ranking is inverted",
                    "flat": f"no clear rise of realised R with expected R ({fit})"}[self.trend]
        top, bottom = self.bins[-1], self.bins[0]
        return (head + body + f"; overall {self.mean_realised:+.2f}R vs expected {self.mean_expected:+.2f}R; "
                f"top {unit} {top.realised:+.2f}R vs expected {top.expected:+.2f}R, "
                f"bottom {bottom.realised:+.2f}R vs {bottom.expected:+.2f}R")

    def as_dict(self) -> dict:
        """For the status record (JSON): plain floats, None for what is undefined."""
        return {"n": self.n, "scheme": self.scheme, "bins": [b.as_dict() for b in self.bins], "slope": self.slope,
                "se": self.se, "trend": self.trend, "inverted": self.inverted, "mean_expected_r": self.mean_expected,
                "mean_realised_r": self.mean_realised, "describe": self.describe()}


def slope_and_se(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Least-squares slope of y on x and its robust (HC1) standard error; (None, None) when x hardly varies."""
    n = len(x)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if n < 3 or sxx <= 1e-12 * n * max(1.0, float(np.abs(x).max()) ** 2):
        return None, None
    slope = float(dx @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * dx
    se = math.sqrt(n / (n - 2) * float((dx * dx) @ (resid * resid))) / sxx
    return slope, se


def calibration(pairs, min_trades: int = MIN_TRADES) -> Calibration | None:
    """The calibration of (expected R, realised R) pairs (non-finite ones dropped); None below `min_trades`."""
    a = np.asarray(list(pairs), dtype=float).reshape(-1, 2)
    a = a[np.isfinite(a).all(axis=1)]
    n = len(a)
    if n < max(min_trades, 2) or n < 5:
        return None
    x, y = a[:, 0], a[:, 1]
    order = np.argsort(x, kind="stable")
    k = 10 if n >= DECILES_FROM else 5
    bins = tuple(Bin(len(idx), float(x[idx].min()), float(x[idx].max()), float(x[idx].mean()),
                     float(y[idx].mean())) for idx in np.array_split(order, k))
    slope, se = slope_and_se(x, y)
    return Calibration(n, bins, slope, se, float(x.mean()), float(y.mean()))
