"""Concurrency, gross exposure and orders per iteration: limits on what one iteration may add."""

from trading.risk.verdict import Verdict


def max_positions(held: int, approved: int, limit: int) -> Verdict:
    if limit <= 0 or held + approved < limit:
        return Verdict.allow()
    return Verdict.deny("concurrency", f"{held + approved} positions already (MAX_POSITIONS={limit})")


def gross_exposure(long_value: float, notional: float, equity: float, limit_pct: float) -> Verdict:
    """Resize an entry to the room left under MAX_GROSS_EXPOSURE_PCT of equity, or deny it."""
    if limit_pct <= 0 or notional <= 0:
        return Verdict.allow()
    room = limit_pct * equity - long_value
    if notional <= room:
        return Verdict.allow()
    if room <= 0:
        return Verdict.deny("exposure", f"long exposure {long_value / equity:.0%} is at the {limit_pct:.0%} cap")
    return Verdict.resize("exposure", f"only ${room:,.0f} left under the {limit_pct:.0%} exposure cap", room / notional)


def orders_per_iteration(approved: int, limit: int) -> Verdict:
    if limit <= 0 or approved < limit:
        return Verdict.allow()
    return Verdict.deny("orders_per_iteration", f"{approved} new orders already this iteration "
                        f"(MAX_ORDERS_PER_ITERATION={limit})")
