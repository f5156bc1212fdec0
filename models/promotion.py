"""Champion against challenger on identical candidates: does the new model's gate make more than the old one's?

Both models judge the same candidates of the most recent window (after the champion's training window,
so neither has seen them: the challenger scored here is trained only on bars before the window). Each
applies its own gate (its expected-R threshold, ENSEMBLE_AGREEMENT, MAX_UNCERTAINTY), and the score is
the realised R its gate would have taken per candidate offered (skipping a loser is worth as much as
taking a winner). The gain's 95% interval comes from a bootstrap over days (one market moves a day's
candidates together), and a challenger is promoted only when the gain is at least PROMOTE_MIN_GAIN and
its interval lies above zero: one lucky week does not replace a model. It must also beat the two trivial gates
(every candidate, none) the same way: a model worth running knows more than the base rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.ensemble import failed_gates
from models.evaluation import DayBootstrap, fmt_ci

MIN_WINDOW_CANDIDATES = 50  # fewer: the duel is postponed to a later retrain (the window grows)
TRIVIAL = ("taking every candidate", "taking none")


def gate_passes(estimator, X, threshold: float, gates: dict) -> np.ndarray:
    """Which candidates the model's gate takes, as the bot's entry step decides it."""
    a = estimator.assess(X, threshold)
    return failed_gates(a.expected_r, a.agreement, a.uncertainty, threshold, gates.get("ensemble_agreement", 0.0),
                        gates.get("max_uncertainty", 0.0)) == ""


@dataclass(frozen=True)
class Duel:
    window: tuple[str, str]
    n: int
    days: int
    champion: str
    challenger: str
    champion_r: float  # realised R per candidate offered, under the champion's gate
    challenger_r: float
    champion_taken: int
    challenger_taken: int
    gain: float
    gain_ci: tuple[float, float]

    def describe(self) -> str:
        return (f"on the {self.n} candidates of {self.window[0]} .. {self.window[1]} ({self.days} days) the "
                f"{self.challenger} took {self.challenger_taken} and made {self.challenger_r:+.3f}R per candidate, "
                f"{self.champion} took {self.champion_taken} and made {self.champion_r:+.3f}R: gain "
                f"{fmt_ci(self.gain, self.gain_ci, '+.3f')}R")

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}


def duel(r: np.ndarray, days: np.ndarray, champion_passes: np.ndarray, challenger_passes: np.ndarray,
         names: tuple[str, str], window: tuple[str, str], seed: int = 0) -> Duel:
    """Score both gates on the same candidates (`r`: their realised R; `days`: the day of each)."""
    r = np.asarray(r, dtype=float)
    a, b = np.asarray(champion_passes, dtype=bool), np.asarray(challenger_passes, dtype=bool)

    def gain(rr, aa, bb):
        return float((rr * bb).mean() - (rr * aa).mean()) if len(rr) else math.nan

    ci = DayBootstrap(days, seed=seed).interval(gain, r, a, b)
    return Duel(window, len(r), len(np.unique(days)), names[0], names[1], float((r * a).mean()),
                float((r * b).mean()), int(a.sum()), int(b.sum()), gain(r, a, b), ci)


def verdict(duels: list[Duel], min_gain: float) -> tuple[bool, str]:
    """(promote?, why), in one line a trader can read. The challenger must win every duel: against the champion,
    and against the trivial gates (every candidate, none), so a model that only learned the base rate (a placebo
    on shuffled labels) is never installed."""
    for d in duels:
        lo = d.gain_ci[0]
        if not d.gain >= min_gain:
            return False, f"not promoted: {d.describe()}, below PROMOTE_MIN_GAIN {min_gain:g}"
        if not (math.isfinite(lo) and lo > 0):
            return False, (f"not promoted: {d.describe()}; the gain's 95% interval reaches zero (it may "
                           "be luck)")
    return True, f"promoted: {duels[0].describe()} (>= PROMOTE_MIN_GAIN {min_gain:g}, interval above zero)"
