"""Size factors: a losing streak and recovery mode each halve new entries until they end."""

from trading.risk.equity import EquityTracker
from trading.risk.loss_limits import EPS
from trading.risk.verdict import Verdict

FACTOR = 0.5


def losing_streak(results: list[float], streak: int) -> Verdict:
    """After `streak` losing trades in a row (the last ones), halve entries until a win."""
    if streak <= 0 or len(results) < streak or any(r > 0 for r in results[-streak:]):
        return Verdict.allow()
    return Verdict.resize("losing_streak", f"{streak} losing trades in a row", FACTOR)


def recovery(eq: EquityTracker, drawdown_pct: float) -> Verdict:
    """While the drawdown from the peak exceeds the threshold, halve entries."""
    if drawdown_pct <= 0 or not eq.peak or eq.confirmed is None:
        return Verdict.allow()
    dd = 1 - eq.confirmed / eq.peak
    if dd <= drawdown_pct + EPS:  # "exceeds": exactly at the threshold is not yet recovery mode
        return Verdict.allow()
    return Verdict.resize("recovery", f"{dd:.1%} below the peak (recovery mode above {drawdown_pct:.0%})", FACTOR)
