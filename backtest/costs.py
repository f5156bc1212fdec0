"""Costs in backtests: Alpaca's regulatory fees through Lumibot's own fee model (`TradingFee`), and adverse
slippage on market and stop fills; limit fills keep their price. Both are tallied for the summary.

Fees (settings SEC_FEE_PER_MILLION, FINRA_TAF_PER_SHARE, CAT_FEE_PER_SHARE): the SEC fee on the value sold, the
FINRA trading activity fee per share sold, the CAT fee per share bought or sold. TAF's $8.30-per-trade cap binds
only above 50,000 shares and `TradingFee` has no cap, so it is not modelled (a larger sale is overcharged).

Slippage (SLIPPAGE_BPS, SLIPPAGE_ATR_FRACTION): a market or stop fill moves against the order by a fixed number of
basis points of its price plus a fraction of the symbol's ATR (14 bars, through the bar before the fill: the
cost model uses nothing the trader could not have known). Lumibot fills a market order at the bar's open and a
stop at its price (or the open past a gap); the slipped price replaces it before Lumibot books the fill, so
positions, cash, the journal's fills and every R carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from trading.settings import Settings

ATR_BARS = 14
SLIPPED_TYPES = {"market", "stop", "trailing_stop"}


@dataclass
class CostTally:
    """What the costs took from the run, in USD."""

    fees: float = 0.0
    slippage: float = 0.0
    slipped_fills: int = 0
    fee_fills: int = 0


@dataclass
class BacktestCosts:
    enabled: bool
    sec_fee_per_million: float
    taf_per_share: float
    cat_per_share: float
    slippage_bps: float
    slippage_atr_fraction: float
    atr: dict[str, pd.Series] = field(default_factory=dict, repr=False)  # ATR through the bar before each bar
    tally: CostTally = field(default_factory=CostTally)

    @classmethod
    def from_settings(cls, settings: Settings, frames: dict[str, pd.DataFrame]) -> BacktestCosts:
        """`frames`: the indicator frames of trading.indicators.market_frames (their ATR14 column)."""
        costs = cls(settings.backtest_costs, settings.sec_fee_per_million, settings.finra_taf_per_share,
                    settings.cat_fee_per_share, settings.slippage_bps, settings.slippage_atr_fraction)
        if costs.enabled and costs.slippage_atr_fraction > 0:  # through the bar before: known before the fill
            costs.atr = {sym: f["atr"].shift(1) for sym, f in frames.items() if "atr" in f}
        return costs

    def describe(self) -> str:
        if not self.enabled:
            return "costs off (BACKTEST_COSTS=false): gross figures"
        return (f"fees: SEC ${self.sec_fee_per_million:g}/$1M sold, TAF ${self.taf_per_share:g}/share sold, CAT "
                f"${self.cat_per_share:g}/share; slippage on market and stop fills: {self.slippage_bps:g} bp + "
                f"{self.slippage_atr_fraction:g} x ATR({ATR_BARS})")

    def trading_fees(self) -> tuple[list, list]:
        """(buy fees, sell fees) as Lumibot's TradingFee lists for run_backtest."""
        from lumibot.entities import TradingFee

        if not self.enabled:
            return [], []
        buy = [TradingFee(per_contract_fee=self.cat_per_share)] if self.cat_per_share else []
        sell = [TradingFee(percent_fee=self.sec_fee_per_million / 1e6,
                           per_contract_fee=self.taf_per_share + self.cat_per_share)]
        return buy, sell

    def slipped(self, symbol: str, side: str, order_type: str, price: float, when) -> float:
        """The fill price after slippage (worse for the order: higher for a buy, lower for a sell)."""
        if not self.enabled or order_type not in SLIPPED_TYPES or price <= 0:
            return price
        amount = price * self.slippage_bps / 1e4
        series = self.atr.get(symbol)
        if series is not None and self.slippage_atr_fraction > 0:
            atr = series.asof(pd.Timestamp(when)) if len(series) else float("nan")
            if pd.notna(atr):
                amount += self.slippage_atr_fraction * float(atr)
        amount = min(amount, price * 0.5)  # a cost model, never a price at or below zero
        return price + amount if side == "buy" else price - amount

    def install(self, broker) -> None:
        """Route the backtesting broker's fills through the slippage model and tally fees and slippage. Lumibot
        builds its backtesting broker inside run_backtest and has no slippage model for market or stop orders,
        so its one fill method is wrapped on this instance."""
        if not self.enabled or getattr(broker, "_costs_installed", False):
            return
        book = broker._execute_filled_order

        def execute_filled_order(order, price, filled_quantity, strategy):
            side = "buy" if order.is_buy_order() else "sell"
            kind = str(getattr(order.order_type, "value", order.order_type)).lower()
            new_price = self.slipped(order.asset.symbol, side, kind, float(price), broker.datetime)
            if new_price != price:
                self.tally.slippage += abs(new_price - float(price)) * float(filled_quantity)
                self.tally.slipped_fills += 1
            book(order=order, price=new_price, filled_quantity=filled_quantity, strategy=strategy)
            cost = float(getattr(order, "trade_cost", 0.0) or 0.0)
            if cost:
                self.tally.fees += cost
                self.tally.fee_fills += 1

        broker._execute_filled_order = execute_filled_order
        broker._costs_installed = True

