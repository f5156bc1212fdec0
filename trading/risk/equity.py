"""Equity as the risk rules see it: confirmed readings, start-of-day and -week values, peaks.

A reading that moves more than EQUITY_JUMP_PCT from the last confirmed one (one bad tick, a broker
hiccup) is held back: the rules keep using the previous value until the next reading agrees with the
jump, so a single bad number can never trip a halt.
"""

from dataclasses import dataclass, field
from datetime import datetime

EPS = 1e-9  # a move of exactly EQUITY_JUMP_PCT (110000 / 100000 - 1 = 0.10000000000000009) is not more than it


@dataclass
class EquityTracker:
    confirmed: float | None = None
    pending: float | None = None
    day: str | None = None
    day_start: float | None = None
    week: str | None = None
    week_start: float | None = None
    peak: float | None = None
    daily_highs: list = field(default_factory=list)  # [[day, highest confirmed equity], ...]

    def observe(self, now: datetime, equity: float, jump_pct: float, recent_days: int) -> str | None:
        """Take a reading; returns a note when it was held back or confirmed after a jump."""
        note = None
        if self.confirmed is None or abs(equity / self.confirmed - 1) <= jump_pct + EPS:
            self.confirmed, self.pending = equity, None
        elif self.pending is not None and abs(equity / self.pending - 1) <= jump_pct + EPS:
            note = f"equity {equity:,.2f} confirms the jump from {self.confirmed:,.2f}"
            self.confirmed, self.pending = equity, None
        else:
            self.pending = equity
            return (f"equity reading {equity:,.2f} is {equity / self.confirmed - 1:+.1%} from {self.confirmed:,.2f}: "
                    "not used until the next reading confirms it")
        e = self.confirmed
        iso = now.isocalendar()
        day, week = now.date().isoformat(), f"{iso[0]}-W{iso[1]:02d}"
        if day != self.day:
            self.day, self.day_start = day, e
            self.daily_highs = [*self.daily_highs, [day, e]][-recent_days:]
        if week != self.week:
            self.week, self.week_start = week, e
        self.daily_highs[-1][1] = max(self.daily_highs[-1][1], e)
        self.peak = e if self.peak is None else max(self.peak, e)
        return note

    @property
    def recent_peak(self) -> float | None:
        return max((h for _, h in self.daily_highs), default=None)

    def reset_recent_peak(self) -> None:
        """After the circuit breaker trips, measure the next drop from here, not from the old peak."""
        self.daily_highs = [[d, self.confirmed] for d, _ in self.daily_highs]

    def as_dict(self) -> dict:
        return {**self.__dict__, "daily_highs": [list(h) for h in self.daily_highs]}
