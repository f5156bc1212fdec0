"""Order construction: the only place that turns a decision into prices and share counts.

Every order built here is one Alpaca accepts (../shared/reference/alpaca-rules.md):
- brackets and OCOs carry whole shares (fractional orders must be simple DAY orders, A3/A5);
- prices sit on valid increments: 2 decimals at or above $1, 4 below (A7, sub-penny rule);
- a buy bracket's take-profit is at least $0.01 above, and its stop at least $0.01 below, the entry
  reference price (A3, "base_price"); an OCO's stop is at least $0.01 below its take-profit;
- time in force is GTC for protective orders and brackets (allowed for both), DAY for plain market
  orders; outside the regular session only DAY limit orders flagged extended_hours, never brackets (A6).
The value objects validate themselves, so an invalid order cannot exist. Builders return either an
order or a `Refusal` with the reason, never raise for ordinary market conditions.
"""

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal

CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")
ONE = Decimal("1")

Session = Literal["regular", "extended"]


class InvalidOrder(ValueError):
    """Raised by an order value object whose fields break an Alpaca rule (a programming error)."""


@dataclass(frozen=True)
class Refusal:
    """No order: the reason says why, in words a trader understands."""

    symbol: str
    reason: str


# ---------------------------------------------------------------------------------------------- prices
def tick_for(price: Decimal) -> Decimal:
    return CENT if price >= ONE else SUB_DOLLAR_TICK


def to_tick(price: float | Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to the valid increment for the price's own level (2 dp at or above $1, else 4 dp)."""
    d = Decimal(str(price))
    q = d.quantize(tick_for(d), rounding=rounding)
    if q >= ONE and q.as_tuple().exponent < -2:  # a 4-dp price that rounded up across $1: written 1.00, not
        q = q.quantize(CENT, rounding=rounding)  # 1.0000 (Decimal equality would call the two the same)
    return q


def is_valid_increment(price: Decimal) -> bool:
    return price > 0 and price == price.quantize(tick_for(price))


# ---------------------------------------------------------------------------------------------- orders
def _check_whole(qty: int, what: str) -> None:
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
        raise InvalidOrder(f"{what} needs a whole number of shares >= 1, got {qty!r}")


def _check_price(p: Decimal, name: str) -> None:
    if not isinstance(p, Decimal) or not is_valid_increment(p):
        raise InvalidOrder(f"{name}={p} is not a valid price increment")


@dataclass(frozen=True)
class BracketOrder:
    """Market buy with a GTC take-profit limit leg and a stop-loss leg (Alpaca order_class=bracket)."""

    symbol: str
    qty: int
    reference_price: Decimal  # the market price the leg gaps are checked against
    take_profit: Decimal
    stop_loss: Decimal
    client_order_id: str
    time_in_force: str = "gtc"
    side = "buy"  # long entries only

    def __post_init__(self) -> None:
        _check_whole(self.qty, "a bracket order")
        _check_price(self.take_profit, "take_profit.limit_price")
        _check_price(self.stop_loss, "stop_loss.stop_price")
        if self.take_profit < self.reference_price + CENT:
            raise InvalidOrder(f"take-profit {self.take_profit} is not >= reference {self.reference_price} + 0.01")
        if self.stop_loss > self.reference_price - CENT:
            raise InvalidOrder(f"stop {self.stop_loss} is not <= reference {self.reference_price} - 0.01")
        if self.time_in_force not in ("day", "gtc"):
            raise InvalidOrder("bracket orders must be day or gtc")

    @property
    def notional(self) -> float:
        return float(self.reference_price) * self.qty


@dataclass(frozen=True)
class OcoOrder:
    """Exit-only pair for a held long: a take-profit sell limit and a sell stop; one fill cancels the other."""

    symbol: str
    qty: int
    take_profit: Decimal
    stop_loss: Decimal
    client_order_id: str
    time_in_force: str = "gtc"
    side = "sell"  # protects a long

    def __post_init__(self) -> None:
        _check_whole(self.qty, "an OCO order")
        _check_price(self.take_profit, "take_profit.limit_price")
        _check_price(self.stop_loss, "stop_loss.stop_price")
        if self.stop_loss > self.take_profit - CENT:
            raise InvalidOrder(f"OCO stop {self.stop_loss} is not <= take-profit {self.take_profit} - 0.01")


@dataclass(frozen=True)
class MarketOrder:
    """A plain DAY market order (software stop, trim, hedge unwind). DAY also makes a fractional
    quantity acceptable, so closing a fractional position sells all of it."""

    symbol: str
    qty: float
    side: Literal["buy", "sell"]
    client_order_id: str
    time_in_force: str = "day"

    def __post_init__(self) -> None:
        if not (self.qty > 0 and math.isfinite(self.qty)) or round(self.qty, 9) != self.qty:
            raise InvalidOrder(f"a market order needs a positive quantity with at most 9 decimals, got {self.qty!r}")
        if self.time_in_force != "day":
            raise InvalidOrder("market orders are sent DAY (fractional quantities must be DAY)")


@dataclass(frozen=True)
class LimitOrder:
    """A DAY limit order; the only kind placed outside the regular session (extended_hours=True)."""

    symbol: str
    qty: int
    side: Literal["buy", "sell"]
    limit_price: Decimal
    client_order_id: str
    extended_hours: bool = False
    time_in_force: str = "day"

    def __post_init__(self) -> None:
        _check_whole(self.qty, "a limit order")
        _check_price(self.limit_price, "limit_price")
        if self.extended_hours and self.time_in_force != "day":
            raise InvalidOrder("extended hours order must be DAY limit orders")


@dataclass(frozen=True)
class StopUpdate:
    """Move a resting stop leg to a new price (an in-place replace: the position stays protected)."""

    symbol: str
    order_id: str
    stop_price: Decimal
    client_order_id: str

    def __post_init__(self) -> None:
        _check_price(self.stop_price, "stop_price")


Order = BracketOrder | OcoOrder | MarketOrder | LimitOrder | StopUpdate


# ---------------------------------------------------------------------------------------------- builders
def protective_levels(entry_price: float, stop_pct: float, target_pct: float) -> tuple[Decimal, Decimal]:
    """Stop and take-profit prices for an entry, on valid increments. The stop rounds down and the
    target up, so rounding moves each leg away from the entry by less than one tick, never closer."""
    stop = to_tick(entry_price * (1 - stop_pct), ROUND_FLOOR)
    target = to_tick(entry_price * (1 + target_pct), ROUND_CEILING)
    return stop, target


def shares_for(budget_usd: float, price: float) -> int:
    """Whole shares that `budget_usd` buys at `price` (0 when it buys none)."""
    if not (math.isfinite(budget_usd) and budget_usd > 0 and price > 0):
        return 0
    return math.floor(budget_usd / price + 1e-9)


def build_bracket(symbol: str, reference_price: float, qty: int, stop: Decimal, target: Decimal, cid: str,
                  session: Session = "regular") -> BracketOrder | Refusal:
    """A whole-share bracket buy of `qty` with legs at `stop` and `target`, moved out to the cent gaps
    Alpaca requires around the reference price, or the reason there is none."""
    if session != "regular":
        return Refusal(symbol, "brackets are not allowed outside the regular session")
    if not (reference_price > 0 and math.isfinite(reference_price)):
        return Refusal(symbol, f"no usable price ({reference_price})")
    if qty < 1:
        return Refusal(symbol, f"less than one whole share fits (one share costs ${reference_price:,.2f}; "
                               "brackets need whole shares)")
    ref = to_tick(reference_price)
    target = to_tick(max(target, ref + CENT), ROUND_CEILING)
    stop = to_tick(min(stop, ref - CENT), ROUND_FLOOR)
    if stop <= 0:
        return Refusal(symbol, f"price ${reference_price} is too low for a stop below it")
    return BracketOrder(symbol, int(qty), ref, target, stop, cid)


def build_bracket_for_budget(symbol: str, reference_price: float, budget_usd: float, stop_pct: float,
                             target_pct: float, cid: str, session: Session = "regular") -> BracketOrder | Refusal:
    """A bracket spending at most `budget_usd`, legs at fixed percentages (hedges, tests)."""
    if not (reference_price > 0 and math.isfinite(reference_price)):
        return Refusal(symbol, f"no usable price ({reference_price})")
    if not (math.isfinite(budget_usd) and budget_usd > 0):
        return Refusal(symbol, f"no cash to spend (${budget_usd:,.2f})")
    qty = shares_for(budget_usd, reference_price)
    if qty < 1:
        return Refusal(symbol, f"one share costs ${reference_price:,.2f} but only ${budget_usd:,.2f} is available "
                               "(brackets need whole shares)")
    stop, target = protective_levels(reference_price, stop_pct, target_pct)
    return build_bracket(symbol, reference_price, qty, stop, target, cid, session)


def build_oco(symbol: str, qty: float, last_price: float, stop_price: Decimal, target_price: Decimal,
              cid: str) -> OcoOrder | Refusal:
    """Protection for `qty` held shares at the given levels, valid against the current price."""
    whole = math.floor(qty + 1e-9)
    if whole < 1:
        return Refusal(symbol, f"{qty:g} shares: less than one whole share cannot carry an OCO")
    if not (last_price > 0 and math.isfinite(last_price)):
        return Refusal(symbol, f"no usable price ({last_price})")
    last = to_tick(last_price)
    if stop_price > last - CENT:
        return Refusal(symbol, f"stop {stop_price} is not below the price {last}")
    if target_price < last + CENT:
        return Refusal(symbol, f"take-profit {target_price} is not above the price {last}")
    if stop_price <= 0:
        return Refusal(symbol, "stop price must be above zero")
    return OcoOrder(symbol, whole, to_tick(target_price), to_tick(stop_price), cid)


EXTENDED_LIMIT_SLIPPAGE = 0.005  # a marketable limit outside the session: 0.5% through the last price
MIN_FRACTIONAL_USD = 1.0  # Alpaca's minimum for a fractional order (A5)
DUST_SHARES = 1e-6  # a remainder this small is rounding residue, never an order
# Alpaca checks a market buy against buying power at a price collar above the last price (F5-25): a cash
# account spending its last dollar at the last price is refused, so buys budget this much above it
MARKET_BUY_COLLAR = 0.04


def build_market(symbol: str, qty: float, side: Literal["buy", "sell"], cid: str, session: Session = "regular",
                 price: float | None = None) -> MarketOrder | LimitOrder | Refusal:
    """A DAY market order for `qty` shares (fractions kept to 9 decimals, Alpaca's precision). Outside the
    regular session Alpaca takes only DAY limit orders flagged extended_hours: then a limit 0.5% through
    the last price, for the whole shares."""
    q = round(float(qty), 9)
    if not q > 0:
        return Refusal(symbol, f"nothing to {side} ({qty:g} shares)")
    if q == int(q):
        q = int(q)
    elif q < DUST_SHARES or (price is not None and math.isfinite(price) and q * price < MIN_FRACTIONAL_USD):
        return Refusal(symbol, f"{q:g} sh is dust (Alpaca refuses a fractional order worth under "
                               f"${MIN_FRACTIONAL_USD:g}); left as it is")
    if session == "extended":
        whole = math.floor(q + 1e-9)
        if whole < 1 or price is None or not (price > 0 and math.isfinite(price)):
            return Refusal(symbol, "outside the regular session only whole-share limit orders with a price are allowed")
        factor = 1 - EXTENDED_LIMIT_SLIPPAGE if side == "sell" else 1 + EXTENDED_LIMIT_SLIPPAGE
        limit = to_tick(price * factor, ROUND_FLOOR if side == "sell" else ROUND_CEILING)
        return LimitOrder(symbol, whole, side, limit, cid, extended_hours=True)
    return MarketOrder(symbol, q, side, cid)


def request_fields(order: Order) -> dict:
    """The order in Alpaca's field names: what the journal records as sent (and dry runs print)."""
    if isinstance(order, StopUpdate):
        return {"replace": order.order_id, "stop_price": str(order.stop_price), "symbol": order.symbol,
                "client_order_id": order.client_order_id}
    base = {"symbol": order.symbol, "qty": order.qty, "time_in_force": order.time_in_force,
            "client_order_id": order.client_order_id}
    legs = {}
    if isinstance(order, BracketOrder | OcoOrder):
        legs = {"take_profit": {"limit_price": str(order.take_profit)},
                "stop_loss": {"stop_price": str(order.stop_loss)}}
    if isinstance(order, BracketOrder):
        return {**base, "side": "buy", "type": "market", "order_class": "bracket", **legs}
    if isinstance(order, OcoOrder):
        return {**base, "side": "sell", "type": "limit", "order_class": "oco", "limit_price": str(order.take_profit),
                **legs}
    if isinstance(order, LimitOrder):
        return {**base, "side": order.side, "type": "limit", "order_class": "simple",
                "limit_price": str(order.limit_price), "extended_hours": order.extended_hours}
    return {**base, "side": order.side, "type": "market", "order_class": "simple"}
