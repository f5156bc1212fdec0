"""CombinedStrategy: the Lumibot subclass. It only wires: gather a snapshot, plan, execute, record.

All decisions are plain functions in `trading/` (protect, trim, hedge, enter) over the snapshot.
Parameters (passed by the runner or the live launcher):
  settings        trading.settings.Settings (required)
  indicator_book  an IndicatorBook computed once per series (backtests); None live -> rolling window
  bar_period      bar length of the data (pandas Timedelta); default one hour
  scorer          a ConfidenceModel; default the rule-based score
  cost_basis      {symbol: price} for starting positions whose cost the broker does not know
"""

import logging
import math
import time

import pandas as pd
from lumibot.entities import Asset
from lumibot.entities import Order as LumiOrder
from lumibot.strategies import Strategy

from models.features import FEATURE_HISTORY_BARS, FeatureParams
from models.meta_model import MetaModel
from trading.confidence import RuleConfidence
from trading.decision_log import DecisionLog
from trading.indicators import MIN_HISTORY_BARS, IndicatorBook, completed_bars, market_frames
from trading.intents import Intent, IntentKind
from trading.ledger import Fill, Ledger
from trading.orders import BracketOrder, LimitOrder, MarketOrder, OcoOrder
from trading.planner import plan_iteration
from trading.settings import Settings
from trading.snapshot import Holding, OpenOrder, Snapshot

logger = logging.getLogger("trader.strategy")

ROLE_OF_KIND = {IntentKind.PROTECT: "protect", IntentKind.EXIT: "exit", IntentKind.TRIM: "trim",
                IntentKind.HEDGE: "hedge", IntentKind.UNHEDGE: "unhedge", IntentKind.ENTER: "entry"}
CANCEL_WAIT_SECONDS = 10.0


class CombinedStrategy(Strategy):
    parameters: dict = {}

    def initialize(self) -> None:
        p = self.parameters
        self.settings: Settings = p["settings"]
        self.sleeptime = p.get("sleeptime") or self.settings.sleeptime
        self.book: IndicatorBook | None = p.get("indicator_book")
        self.bar_period = pd.Timedelta(p.get("bar_period") or pd.Timedelta(hours=1))
        self.scorer = p.get("scorer") or RuleConfidence(self.settings.rsi_oversold)
        self.features = FeatureParams.from_settings(self.settings) if isinstance(self.scorer, MetaModel) else None
        self.cost_basis: dict[str, float] = dict(p.get("cost_basis") or {})
        self.decision_log = DecisionLog()
        self.ledger = Ledger()
        self.symbols = self.settings.all_symbols(benchmarks=())
        self.iterations = 0
        now = self.get_datetime()
        self.decision_log.note(now, "plan", f"CombinedStrategy starts: every {self.sleeptime}, confidence from "
                               f"{self.scorer.describe()}")
        for sym, cost in self.cost_basis.items():
            pos = self.get_position(sym)
            if pos is not None and float(pos.quantity) > 0:
                self.ledger.open_lot(sym, float(pos.quantity), cost, now, "legacy")

    # ------------------------------------------------------------------ the iteration
    def on_trading_iteration(self) -> None:
        snap = self.gather_snapshot()
        plan = plan_iteration(snap, self.settings, self.scorer, strategy_name="combined")
        for d in plan.decisions:
            self.decision_log.record(snap.now, d)
        for intent in plan.intents:
            self.execute(intent, snap)
        self.iterations += 1
        inverse = sum(snap.value(s) for s in snap.holdings if s in self.settings.inverse_symbols)
        long = sum(snap.value(s) for s in snap.holdings if s not in self.settings.inverse_symbols)
        self.ledger.sample(time=snap.now, portfolio_value=snap.portfolio_value, cash=snap.cash,
                           long_value=long, inverse_value=inverse, positions=len(snap.holdings))

    def gather_snapshot(self) -> Snapshot:
        now = self.get_datetime()
        market = self._market(now)
        holdings = {}
        for pos in self.get_positions():
            sym = pos.asset.symbol
            qty = float(pos.quantity)
            if qty == 0 or pos.asset.asset_type not in ("stock", Asset.AssetType.STOCK):
                continue
            cost = pos.avg_fill_price if pos.avg_fill_price else self.cost_basis.get(sym)
            holdings[sym] = Holding(sym, qty, float(cost) if cost else None)
        orders = tuple(o for o in (_open_order(x) for x in self._open_lumibot_orders()) if o is not None)
        notes = tuple(f"{sym}: held but no price data" for sym in holdings if sym not in market.index)
        missing = [s for s in holdings if s not in market.index]
        if missing:
            extra = pd.DataFrame({"close": [math.nan] * len(missing)}, index=pd.Index(missing, name="symbol"))
            market = pd.concat([market, extra])
        return Snapshot(now=now, cash=float(self.get_cash()), portfolio_value=float(self.get_portfolio_value()),
                        holdings=holdings, open_orders=orders, market=market, notes=notes)

    def _market(self, now) -> pd.DataFrame:
        if self.book is not None:
            return self.book.as_of(now)
        # live: one batched history request for all symbols, indicators over the rolling window
        timestep = {pd.Timedelta(days=1): "day", pd.Timedelta(minutes=1): "minute"}.get(self.bar_period, "hour")
        length = FEATURE_HISTORY_BARS if self.features else MIN_HISTORY_BARS
        result = self.get_historical_prices_for_assets([Asset(s) for s in self.symbols], length, timestep)
        frames = {}
        for asset, bars in (result or {}).items():
            if bars is not None and bars.df is not None and len(bars.df):
                sym = asset.symbol if hasattr(asset, "symbol") else str(asset)
                frames[sym] = completed_bars(bars.df, now, self.bar_period)
        if not frames:
            return pd.DataFrame(columns=["close", "rsi", "trend", "bar_time"], index=pd.Index([], name="symbol"))
        book = IndicatorBook(market_frames(frames, self.settings.rsi_period, self.features), self.bar_period)
        return book.as_of(now)

    # ------------------------------------------------------------------ execution
    def execute(self, intent: Intent, snap: Snapshot) -> None:
        if intent.cancel_order_ids and not self._cancel(intent.cancel_order_ids):
            self.decision_log.note(snap.now, intent.kind.value, f"{intent.symbol}: open legs not confirmed "
                                   "cancelled; the rest of this intent waits for the next iteration", "warning")
            return
        role = ROLE_OF_KIND[intent.kind]
        for order in intent.orders:
            lumi = self._to_lumibot(order)
            lumi.tag = order.client_order_id
            submitted = self.submit_order(lumi)
            if submitted is None:
                self.decision_log.note(snap.now, intent.kind.value,
                                       f"{intent.symbol}: broker refused {order.client_order_id}", "warning")
                return
            this_role = "protect" if intent.kind == IntentKind.TRIM and isinstance(order, OcoOrder) else role
            self.ledger.register(submitted.identifier, this_role)
            for child in submitted.child_orders or ():  # legs do not always carry their parent id on fills
                self.ledger.register(child.identifier, "target" if _enum_value(child.order_type) == "limit" else "stop")

    def _cancel(self, order_ids: tuple[str, ...]) -> bool:
        wanted = set(order_ids)
        targets = [o for o in self._open_lumibot_orders() if o.identifier in wanted]
        for o in targets:
            self.cancel_order(o)
        if self.is_backtesting:
            return True
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while time.monotonic() < deadline:  # live cancels are requests; shares stay held until confirmed
            if not any(o.is_active() for o in (self.get_order(t.identifier) for t in targets) if o is not None):
                return True
            time.sleep(0.5)
        return False

    def _open_lumibot_orders(self) -> list[LumiOrder]:
        """Open orders only. Lumibot's broker keeps them in their own buckets; scanning every order ever
        tracked (get_orders) grows with the run. A filled bracket parent stays "active" while its legs
        rest, so filled and canceled orders are dropped: the legs are listed on their own."""
        active = getattr(self.broker, "get_active_tracked_orders", None)
        orders = active(strategy=self.name) if callable(active) else self.get_orders()
        return [o for o in orders if o.is_active() and not o.is_filled() and not o.is_canceled()]

    def _to_lumibot(self, order) -> LumiOrder:
        cid = {"client_order_id": order.client_order_id}
        if isinstance(order, BracketOrder):
            return self.create_order(order.symbol, order.qty, "buy", order_class=LumiOrder.OrderClass.BRACKET,
                                     secondary_limit_price=float(order.take_profit),
                                     secondary_stop_price=float(order.stop_loss),
                                     time_in_force=order.time_in_force, custom_params=cid)
        if isinstance(order, OcoOrder):
            return self.create_order(order.symbol, order.qty, "sell", limit_price=float(order.take_profit),
                                     stop_price=float(order.stop_loss), order_class=LumiOrder.OrderClass.OCO,
                                     time_in_force=order.time_in_force, custom_params=cid)
        if isinstance(order, MarketOrder):
            return self.create_order(order.symbol, order.qty, order.side, time_in_force=order.time_in_force,
                                     custom_params=cid)
        if isinstance(order, LimitOrder):
            params = dict(cid, extended_hours=True) if order.extended_hours else cid
            return self.create_order(order.symbol, order.qty, order.side, limit_price=float(order.limit_price),
                                     time_in_force=order.time_in_force, custom_params=params)
        raise TypeError(f"unknown order type {type(order).__name__}")

    # ------------------------------------------------------------------ callbacks
    def on_filled_order(self, position, order, price, quantity, multiplier) -> None:
        side = "buy" if str(order.side).startswith("buy") else "sell"
        order_type = _enum_value(order.order_type)
        role = self.ledger.role_of(order.identifier, order.parent_identifier, order_type)
        self.ledger.record_fill(Fill(self.get_datetime(), order.asset.symbol, side, float(quantity), float(price),
                                     role, order.identifier))


def _enum_value(x) -> str:
    return str(getattr(x, "value", x) or "")


def _open_order(o: LumiOrder) -> OpenOrder | None:
    order_class = _enum_value(o.order_class) or "simple"
    if order_class == "oco" and o.child_orders:
        return None  # the OCO placeholder: its two legs are listed as orders of their own
    side = "buy" if _enum_value(o.side).startswith("buy") else "sell"
    return OpenOrder(order_id=o.identifier, symbol=o.asset.symbol, side=side, order_type=_enum_value(o.order_type),
                     qty=float(o.quantity), limit_price=_float(o.limit_price), stop_price=_float(o.stop_price),
                     order_class=order_class, parent_id=o.parent_identifier, client_order_id=o.tag or None)


def _float(x) -> float | None:
    return None if x is None else float(x)
