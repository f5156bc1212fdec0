"""Circuit breaker: a loss of CIRCUIT_BREAKER_PCT from the recent peak pauses entries for a while."""

from datetime import datetime, timedelta

from trading.risk.equity import EquityTracker
from trading.risk.loss_limits import EPS
from trading.risk.verdict import Hold, Mode


def circuit_breaker(now: datetime, eq: EquityTracker, drop_pct: float, hours: float) -> Hold | None:
    peak = eq.recent_peak
    if drop_pct <= 0 or not peak or eq.confirmed is None:
        return None
    drop = 1 - eq.confirmed / peak
    if drop < drop_pct - EPS:
        return None
    return Hold(Mode.REDUCING, "circuit_breaker",
                f"down {drop:.1%} from the recent peak {peak:,.0f} (limit {drop_pct:.0%}): entries paused {hours:g} h",
                now + timedelta(hours=hours))
