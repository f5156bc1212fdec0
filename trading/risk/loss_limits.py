"""Daily and weekly loss limits, measured from start-of-day and start-of-week equity."""

from datetime import datetime, timedelta

from trading.risk.equity import EquityTracker
from trading.risk.verdict import Hold, Mode

EPS = 1e-9  # "reaches the limit" includes exactly at it, despite float division

def daily_loss(now: datetime, eq: EquityTracker, limit_pct: float) -> Hold | None:
    """REDUCING until the next day when the day's loss reaches the limit."""
    if limit_pct <= 0 or not eq.day_start or eq.confirmed is None:
        return None
    loss = 1 - eq.confirmed / eq.day_start
    if loss < limit_pct - EPS:
        return None
    until = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    return Hold(Mode.REDUCING, "daily_loss", f"down {loss:.1%} today (limit {limit_pct:.0%})", until)


def weekly_loss(now: datetime, eq: EquityTracker, limit_pct: float) -> Hold | None:
    """HALTED until next Monday when the week's loss reaches the limit."""
    if limit_pct <= 0 or not eq.week_start or eq.confirmed is None:
        return None
    loss = 1 - eq.confirmed / eq.week_start
    if loss < limit_pct - EPS:
        return None
    monday = now.date() + timedelta(days=7 - now.weekday())
    until = datetime.combine(monday, datetime.min.time(), tzinfo=now.tzinfo)
    return Hold(Mode.HALTED, "weekly_loss", f"down {loss:.1%} this week (limit {limit_pct:.0%})", until)
