"""Entry confidence: a transparent rule-based score, or the meta-model when one is installed.

Both implement `ConfidenceModel.score(rows) -> probabilities`, called once per iteration with every
candidate (one batched call). The decision log says which one produced each number.
"""

from typing import Protocol

import numpy as np
import pandas as pd


class ConfidenceModel(Protocol):
    name: str  # "rule" or "model:<file>"

    def describe(self) -> str: ...

    def score(self, rows: pd.DataFrame) -> np.ndarray: ...

    def gate(self, now) -> str | None:
        """None when the model may be used now; otherwise the reason entries are blocked."""
        ...


class RuleConfidence:
    """confidence = 0.5 + 0.3 x depth + 0.2 x uptrend, between 0.5 and 1.0.

    depth   = how far RSI is below RSI_OVERSOLD, scaled so 15 points below (or more) counts fully;
    uptrend = 1 when the close is above its 200-bar average (a dip in an uptrend), else 0.
    With the defaults (oversold 30, threshold 0.6) a dip in an uptrend qualifies as soon as RSI < 30;
    against the trend RSI must fall below 25.
    """

    name = "rule"
    FULL_DEPTH_POINTS = 15.0

    def __init__(self, rsi_oversold: float):
        self.rsi_oversold = rsi_oversold

    def describe(self) -> str:
        return ("rule-based score 0.5 + 0.3 x RSI depth below oversold (full at 15 points) "
                "+ 0.2 if above the 200-bar average")

    def gate(self, now) -> str | None:
        return None

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        rsi = rows["rsi"].to_numpy(dtype=float)
        depth = np.clip((self.rsi_oversold - rsi) / self.FULL_DEPTH_POINTS, 0.0, 1.0)
        close = rows["close"].to_numpy(dtype=float)
        trend = rows["trend"].to_numpy(dtype=float)
        uptrend = np.where(np.isfinite(trend) & (close > trend), 1.0, 0.0)
        out = 0.5 + 0.3 * depth + 0.2 * uptrend
        return np.where(np.isfinite(rsi), out, np.nan)
