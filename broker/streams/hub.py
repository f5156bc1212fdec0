"""Both streams of one account, and one worker that hands their messages to the bot in order.

alpaca-py calls the handlers on each stream's own event loop; they only queue the message and return (a slow
bot must not stall a socket). One worker thread takes messages off the queue and calls the bot: trade updates
in the order they came, prices coalesced to the newest per symbol (ten ticks queued during an iteration are one
check, at the latest price). The worker also watches both connections: a stream that goes down is said once,
the bot falls back to its hourly iteration (which reconciles from REST anyway), and when it is back that is
said once too. A price stream can also go mute while it stays connected (alpaca-py issue 740: no error, no
drop, no data; alpaca-py's own data_timeout cannot tell a mute socket from a quiet market): one that carried
nothing for STREAM_SILENCE_SECONDS during the session is checked against Alpaca's latest trades (REST), and
reconnected, said like a drop, only when Alpaca printed a held symbol that the stream did not carry. A thinly
traded stock, quiet on the feed for minutes, is left alone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from broker.streams.clients import PriceStream, StreamThread, trade_updates
from marketdata.sessions import in_regular_session
from trading.settings import Settings

logger = logging.getLogger("trader.streams")
DOWN_AFTER_S = 5.0  # a stream not connected this long (after it was up, or after start) counts as down
POLL_S = 0.5


class Streams:
    def __init__(self, settings: Settings, on_update: Callable[[object, float], None],
                 on_price: Callable[[str, float, datetime], None], on_state: Callable[[str, bool, str], None],
                 clock: Callable[[], float] = time.time, market_now: Callable[[], datetime] | None = None,
                 latest_trades: Callable[[list[str]], dict[str, datetime]] | None = None) -> None:
        self.on_update, self.on_price, self.on_state, self.clock = on_update, on_price, on_state, clock
        # the silence watch: the market's time (the session) and Alpaca's latest trades by REST; off without both
        self.market_now, self.latest_trades = market_now, latest_trades
        self.silence_s = settings.stream_silence_seconds
        self._printed: dict[str, datetime] = {}  # each symbol's last trade the stream carried (its own time)
        self._quiet_from: float | None = None  # when the price stream was last known to speak, or began to follow
        self.events: queue.Queue = queue.Queue()
        self.trades: StreamThread = trade_updates(settings, self._trade_update)
        self.prices = PriceStream(settings, self._trade)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="stream-worker", daemon=True)
        self._up: dict[str, bool | None] = {"trade updates": None, "prices": None}  # None: never connected yet
        self._since: dict[str, float] = {}
        self.handled = {"updates": 0, "prices": 0}
        self._lock = threading.Lock()  # follow() comes from the iteration's thread and the worker

    # ---------------------------------------------------------------- alpaca-py's handlers (their event loops)
    async def _trade_update(self, update) -> None:
        self.trades.last_message = self.clock()
        self.events.put(("update", update, self.clock()))

    async def _trade(self, trade) -> None:
        self.prices.last_message = self.clock()
        self._printed[trade.symbol] = trade.timestamp
        self.events.put(("price", trade.symbol, float(trade.price), trade.timestamp))

    # ---------------------------------------------------------------- life cycle
    def start(self) -> Streams:
        self.trades.start()
        self._since = {"trade updates": self.clock(), "prices": self.clock()}
        self._worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(timeout=5)
        self.trades.stop()
        self.prices.stop()

    def follow(self, symbols: Iterable[str]) -> None:
        """Prices for exactly these symbols (the positions held), on the one data connection."""
        with self._lock:
            starting = not self.prices.started
            added, removed = self.prices.follow(symbols)
            if starting and self.prices.started:
                self._since["prices"] = self.clock()  # "never connected" counts from its start, not the bot's
        if added or removed:
            logger.info("price stream: %s%s", f"+{','.join(sorted(added))} " if added else "",
                        f"-{','.join(sorted(removed))}" if removed else "")
            if self.prices.symbols and "prices" not in self._since:
                self._since["prices"] = self.clock()

    # ---------------------------------------------------------------- the worker
    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._drain()
            prices: dict[str, tuple[float, datetime]] = {}
            for item in batch:
                if item[0] == "update":
                    self._call(self.on_update, item[1], item[2])
                    self.handled["updates"] += 1
                else:
                    prices[item[1]] = (item[2], item[3])
            for symbol, (price, when) in prices.items():
                self._call(self.on_price, symbol, price, when)
                self.handled["prices"] += 1
            self._watch()

    def _drain(self) -> list:
        try:
            items = [self.events.get(timeout=POLL_S)]
        except queue.Empty:
            return []
        while True:
            try:
                items.append(self.events.get_nowait())
            except queue.Empty:
                return items

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # one bad message must not end the worker; the hour reconciles
            logger.exception("stream message not handled; the next iteration reconciles from REST")

    def _watch(self) -> None:
        self._check_silence()
        for name, stream in (("trade updates", self.trades), ("prices", self.prices)):
            if not stream.started:
                continue
            up = stream.connected
            was = self._up[name]
            if up and was is not True:
                self._up[name] = True
                self._since.pop(name, None)
                if was is False:
                    self._call(self.on_state, name, True, "back")
            elif not up and was is not False:
                since = self._since.setdefault(name, self.clock())
                if self.clock() - since >= DOWN_AFTER_S:
                    self._up[name] = False
                    self._call(self.on_state, name, False, "never connected" if was is None else "dropped")

    def _check_silence(self) -> None:
        p = self.prices
        if (self.silence_s <= 0 or self.market_now is None or self.latest_trades is None or not p.symbols
                or not p.connected):
            self._quiet_from = None  # off, nothing followed, or not connected (the drop watch's business)
            return
        now = self.clock()
        if self._quiet_from is None:
            self._quiet_from = now  # counted from when it began to follow on this connection
        quiet = now - max(self._quiet_from, p.last_message or 0.0)
        if quiet < self.silence_s:
            return
        self._quiet_from = now  # asked at most once per STREAM_SILENCE_SECONDS
        try:
            missed = self._missed(sorted(p.symbols))
        except Exception as exc:  # noqa: BLE001 - a REST or calendar failure must not end the worker
            logger.warning("price stream silent for %.0f s; Alpaca's latest trades not read (%s): left as it is",
                           quiet, exc)
            return
        if missed and p.reconnect():  # not connected until a new socket is up; its return is said as "back"
            self._up["prices"] = False
            self._call(self.on_state, "prices", False, f"connected but silent for {quiet:.0f} s while Alpaca printed "
                       f"{', '.join(missed)}; reconnecting")

    def _missed(self, symbols: list[str]) -> list[str]:
        """The held symbols Alpaca printed (REST) after the stream's last trade of them, or in the silence for
        those it never carried; none outside the regular session."""
        at = self.market_now()
        if not in_regular_session(at):
            return []
        since = at - timedelta(seconds=self.silence_s)
        trades = self.latest_trades(symbols)
        return sorted(s for s, when in trades.items() if when > self._printed.get(s, since))

    # ---------------------------------------------------------------- status
    def status(self) -> dict:
        def one(stream: StreamThread) -> dict:
            last = stream.last_message
            return {"connected": stream.connected, "started": stream.started, "local_port": stream.local_port,
                    "last_message": datetime.fromtimestamp(last, UTC).isoformat() if last else None}

        prices = {**one(self.prices), "symbols": sorted(self.prices.symbols)}
        return {"trade_updates": one(self.trades), "prices": prices, "handled": dict(self.handled)}
