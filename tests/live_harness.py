"""The live bot against the fake Alpaca server: a scripted market, the bot as it runs live, and checks.

The bot is built exactly as `live_trader.py` builds it (settings from the environment, alpaca-py
clients with a timeout and no blind retries, the gateway, Lumibot's real Alpaca broker with the
clients injected), except that its clock is the fake server's simulated clock, so an hour passes
when the test says so.

A scripted market (`scripted_market`): hourly regular-session bars on the real NYSE calendar, a
seeded gentle random walk for every symbol, with shapes laid over the end of the history and the
scripted days (a rally, a sell-off, a stock sliding into oversold), and inverse ETFs derived from
SPY and QQQ bar by bar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from broker.clients import make_clients
from broker.gateway import AlpacaGateway
from broker.launcher import build_strategy
from marketdata.sessions import hourly_bars, nyse_sessions, sessions_before
from tests.fake_alpaca import FakeAlpaca
from trading.records.journal import Journal
from trading.settings import Settings

NY = "America/New_York"
BELLWETHERS = ("AAPL", "MSFT", "GOOGL", "NVDA", "TSLA")
UNIVERSE = (*BELLWETHERS, "JPM", "XOM")
START_PRICES = {"AAPL": 180.0, "MSFT": 400.0, "GOOGL": 140.0, "NVDA": 600.0, "TSLA": 200.0, "JPM": 180.0,
                "XOM": 100.0, "SPY": 500.0, "QQQ": 430.0}
INVERSE = {"SH": ("SPY", -1.0, 12.0), "SPXS": ("SPY", -3.0, 9.0), "SQQQ": ("QQQ", -3.0, 11.0)}

# (symbol, first bar relative to the first scripted day's 09:30 bar, number of bars, return per bar)
Shape = tuple[str, int, int, float]
# the scripted day: bellwethers rallied into it (hedge at the open), sell off in its first three hours
# (unwind); JPM slid into deep oversold (an entry); the rest drift
SCRIPTED_DAY: tuple[Shape, ...] = (
    *((b, -21, 21, 0.008) for b in BELLWETHERS), ("SPY", -21, 21, 0.003), ("QQQ", -21, 21, 0.005),
    *((b, 0, 3, -0.03) for b in BELLWETHERS), ("SPY", 0, 3, -0.008), ("QQQ", 0, 3, -0.012),
    ("JPM", -16, 16, -0.012),
)


def scripted_market(day: str = "2024-03-05", days: int = 2, history_sessions: int = 40,
                    shapes: tuple[Shape, ...] = SCRIPTED_DAY, symbols: tuple[str, ...] = (*UNIVERSE, "SPY", "QQQ"),
                    seed: int = 7) -> dict[str, pd.DataFrame]:
    start = pd.Timestamp(day)
    sessions = pd.concat([sessions_before(start, history_sessions),
                          nyse_sessions(start, start + pd.Timedelta(days=days * 2 + 4)).iloc[:days]])
    grid = hourly_bars(sessions)
    first = int(np.searchsorted(grid.index, pd.Timestamp(f"{day} 09:30", tz=NY)))
    rng = np.random.default_rng(seed)
    returns: dict[str, np.ndarray] = {}
    for sym in symbols:
        r = rng.normal(0.0, 0.002, len(grid))
        for name, offset, n, per_bar in shapes:
            if name == sym:
                lo = first + offset
                r[lo:lo + n] = per_bar + rng.normal(0.0, 0.0005, n)
        returns[sym] = r
    bars = {sym: _ohlcv(START_PRICES.get(sym, 100.0), returns[sym], grid.index) for sym in symbols}
    for sym, (base, leverage, price) in INVERSE.items():
        if base in returns:
            bars[sym] = _ohlcv(price, leverage * returns[base], grid.index)
    return bars


def wallclock_market(history_sessions: int = 40, seed: int = 11) -> tuple[dict[str, pd.DataFrame], pd.Timestamp]:
    """A drifting market whose last bars end now, for the command-line tools run as separate processes (they
    read the wall clock). Returns the bars and the moment to start the fake at: now."""
    now = pd.Timestamp.now(tz=NY).floor("s")
    sessions = sessions_before(now.normalize().tz_localize(None) + pd.Timedelta(days=1), history_sessions)
    grid = hourly_bars(sessions)
    rng = np.random.default_rng(seed)
    symbols = (*UNIVERSE, "SPY", "QQQ")
    returns = {sym: rng.normal(0.0, 0.002, len(grid)) for sym in symbols}
    bars = {sym: _ohlcv(START_PRICES[sym], returns[sym], grid.index) for sym in symbols}
    for sym, (base, leverage, price) in INVERSE.items():
        bars[sym] = _ohlcv(price, leverage * returns[base], grid.index)
    return bars, now


def _ohlcv(price0: float, r: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    close = price0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[price0], close[:-1]])
    wiggle = 0.0015 * np.maximum(open_, close)
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + wiggle,
                         "low": np.minimum(open_, close) - wiggle, "close": close, "volume": 100_000.0},
                        index=index).round(4)


def bot_environment(srv: FakeAlpaca, **overrides: str) -> dict[str, str]:
    """The settings a user would put in .env, pointing at the fake server."""
    env = {"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret, "ALPACA_API_URL": srv.url,
           "ALPACA_DATA_URL": srv.url, "UNIVERSE": ",".join(UNIVERSE), "BELLWETHERS": ",".join(BELLWETHERS),
           "BROKER_TIMEOUT_SECONDS": "2", "STREAMS_ENABLED": "false"}  # streams: tests that want them say so
    env.update(overrides)
    return env


RUNNING: list[LiveBot] = []  # bots built by a test; tests/test_live_alpaca.py closes them after each test


@dataclass
class LiveBot:
    """One run of the bot process: built, initialised (start-up reconciliation), then iterated."""

    srv: FakeAlpaca
    journal_path: Path
    env: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    wrap_session: object = None  # callable(session) -> None, e.g. to kill the bot at a chosen request
    scorer: object = None  # a loaded meta-model; None: the rule-based score

    def __post_init__(self) -> None:
        RUNNING.append(self)
        env = bot_environment(self.srv, **self.env)
        self.settings = Settings.load(environ=env, dotenv_path=None)
        trading, data = make_clients(self.settings)
        if self.wrap_session is not None:
            self.wrap_session(trading._session)
            self.wrap_session(data._session)
        self.gateway = AlpacaGateway(trading, data, self.settings.alpaca_data_feed, first_wait=0.01, max_wait=0.05)
        self.journal = Journal(self.journal_path)
        self.strategy = build_strategy(self.settings, self.gateway, self.scorer, self.dry_run, journal=self.journal,
                                       clock=lambda: self.srv.now)
        self.strategy.initialize()

    def close(self) -> None:
        """Close the clients' connections (a bot process that ends closes them too)."""
        if hasattr(self, "strategy"):  # a bot killed while starting has none
            self.strategy.stop_streams()
        self.gateway.trading._session.close()
        self.gateway.data._session.close()
        self.journal.close()

    def iterate(self) -> None:
        """What Lumibot's live executor does each time: re-read the broker into Lumibot's own books, then run
        the strategy's iteration (its market-hours check is 24/7 here: the bot asks Alpaca's clock)."""
        self.strategy._executor.sync_broker()
        self.strategy.on_trading_iteration()
        self.strategy._first_iteration = self.strategy.broker._first_iteration = False  # as the executor does

    def lines(self, step: str | None = None) -> list[str]:
        return [r["reason"] for r in self.strategy.decision_log.records if step is None or r["step"] == step]


def run_day(srv: FakeAlpaca, bot: LiveBot, hours: int) -> None:
    """Iterate once an hour, the fake's clock moving one hour after each iteration."""
    for _ in range(hours):
        bot.iterate()
        srv.advance(pd.Timedelta(hours=1))


# ---------------------------------------------------------------------------------------------- checks
def accepted_orders(srv: FakeAlpaca) -> list[dict]:
    """Every order the server accepted (legs included), oldest first."""
    return sorted(srv.orders.values(), key=lambda o: o["created_at"])


def order_rejections(srv: FakeAlpaca) -> list[dict]:
    """Orders, cancels, replaces and closes the server refused (a GET of a position that does not exist is a
    404 the bot expects, not a refusal)."""
    return [r for r in srv.rejections if r["path"].startswith(("/v2/orders", "/v2/positions")) and r["method"] != "GET"]


def duplicate_orders(srv: FakeAlpaca) -> list[str]:
    """Orders the bot sent twice: two parent orders for the same (symbol, intent) created in the same hour at
    the server while the first was still alive or had filled (a first one cancelled, expired or rejected
    before the second was created is not a duplicate), or two entry orders (hedge or entry) for one symbol
    while the first was still open or held. Slots come from the server's creation time, not from the id's
    own stamp, so a bug in how ids are stamped cannot hide a duplicate. Client order ids are
    `strategy-SYMBOL-intent-YYYYmmddTHHMM-hash`."""
    parents = [o for o in accepted_orders(srv) if o.get("client_order_id", "").startswith("combined-")
               and o.get("replaces") is None]
    groups: dict[tuple, list[dict]] = {}
    for o in parents:
        parts = o["client_order_id"].split("-")
        slot = pd.Timestamp(o["created_at"]).floor("h")
        groups.setdefault((parts[1], "-".join(parts[2:-2]), slot), []).append(o)
    dupes = []
    for key, group in groups.items():
        for a, b in pairwise(group):
            died = a.get("canceled_at") or a.get("expired_at") or a.get("failed_at")
            if not died or pd.Timestamp(died) > pd.Timestamp(b["created_at"]):
                dupes.append(f"{key[:2]} sent twice in the hour of {key[2]:%H:%M}: {a['client_order_id']}, "
                             f"{b['client_order_id']}")
    entries: dict[str, list[dict]] = {}
    for o in parents:
        if "-enter-" in o["client_order_id"] or "-hedge-" in o["client_order_id"]:
            entries.setdefault(o["symbol"], []).append(o)
    for sym, group in entries.items():
        for a, b in pairwise(group):
            if _open_between(srv, a, b):
                dupes.append(f"{sym}: {b['client_order_id']} entered while {a['client_order_id']} was still held")
    return dupes


def _open_between(srv: FakeAlpaca, a: dict, b: dict) -> bool:
    """Was a's position (or a itself) still open when b was created?"""
    created = pd.Timestamp(b["created_at"])
    ended = [pd.Timestamp(t) for t in _exit_times(srv, a)]
    return not ended or min(ended) > created


def _exit_times(srv: FakeAlpaca, entry: dict) -> list[str]:
    """When the shares an entry bought were sold (any filled sell of the symbol after it), or it died."""
    if entry["status"] in ("canceled", "expired", "rejected"):
        return [entry.get("canceled_at") or entry.get("expired_at") or entry.get("failed_at") or entry["updated_at"]]
    return [o["filled_at"] for o in srv.orders.values() if o["symbol"] == entry["symbol"] and o["side"] == "sell"
            and o.get("filled_at") and o["filled_at"] > (entry.get("filled_at") or entry["created_at"])]


def unprotected_positions(srv: FakeAlpaca) -> list[str]:
    """Long positions whose shares are not all held by an open stop (bracket/OCO stop leg or stop order)."""
    out = []
    open_states = {"new", "accepted", "held", "pending_new", "partially_filled"}
    for sym, p in srv.positions().items():
        qty = float(p["qty"])
        stops = sum(float(o["qty"]) - float(o["filled_qty"] or 0) for o in srv.orders.values()
                    if o["symbol"] == sym and o["side"] == "sell" and o["status"] in open_states
                    and o["type"] in ("stop", "stop_limit", "trailing_stop"))
        if qty > 0 and stops + 1e-9 < np.floor(qty + 1e-9):
            out.append(f"{sym}: {qty:g} sh, {stops:g} under a stop")
    return out


def journal_mismatches(journal: Journal, srv: FakeAlpaca) -> list[str]:
    """The journal's orders against the server's: every order the server has from the bot is in the
    journal with its broker id, and every order the journal says was sent is at the server."""
    server = {o["client_order_id"]: o for o in srv.orders.values()}
    rows = journal.frame("orders")
    out = []
    for row in rows.itertuples():
        sent = row.status not in ("not sent", "rejected", "dry-run", "failed")
        if sent and row.client_order_id not in server and not str(row.order_type) == "replace":
            out.append(f"{row.client_order_id}: journal says {row.status}, the server has no such order")
        if row.client_order_id in server and str(row.broker_order_id) != server[row.client_order_id]["id"]:
            out.append(f"{row.client_order_id}: journal broker id {row.broker_order_id} != "
                       f"{server[row.client_order_id]['id']}")
    journaled = set(rows["client_order_id"]) if len(rows) else set()
    for cid, o in server.items():
        if cid.startswith("combined-") and cid not in journaled and o.get("replaces") is None:
            out.append(f"{cid}: at the server ({o['status']}) but not in the journal")
    return out


def env_for_subprocess(srv: FakeAlpaca, tmp: Path, **overrides: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "IS_BACKTESTING"))}
    base.update(bot_environment(srv, JOURNAL_PATH=str(tmp / "journal.sqlite"), REPORTS_DIR=str(tmp / "reports"),
                                **overrides))
    return base
