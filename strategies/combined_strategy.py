"""CombinedStrategy: the Lumibot subclass. It only wires: gather a snapshot, plan, execute, record.

All decisions are plain functions in `trading/` (protect, trim, hedge, enter) over the snapshot.
Parameters (passed by the runner or the live launcher):
  settings        trading.settings.Settings (required)
  indicator_book  an IndicatorBook computed once per series (backtests); None live -> rolling window
  bar_period      bar length of the data (pandas Timedelta); default one hour
  scorer          a ConfidenceModel; default the rule-based score
  cost_basis      {symbol: price} for starting positions whose cost the broker does not know
  journal         a trading.journal.Journal (default: one at JOURNAL_PATH)
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
from trading.journal import Journal
from trading.ledger import Fill, Ledger
from trading.orders import BracketOrder, LimitOrder, MarketOrder, OcoOrder, StopUpdate
from trading.planner import plan_iteration
from trading.risk import build_risk
from trading.settings import Settings
from trading.sizing import kelly_risk_cap
from trading.snapshot import Holding, OpenOrder, Snapshot

logger = logging.getLogger("trader.strategy")

ROLE_OF_KIND = {IntentKind.PROTECT: "protect", IntentKind.EXIT: "exit", IntentKind.TRIM: "trim",
                IntentKind.HEDGE: "hedge", IntentKind.UNHEDGE: "unhedge", IntentKind.ENTER: "entry",
                IntentKind.PARTIAL: "partial", IntentKind.TIME_EXIT: "time-exit", IntentKind.FLATTEN: "flatten",
                IntentKind.MOVE_STOP: "protect", IntentKind.CANCEL: "cancel"}
REPROTECTING = (IntentKind.TRIM, IntentKind.PARTIAL)  # their OCO re-protects what they keep
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
        self.journal = p.get("journal") or Journal(p.get("journal_path") or self.settings.journal_path)
        self.decision_log = DecisionLog(self.journal)
        self.ledger = Ledger(journal=self.journal, hedged=self._hedged_now)
        restored = self.ledger.restore()
        self.risk = build_risk(self.settings, self.journal, self.bar_period)
        self.symbols = self.settings.all_symbols(benchmarks=())
        self.iterations = 0
        self._last_snapshot: Snapshot | None = None
        self._kelly_note = ""
        now = self.get_datetime()
        self.decision_log.note(now, "plan", f"CombinedStrategy starts: every {self.sleeptime}, confidence from "
                               f"{self.scorer.describe()}; risk {self.risk.describe()}"
                               + (f"; {restored} open trade(s) restored from the journal" if restored else ""))
        for sym, cost in self.cost_basis.items():
            pos = self.get_position(sym)
            if pos is not None and float(pos.quantity) > 0 and sym not in self.ledger.open_trades():
                self.ledger.open_lot(sym, float(pos.quantity), cost, now, "legacy")

    # ------------------------------------------------------------------ the iteration
    def on_trading_iteration(self) -> None:
        s = self.settings
        snap = self.gather_snapshot()
        self._last_snapshot = snap
        highs, lows = snap.bar_range()
        self.ledger.mark(highs, lows, hours=min(self.bar_period / pd.Timedelta(hours=1), 6.5))
        notes = self.risk.observe(snap, self.journal.recent_results(max(s.losing_streak, 1)))
        kelly_cap, kelly_note = kelly_risk_cap(self.journal.r_multiples(), s, snap.portfolio_value)
        flatten = self.risk.flatten_pending
        plan = plan_iteration(snap, s, self.scorer, strategy_name="combined", trades=self.ledger.open_trades(),
                              kelly_cap_usd=kelly_cap, mode=self.risk.mode, flatten=flatten)
        decisions = notes + self.risk.review(plan.decisions, snap)
        inverse = sum(snap.value(x) for x in snap.holdings if x in s.inverse_symbols)
        long = sum(snap.value(x) for x in snap.holdings if x not in s.inverse_symbols)
        sample = dict(time=snap.now, portfolio_value=snap.portfolio_value, cash=snap.cash, long_value=long,
                      inverse_value=inverse, positions=len(snap.holdings), risk_mode=self.risk.mode.name)
        if kelly_note and kelly_note.split(" (")[0] != self._kelly_note:  # log the Kelly cap when it changes
            self._kelly_note = kelly_note.split(" (")[0]
        else:
            kelly_note = ""
        self.decision_log.record_iteration(snap.now, decisions, sample, kelly_note)
        self.ledger.sample(**sample)
        for d in decisions:
            if d.intent is not None:
                self.execute(d.intent, snap)
        if flatten:
            self.risk.flatten_done()
        self.ledger.persist_marks()
        self.iterations += 1

    def _hedged_now(self) -> bool:
        snap = self._last_snapshot
        return bool(snap and any(x in self.settings.inverse_symbols for x in snap.holdings))

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
            if isinstance(order, StopUpdate):
                if not self._move_stop(order, snap):
                    return
                continue
            this_role = "protect" if intent.kind in REPROTECTING and isinstance(order, OcoOrder) else role
            if isinstance(order, BracketOrder):
                self.ledger.pending_levels[order.symbol] = (float(order.stop_loss), float(order.take_profit))
            lumi = self._to_lumibot(order)
            lumi.tag = order.client_order_id
            request = _request(order)
            self.journal.record_order(snap.now, client_order_id=order.client_order_id, symbol=order.symbol,
                                      side=request["side"], order_type=request["type"],
                                      order_class=request["order_class"], qty=float(order.qty),
                                      limit_price=request.get("limit_price"), stop_price=request.get("stop_price"),
                                      intent=intent.kind.value, role=this_role, request=request, status="sending")
            submitted = self.submit_order(lumi)
            if submitted is None:
                self.journal.update_order(order.client_order_id, status="refused")
                self.decision_log.note(snap.now, intent.kind.value,
                                       f"{intent.symbol}: broker refused {order.client_order_id}", "warning")
                return
            self.journal.update_order(order.client_order_id, broker_order_id=submitted.identifier,
                                      status=_enum_value(submitted.status) or "submitted")
            self.ledger.register(submitted.identifier, this_role)
            for child in submitted.child_orders or ():  # legs do not always carry their parent id on fills
                self.ledger.register(child.identifier, "target" if _enum_value(child.order_type) == "limit" else "stop")
            if isinstance(order, OcoOrder):
                self._record_protection(order, snap)
        if intent.trade_update:
            self.ledger.update(intent.symbol, **intent.trade_update)

    def _record_protection(self, oco: OcoOrder, snap: Snapshot) -> None:
        """The open trade learns its protective levels; a position the bot did not open is adopted."""
        if oco.symbol in self.ledger.open_trades():
            self.ledger.update(oco.symbol, stop=float(oco.stop_loss), target=float(oco.take_profit))
            return
        h = snap.holdings.get(oco.symbol)
        if h is not None:
            entry = h.avg_entry_price or snap.price(oco.symbol)
            self.ledger.adopt(oco.symbol, h.qty, entry, snap.now, float(oco.stop_loss), float(oco.take_profit))

    def _move_stop(self, update: StopUpdate, snap: Snapshot) -> bool:
        target = next((o for o in self._open_lumibot_orders() if o.identifier == update.order_id), None)
        if target is None:
            self.decision_log.note(snap.now, "exits", f"{update.symbol}: stop leg {update.order_id} is no longer "
                                   "open; the stop is not moved", "warning")
            return False
        self.journal.record_order(snap.now, client_order_id=update.client_order_id, symbol=update.symbol,
                                  side="sell", order_type=_enum_value(target.order_type), order_class="replace",
                                  qty=float(target.quantity), stop_price=float(update.stop_price),
                                  intent="move-stop", role="protect", broker_order_id=update.order_id,
                                  request={"replace": update.order_id, "stop_price": str(update.stop_price)})
        self.modify_order(target, stop_price=float(update.stop_price))
        return True

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


def _request(order) -> dict:
    """What is asked of the broker, in Alpaca's field names (journaled before the order is sent)."""
    if isinstance(order, BracketOrder):
        return {"symbol": order.symbol, "qty": order.qty, "side": "buy", "type": "market", "order_class": "bracket",
                "time_in_force": order.time_in_force, "take_profit": {"limit_price": str(order.take_profit)},
                "stop_loss": {"stop_price": str(order.stop_loss)}, "client_order_id": order.client_order_id}
    if isinstance(order, OcoOrder):
        return {"symbol": order.symbol, "qty": order.qty, "side": "sell", "type": "limit", "order_class": "oco",
                "time_in_force": order.time_in_force, "limit_price": float(order.take_profit),
                "stop_price": float(order.stop_loss), "client_order_id": order.client_order_id}
    if isinstance(order, LimitOrder):
        return {"symbol": order.symbol, "qty": order.qty, "side": order.side, "type": "limit", "order_class": "simple",
                "time_in_force": order.time_in_force, "limit_price": float(order.limit_price),
                "extended_hours": order.extended_hours, "client_order_id": order.client_order_id}
    return {"symbol": order.symbol, "qty": order.qty, "side": order.side, "type": "market", "order_class": "simple",
            "time_in_force": order.time_in_force, "client_order_id": order.client_order_id}


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
