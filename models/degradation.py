"""Has the model's edge decayed? Its live trades against what its walk-forward record promised.

Training records the realised R of the out-of-sample candidates its gate passed (`expectation`: mean, standard
deviation, count; written into the card). Live, the trades entered since the model was trained are compared with
that record: the model counts as degraded when at least MODEL_WATCH_MIN_TRADES have closed and their average R is
below the record's mean by more than Z_BAND standard errors (a one-sided band: with trades like the record's, a
false alarm about one time in forty; a few losses in a row do not reach it, a run of them does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_BAND = 2.0
WINDOW = 50  # the most recent trades judged: an edge that decayed shows in them before it shows in all


def expectation(r_passed: np.ndarray) -> dict:
    """The card's record of what passed candidates made out of sample."""
    r = np.asarray(r_passed, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return {"mean": None, "sd": None, "n": len(r)}
    return {"mean": float(r.mean()), "sd": float(r.std(ddof=1)), "n": len(r)}


@dataclass(frozen=True)
class Verdict:
    degraded: bool
    n: int
    mean: float
    floor: float  # the lowest average the band allows for n trades
    expected: float

    def describe(self) -> str:
        head = (f"the last {self.n} trades since the model was trained averaged {self.mean:+.2f}R; its out-of-sample "
                f"record promised {self.expected:+.2f}R (lowest believable for {self.n} trades: {self.floor:+.2f}R)")
        return head + (": its edge has decayed" if self.degraded else ": within the record")


def judge(record: dict, results: list[float], min_trades: int, window: int = WINDOW) -> Verdict | None:
    """None while fewer than `min_trades` results (or the card has no record); else the verdict on the last
    `window` results."""
    if record.get("mean") is None or record.get("sd") is None:
        return None
    recent = [r for r in results if r is not None and math.isfinite(r)][-window:]
    if len(recent) < max(min_trades, 1):
        return None
    n = len(recent)
    mean = float(np.mean(recent))
    floor = record["mean"] - Z_BAND * record["sd"] / math.sqrt(n)
    return Verdict(mean < floor, n, mean, floor, record["mean"])
