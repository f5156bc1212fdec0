"""Entry size: risk per trade over the stop distance, scaled by confidence, capped; whole shares.

shares = RISK_PER_TRADE_PCT x equity x confidence factor / (entry - stop), then capped by the Kelly
cap (when enough trades are closed), the per-entry limit (MAX_ENTRY_PCT of equity) and the cash
available, rounded down. The confidence factor is 1.5 at confidence >= 0.85, 0.5 below 0.6 when the
threshold lets such entries through, else 1. With VOL_TARGET_PCT the risk is also scaled by the target over
SPY's annualised 20-bar realised volatility (within VOL_SCALE_BOUNDS): smaller in turbulent markets, larger in
calm ones, so the book's volatility follows the target rather than the market. The risk controller may shrink
the result further (losing streak, recovery mode, exposure), never grow it.
"""

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache

from trading.orders import protective_levels, to_tick

HIGH_CONFIDENCE, LOW_CONFIDENCE = 0.85, 0.6
VOL_SCALE_BOUNDS = (0.25, 2.0)  # a quiet month never more than doubles the risk; a crash quarters it at most


@dataclass(frozen=True)
class Size:
    qty: int
    risk_usd: float  # the risk budget this size was computed from
    why: str


def confidence_factor(confidence: float, threshold: float) -> float:
    if confidence >= HIGH_CONFIDENCE:
        return 1.5
    if confidence < LOW_CONFIDENCE and threshold < LOW_CONFIDENCE:
        return 0.5
    return 1.0


def bracket_levels(price: float, s, atr: float | None,
                   stop_pct: float | None = None) -> tuple[Decimal, Decimal] | None:
    """(stop, target) for a new entry: fixed percentages, ATR multiples in atr mode (None without ATR), or the
    stop model's distance within its bounds in model mode (None without one), the target the fixed bracket's
    reward multiple of it."""
    if s.stop_mode == "atr":
        if atr is None or not math.isfinite(atr) or atr <= 0:
            return None
        return (to_tick(price - s.atr_stop_mult * atr, ROUND_FLOOR), to_tick(price + s.atr_target_mult * atr,
                                                                              ROUND_CEILING))
    if s.stop_mode == "model":
        if stop_pct is None or not math.isfinite(stop_pct):
            return None
        d = min(max(stop_pct, s.stop_model_min_pct), s.stop_model_max_pct)
        return protective_levels(price, d, d * s.take_profit_pct / s.stop_loss_pct)
    return protective_levels(price, s.stop_loss_pct, s.take_profit_pct)


def vol_scale(s, market_vol: float) -> tuple[float, str]:
    """(factor on the risk per trade, why) from VOL_TARGET_PCT and SPY's annualised realised volatility; 1 when
    off or unknown."""
    if s.vol_target_pct <= 0:
        return 1.0, ""
    if not (math.isfinite(market_vol) and market_vol > 0):
        return 1.0, "no SPY volatility yet: unscaled"
    low, high = VOL_SCALE_BOUNDS
    factor = min(max(s.vol_target_pct / market_vol, low), high)
    return factor, f"vol target {s.vol_target_pct:.0%} / SPY {market_vol:.0%} = x{factor:.2f}"


@lru_cache(maxsize=16)  # asked every iteration; the trades behind it change only when one closes
def kelly_fraction(r_multiples: tuple[float, ...]) -> float | None:
    """Kelly f = p - (1 - p) / b from R multiples, or None without both wins and losses."""
    wins = [r for r in r_multiples if r > 0]
    losses = [-r for r in r_multiples if r < 0]
    if not wins or not losses:
        return None
    p = len(wins) / len(r_multiples)
    b = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
    return p - (1 - p) / b


def kelly_risk_cap(r_multiples: list[float], s, equity: float) -> tuple[float | None, str]:
    """Cap on the USD risked per trade from the closed trades' R multiples, or None (no cap yet / off).
    Kelly f = p - (1 - p) / b with p the win rate and b the average win over the average loss (in R);
    the cap is KELLY_FRACTION x f of equity. Without a measured edge (f <= 0) entries shrink to a
    quarter of the normal risk rather than stop, so a strategy can still show that it recovered."""
    if s.kelly_fraction <= 0 or len(r_multiples) < s.kelly_min_trades:
        return None, ""
    f = kelly_fraction(tuple(r_multiples))
    if f is None:
        return None, ""
    base = s.risk_per_trade_pct * equity
    if f <= 0:
        return 0.25 * base, f"Kelly cap: no edge, quarter risk (Kelly {f:+.2f} over {len(r_multiples)} trades)"
    return s.kelly_fraction * f * equity, f"Kelly cap: {s.kelly_fraction:g} x Kelly {f:.1f} " \
        f"(over {len(r_multiples)} trades)"


def entry_size(s, equity: float, price: float, stop: float, confidence: float, cash_available: float,
               kelly_cap_usd: float | None = None, market_vol: float = math.nan) -> Size:
    if not (price > 0 and stop < price and equity > 0):
        return Size(0, 0.0, "no risk distance")
    factor = confidence_factor(confidence, s.confidence_threshold)
    scale, scaled = vol_scale(s, market_vol)
    risk = s.risk_per_trade_pct * equity * factor * scale
    notes = [f"risk {s.risk_per_trade_pct:.1%} x {factor:g}"] + ([scaled] if scaled else [])
    if kelly_cap_usd is not None and kelly_cap_usd < risk:
        risk = kelly_cap_usd
        notes.append("Kelly cap")
    by_risk = math.floor(risk / (price - stop) + 1e-9)
    by_limit = math.floor(min(s.max_entry_pct * equity, max(cash_available, 0.0)) / price + 1e-9)
    qty = max(0, min(by_risk, by_limit))
    if by_limit < by_risk:
        notes.append("capped by entry limit/cash")
    return Size(qty, risk, ", ".join(notes))
