"""How much of a result is luck: the deflated Sharpe ratio (Bailey and Lopez de Prado, 2014) of a sweep's chosen
trial, the probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey, Borwein,
Lopez de Prado and Zhu, 2015) over all trials' daily returns, and a block-bootstrap interval for one curve's
annualised Sharpe ratio (what a goal such as "Sharpe at least 1.0" can and cannot tell over a few years)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

EULER = 0.5772156649015329


def sharpe(returns: np.ndarray) -> float:
    """Per-period (daily) Sharpe ratio, not annualised."""
    sd = returns.std(ddof=1) if len(returns) > 1 else 0.0
    return float(returns.mean() / sd) if sd > 0 else 0.0


def sharpe_interval(daily_returns: np.ndarray, level: float = 0.95, block: int = 20, resamples: int = 2000,
                    seed: int = 0, periods: int = 252) -> tuple[float, float]:
    """(low, high) of the annualised Sharpe ratio by a moving-block bootstrap: blocks of `block` consecutive days
    keep a month's autocorrelation and volatility clusters. Seeded, so a table is reproducible. NaNs when there
    are fewer than two blocks of returns."""
    x = np.asarray(daily_returns, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2 * block or np.std(x) == 0:  # too short, or flat: no Sharpe to put an interval on
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    sample = x[idx]
    sd = sample.std(axis=1, ddof=1)
    sr = np.where(sd > 0, sample.mean(axis=1) / np.where(sd > 0, sd, 1.0), 0.0) * math.sqrt(periods)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(sr, [tail, 100 - tail])
    return float(lo), float(hi)


def deflated_sharpe(best: np.ndarray, trial_sharpes: list[float]) -> float:
    """Probability that the best trial's true Sharpe exceeds what the best of N trials with no skill would show
    (N = number of trials, their Sharpe variance from `trial_sharpes`)."""
    n, t = len(trial_sharpes), len(best)
    if n < 2 or t < 3:
        return math.nan
    sr = sharpe(best)
    var = float(np.var(trial_sharpes, ddof=1))
    sr0 = math.sqrt(max(var, 0.0)) * ((1 - EULER) * stats.norm.ppf(1 - 1 / n)
                                       + EULER * stats.norm.ppf(1 - 1 / (n * math.e)))
    skew = float(stats.skew(best)) if best.std() > 0 else 0.0
    kurt = float(stats.kurtosis(best, fisher=False)) if best.std() > 0 else 3.0
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr * sr
    if denom <= 0:
        return math.nan
    return float(stats.norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(denom)))


def pbo(returns: pd.DataFrame, blocks: int = 8) -> float:
    """Probability of backtest overfitting: over every split of the rows (days) into `blocks` chunks, half
    in-sample and half out, how often the in-sample best trial (column) ranks in the bottom half out of sample."""
    m = returns.dropna(how="all").fillna(0.0).to_numpy()
    t, n = m.shape
    if n < 2 or t < blocks * 2:
        return math.nan
    chunks = np.array_split(np.arange(t), blocks)
    below = total = 0
    for ins in itertools.combinations(range(blocks), blocks // 2):
        is_rows = np.concatenate([chunks[i] for i in ins])
        oos_rows = np.concatenate([chunks[i] for i in range(blocks) if i not in ins])
        is_sr = np.array([sharpe(m[is_rows, j]) for j in range(n)])
        oos_sr = np.array([sharpe(m[oos_rows, j]) for j in range(n)])
        best = int(np.argmax(is_sr))
        rank = stats.rankdata(oos_sr)[best] / (n + 1)  # relative rank of the IS winner out of sample
        below += math.log(rank / (1 - rank)) <= 0
        total += 1
    return below / total
