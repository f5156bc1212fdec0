"""The starting book of the offline run: the account the bot takes over.

The design's story is a bot that inherits positions bought without protection. The default built-in
run starts the same way, so step 1 (protection, software stop, near-stop warning) and step 2 (a trim)
have something to do on day one: about 42% of a $100,000 account in four unprotected positions, the
rest in cash. `--book cash` starts from cash only.
"""

from dataclasses import dataclass

import pandas as pd

from marketdata.market import Market


@dataclass(frozen=True)
class LegacyPosition:
    symbol: str
    weight: float  # share of the starting portfolio value
    pnl: float  # unrealised P&L at the start, which fixes the cost basis
    story: str


LEGACY_BOOK = (
    LegacyPosition("AMD", 0.22, 0.35, "a winner grown to 22% of the account: protect, then trim to the cap"),
    LegacyPosition("TSLA", 0.08, -0.04, "down 4%, within 1.5 points of its stop: warn and protect"),
    LegacyPosition("JPM", 0.07, 0.03, "a small gain with no stop: protect"),
    LegacyPosition("XOM", 0.05, -0.062, "already past its -5% stop with nothing resting: software stop"),
)


@dataclass(frozen=True)
class StartingBook:
    cash: float
    quantities: dict[str, int]
    cost_basis: dict[str, float]
    notes: tuple[str, ...]


def starting_book(kind: str, market: Market, start: pd.Timestamp, total_value: float) -> StartingBook:
    if kind == "cash":
        return StartingBook(total_value, {}, {}, ("starting from cash only",))
    qty, cost, notes = {}, {}, []
    invested = 0.0
    for p in LEGACY_BOOK:
        if p.symbol not in market.bars:
            notes.append(f"legacy position {p.symbol} skipped: no data")
            continue
        price = market.price_at(p.symbol, start)
        n = int(p.weight * total_value // price)
        if n < 1:
            continue
        qty[p.symbol] = n
        cost[p.symbol] = round(price / (1 + p.pnl), 2)
        invested += n * price
        notes.append(f"{p.symbol}: {n} sh, {p.pnl:+.1%} at the start, no protection ({p.story})")
    return StartingBook(total_value - invested, qty, cost, tuple(notes))
