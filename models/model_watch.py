"""The installed model, watched while it trades: drift of its inputs and decay of its edge, said once a day.

- inputs: the features of the last DRIFT_WINDOW candidates it scored, against the card's training deciles
  (models/drift.py);
- edge: the realised R of the trades entered since it was trained, against the card's out-of-sample record of
  what its gate passed (models/degradation.py);
- calibration: of those trades, the realised R against the expected R the model gave each at entry, by quantile
  bin and as a slope (models/calibration.py); a warning while realised R falls as expected R rises;
- action (MODEL_DEGRADED_ACTION): `warn` only says so; `stop` also blocks new entries while the edge is judged
  decayed, with the reason in the decision log (exits and protection go on); `fallback` judges new entries by
  the rule-based score instead of the model meanwhile.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.calibration import MIN_TRADES as CALIBRATION_MIN_TRADES
from models.calibration import Calibration
from models.calibration import calibration as read_calibration
from models.degradation import Verdict, judge
from models.drift import DriftReport, drift_report

logger = logging.getLogger("trader.model")
DRIFT_WINDOW = 500  # the recent candidates whose features are compared with training's
ACTIONS = ("warn", "stop", "fallback")


@dataclass
class ModelWatch:
    card: dict
    features: tuple[str, ...]
    action: str = "warn"  # MODEL_DEGRADED_ACTION
    min_trades: int = 20  # MODEL_WATCH_MIN_TRADES
    verdict: Verdict | None = None
    report: DriftReport | None = None  # the last daily drift reading (the status shows it; PSI is not free)
    calibration_min_trades: int = CALIBRATION_MIN_TRADES
    calibration: Calibration | None = None  # the last daily calibration reading
    _predictions: list | None = field(default=None, repr=False)  # (expected R at entry, realised R) of its trades
    _recent: deque = field(default_factory=lambda: deque(maxlen=DRIFT_WINDOW), repr=False)
    _day: object = None
    _said: dict = field(default_factory=dict)

    recorded: int = 0  # candidates recorded since this watch began (what a save compares with)

    def record(self, x: np.ndarray) -> None:
        """Features of candidates just scored (complete rows only)."""
        rows = np.asarray(x, dtype=float).tolist()
        self._recent.extend(rows)
        self.recorded += len(rows)

    def window(self) -> dict:
        """The recent candidates' features, as JSON, to keep across a restart or a model change."""
        return {"features": list(self.features), "rows": list(self._recent)}

    def restore(self, saved: dict | None) -> int:
        """Take back a saved window (older than what this watch recorded since) when its features are this
        model's, same names in the same order; returns the rows taken back."""
        if not isinstance(saved, dict) or list(saved.get("features") or ()) != list(self.features):
            return 0
        rows = [r for r in saved.get("rows") or () if isinstance(r, list) and len(r) == len(self.features)]
        room = DRIFT_WINDOW - len(self._recent)  # what this watch recorded since stays
        rows = rows[max(len(rows) - room, 0):]
        self._recent.extendleft(reversed(rows))  # the saved rows are older than anything recorded here
        return len(rows)

    def observe(self, results: list[float], predictions: list[tuple[float, float]] | None = None) -> Verdict | None:
        """R multiples of the trades entered since the model was trained, oldest first; `predictions`, when given,
        the (expected R at entry, realised R) pairs of those trades (Journal.entry_predictions_since), whose
        calibration the daily check reads."""
        self.verdict = judge(self.card.get("live_expectation") or {}, results, self.min_trades)
        if predictions is not None:
            self._predictions = list(predictions)
        return self.verdict

    def drift(self) -> DriftReport | None:
        """PSI of the recent candidates against the card's reference; None before enough candidates or for a card
        without one (trained before drift was recorded)."""
        ref = self.card.get("drift_reference") or {}
        return drift_report(ref, pd.DataFrame(list(self._recent), columns=list(self.features))) if ref else None

    def status(self) -> dict:
        """The readings for the status record (the API, the dashboard, check_positions_now.py), written every
        iteration: the drift as of the last daily check."""
        report, v = self.report, self.verdict
        drift = None if report is None else {"candidates": report.rows, "drifted": report.drifted,
                                             "watch": report.watch, "describe": report.describe()}
        edge = None if v is None else {"trades": v.n, "average_r": v.mean, "floor_r": v.floor,
                                       "expected_r": v.expected, "decayed": v.degraded, "describe": v.describe()}
        cal = None if self.calibration is None else self.calibration.as_dict()
        return {"action": self.action, "drift": drift, "edge": edge, "calibration": cal}

    def blocks(self) -> str | None:
        """Why new entries wait (MODEL_DEGRADED_ACTION=stop and the edge judged decayed), else None."""
        if self.action == "stop" and self.verdict is not None and self.verdict.degraded:
            return f"{self.verdict.describe()} (MODEL_DEGRADED_ACTION=stop)"
        return None

    def falls_back(self) -> bool:
        """MODEL_DEGRADED_ACTION=fallback and the edge judged decayed: the rule-based score judges entries."""
        return self.action == "fallback" and self.verdict is not None and self.verdict.degraded

    def daily(self, day) -> None:
        """Once a day: a warning while inputs have drifted, the edge has decayed or the calibration is inverted; an
        info line when a reading changes otherwise."""
        if self._day == day:
            return
        self._day = day
        self.report = report = self.drift()
        if report is not None:
            level = "drifted" if report.drifted else "watch" if report.watch else "stable"
            self._say("drift", level, level == "drifted", report.describe())
        if self.verdict is not None:
            self._say("edge", self.verdict.degraded, self.verdict.degraded, self.verdict.describe())
        if self._predictions is not None:
            self.calibration = cal = read_calibration(self._predictions, self.calibration_min_trades)
            if cal is not None:
                self._say("calibration", cal.trend, cal.inverted, cal.describe())

    def _say(self, what: str, reading, alarm: bool, text: str) -> None:
        if alarm:
            logger.warning(text)
        elif self._said.get(what) != reading:
            logger.info(text)
        self._said[what] = reading
