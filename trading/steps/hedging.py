"""Step 3: hedge with an inverse ETF when the bellwethers are broadly overbought, unwind when calm.

breadth = share of bellwethers (with data) whose RSI is above RSI_OVERBOUGHT.
- breadth >= BEARISH_THRESHOLD and no hedge: buy an inverse ETF with a bracket, sized to
  MAX_INVERSE_ALLOCATION less TRIM_BUFFER_PCT of the portfolio (and at most the cash above MIN_CASH_RESERVE);
  with HEDGE_BOOK_RATIO > 0, to that multiple of the long book over the ETF's leverage, within the same cap:
  a hedge that offsets what is held instead of a bet against the market when little is held;
- breadth < BEARISH_EXIT_THRESHOLD with a hedge: cancel its legs and sell it (unwind);
- in between: keep what is there. The gap between the two thresholds stops the hedge flapping;
- breadth reaching HEDGE_LEVERAGED_BREADTH while the 1x ETF is held: sell it, and buy the 3x ETF once
  the sale has filled (the hedge escalates; it does not step back down until it is unwound).

Which ETF (the documented rule):
- breadth >= HEDGE_LEVERAGED_BREADTH (extreme) and ENABLE_LEVERAGED_HEDGE: a 3x ETF, the tech one
  (SQQQ) when at least HEDGE_TECH_SHARE of the long book is in NASDAQ_SYMBOLS, else the S&P 500 one (SPXS);
- otherwise the general 1x ETF (SH).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import MARKET_BUY_COLLAR, Refusal, build_bracket_for_budget, build_market
from trading.settings import Settings
from trading.snapshot import Snapshot


@dataclass(frozen=True)
class Breadth:
    ratio: float  # NaN when no bellwether has data
    overbought: dict[str, float]
    measured: dict[str, float]
    missing: tuple[str, ...]

    def describe(self) -> str:
        if not self.measured:
            return "no bellwether data"
        names = ", ".join(f"{k} {v:.0f}" for k, v in self.overbought.items()) or "none"
        text = f"{len(self.overbought)}/{len(self.measured)} bellwethers overbought ({names}) = {self.ratio:.0%}"
        if self.missing:
            text += f"; no data for {', '.join(self.missing)}"
        return text


def measure_breadth(rsi_values: Mapping[str, float], bellwethers: tuple[str, ...], overbought: float) -> Breadth:
    """`rsi_values`: {symbol: RSI of its last completed bar} (Snapshot.rsi_values)."""
    measured, missing = {}, []
    for sym in bellwethers:
        rsi = rsi_values.get(sym, math.nan)
        if rsi is None or not math.isfinite(rsi):
            missing.append(sym)
        else:
            measured[sym] = float(rsi)
    hot = {k: v for k, v in measured.items() if v > overbought}
    ratio = len(hot) / len(measured) if measured else math.nan
    return Breadth(ratio, hot, measured, tuple(missing))


LEVERAGE = {"general": 1, "sp500": 3, "tech": 3}  # the roles of INVERSE_ETFS: SH is 1x, SPXS and SQQQ 3x


def long_book(snap: Snapshot, s: Settings) -> dict[str, float]:
    """Value of each long stock position (inverse ETFs are the hedge, not the book)."""
    return {sym: v for sym in snap.holdings if sym not in s.inverse_symbols for v in [snap.value(sym)] if v > 0}


def choose_inverse(breadth: float, snap: Snapshot, s: Settings) -> tuple[str, str]:
    """(symbol, why) per the rule in the module docstring."""
    if s.enable_leveraged_hedge and breadth >= s.hedge_leveraged_breadth:
        book = long_book(snap, s)
        total = sum(book.values())
        tech = sum(v for sym, v in book.items() if sym in s.nasdaq_symbols)
        share = tech / total if total > 0 else 0.0
        if total > 0 and share >= s.hedge_tech_share:
            return s.inverse_etfs["tech"], f"extreme breadth and {share:.0%} of the long book in Nasdaq names"
        return s.inverse_etfs["sp500"], f"extreme breadth, long book {share:.0%} Nasdaq"
    return s.inverse_etfs["general"], "1x hedge"


def hedge_target_pct(s: Settings) -> float:
    """A new hedge is sized to the cap less the trim buffer: bought at the cap itself, the first uptick of
    the ETF would trim it (cancelling and re-placing its legs) an hour later."""
    return s.max_inverse_allocation - min(s.trim_buffer_pct, s.max_inverse_allocation / 2)


def hedge_budget(symbol: str, snap: Snapshot, s: Settings) -> tuple[float, str]:
    """(USD, how it was sized) for a new hedge in `symbol`, before the cash limit."""
    cap = hedge_target_pct(s) * snap.portfolio_value
    if s.hedge_book_ratio <= 0:
        return cap, "sized to the cap"
    role = next((r for r, sym in s.inverse_etfs.items() if sym == symbol), "general")
    book = sum(long_book(snap, s).values())
    want = s.hedge_book_ratio * book / LEVERAGE.get(role, 1)
    if want >= cap:
        return cap, f"{s.hedge_book_ratio:g} x the ${book:,.0f} long book / {LEVERAGE.get(role, 1)}x, held to the cap"
    return want, f"{s.hedge_book_ratio:g} x the ${book:,.0f} long book / {LEVERAGE.get(role, 1)}x"


def plan_hedge(snap: Snapshot, s: Settings, breadth: Breadth, cash_available: float, exiting: set[str],
               ids) -> list[Decision]:
    step = Step.HEDGE
    if s.max_inverse_allocation <= 0:
        return [Decision(step, None, "off", "hedging disabled (MAX_INVERSE_ALLOCATION=0)")]
    data = {"breadth": breadth.ratio}
    if not breadth.measured:
        return [Decision(step, None, "skip", "no bellwether RSI available: hedge unchanged", level="warning",
                         data=data)]
    inverse = set(s.inverse_symbols)
    held = sorted(sym for sym in snap.holdings if sym in inverse and snap.holdings[sym].qty > 0)
    pending = [o for o in snap.open_orders if o.symbol in inverse and o.is_entry]
    hedged = bool(held or pending)
    text = breadth.describe()

    if breadth.ratio >= s.bearish_threshold and not hedged:
        symbol, why = choose_inverse(breadth.ratio, snap, s)
        wanted, sizing = hedge_budget(symbol, snap, s)
        if wanted <= 0:
            return [Decision(step, None, "none", f"{text} >= {s.bearish_threshold:.0%} but no long book to hedge "
                             f"(HEDGE_BOOK_RATIO={s.hedge_book_ratio:g})", data=data)]
        budget = min(wanted, cash_available / (1 + MARKET_BUY_COLLAR))
        price = snap.price(symbol)
        order = build_bracket_for_budget(symbol, price, budget, s.stop_loss_pct, s.take_profit_pct,
                                         ids(symbol, "hedge"), snap.session)
        if isinstance(order, Refusal):
            return [Decision(step, symbol, "skip", f"{text} >= {s.bearish_threshold:.0%} but cannot hedge: "
                             f"{order.reason}", level="warning", data=data)]
        data.update(qty=order.qty, price=price, notional=order.notional)
        return [Decision(step, symbol, "hedge",
                         f"{text} >= {s.bearish_threshold:.0%}: buy {order.qty} {symbol} (${order.notional:,.0f}, "
                         f"{order.notional / snap.portfolio_value:.1%}, {sizing}; {why}), stop {order.stop_loss}, "
                         f"target {order.take_profit}",
                         Intent(IntentKind.HEDGE, symbol, (order,)), data=data)]

    general = s.inverse_etfs["general"]
    if (s.enable_leveraged_hedge and breadth.ratio >= s.hedge_leveraged_breadth and held == [general]
            and not pending and general not in exiting):
        # breadth went from high to extreme while the 1x hedge is on: sell it now, and the rule above buys the
        # 3x ETF once the sale has filled (its cash counts only then)
        h = snap.holdings[general]
        target, _ = choose_inverse(breadth.ratio, snap, s)
        sell = build_market(general, h.qty, "sell", ids(general, "unhedge"), snap.session, snap.price(general))
        why = f"{text} >= {s.hedge_leveraged_breadth:.0%}: escalate the hedge"
        if isinstance(sell, Refusal):
            return [_keep_legs(general, why, sell, data)]
        return [Decision(step, general, "unhedge",
                         f"{why}, sell {h.qty:g} {general} now; {target} (3x) is bought once the sale has filled",
                         Intent(IntentKind.UNHEDGE, general, (sell,), snap.protection(general).order_ids), data=data)]

    if breadth.ratio < s.bearish_exit_threshold and hedged:
        out = []
        for sym in held:
            if sym in exiting:
                continue
            h = snap.holdings[sym]
            prot = snap.protection(sym)
            sell = build_market(sym, h.qty, "sell", ids(sym, "unhedge"), snap.session, snap.price(sym))
            why = f"{text} < {s.bearish_exit_threshold:.0%}: unwind"
            if isinstance(sell, Refusal):
                out.append(_keep_legs(sym, why, sell, data))
                continue
            out.append(Decision(step, sym, "unhedge", f"{why}, sell {h.qty:g} {sym}",
                                Intent(IntentKind.UNHEDGE, sym, (sell,), prot.order_ids), data=data))
        for o in pending:
            out.append(Decision(step, o.symbol, "unhedge", f"{text} < {s.bearish_exit_threshold:.0%}: cancel the "
                                "unfilled hedge order", Intent(IntentKind.UNHEDGE, o.symbol, (), (o.order_id,)),
                                data=data))
        return out

    if hedged:
        names = ", ".join(held) or ", ".join(o.symbol for o in pending)
        value = sum(snap.value(sym) for sym in held)
        return [Decision(step, None, "hold", f"{text}: keep the hedge ({names}, "
                         f"{value / snap.portfolio_value:.1%} of portfolio) until breadth < "
                         f"{s.bearish_exit_threshold:.0%}", data=data)]
    return [Decision(step, None, "none", f"{text} < {s.bearish_threshold:.0%}: no hedge needed", data=data)]


def _keep_legs(sym: str, why: str, refusal: Refusal, data: dict) -> Decision:
    """No sale can be built now (extended session without a price, less than one whole share outside the
    session): the legs are not cancelled either, so the hedge keeps its stop until a sale can go out."""
    return Decision(Step.HEDGE, sym, "skip", f"{why}, but no valid sale now ({refusal.reason}): its protective "
                    "orders stay in place; the next iteration tries again", level="warning", data=data)
