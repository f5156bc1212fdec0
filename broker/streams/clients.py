"""alpaca-py's two websocket clients, each run in its own daemon thread, with what they lack for a bot.

alpaca-py's `run()` blocks in its own event loop and reconnects by itself (backoff 0.5-1 s, doubling to
15-30 s, with jitter); these wrappers add a connection state to watch (`connected`), the time of the last
message, a `stop()` that never hangs (alpaca-py's raises before `run()` started and waits without a timeout),
and for prices a subscription set that is changed by difference, on the one connection. The data stream is
started at the first subscription: before any, alpaca-py's loop spins a CPU core.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable

from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream
from alpaca.trading.stream import TradingStream

from trading.settings import Settings

logger = logging.getLogger("trader.streams")
STOP_WAIT_S = 8.0  # alpaca-py's run() returns up to ~5 s after stop()


def trading_stream_url(s: Settings) -> str | None:
    """The trade-updates websocket: the override, else None (alpaca-py's paper or live URL)."""
    return s.alpaca_stream_url or None


def data_stream_url(s: Settings) -> str | None:
    """The market-data websocket: the override, else None (alpaca-py builds it from the feed), except for the
    delayed SIP feed, which alpaca-py only reaches by URL."""
    if s.alpaca_data_stream_url:
        return s.alpaca_data_stream_url
    return "wss://stream.data.alpaca.markets/v2/delayed_sip" if s.alpaca_data_feed == "delayed_sip" else None


class StreamThread:
    """One alpaca-py stream client in a daemon thread named for what it carries (monitor_sockets.sh shows it)."""

    def __init__(self, client, name: str) -> None:
        self.client, self.name = client, name
        self.thread: threading.Thread | None = None
        self.last_message: float | None = None  # time.time() of the last message handled
        self._closing: object | None = None  # the socket reconnect() closed: not connected on it any more

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.client.run, name=self.name, daemon=True)
            self.thread.start()

    @property
    def started(self) -> bool:
        return self.thread is not None

    @property
    def connected(self) -> bool:
        """Authenticated and listening (alpaca-py sets `_running` once its connection is up, clears it on a drop),
        on a socket that reconnect() is not closing."""
        return (self.started and bool(getattr(self.client, "_running", False))
                and (self._closing is None or getattr(self.client, "_ws", None) is not self._closing))

    @property
    def local_port(self) -> int | None:
        """This end's port of the open connection (monitor_sockets.sh names the socket by it)."""
        ws = getattr(self.client, "_ws", None)
        try:
            return int(ws.local_address[1]) if ws is not None and self.connected else None
        except (AttributeError, TypeError, IndexError, OSError):
            return None

    @property
    def socket(self) -> object | None:
        """The open websocket (a new object after each reconnection)."""
        return getattr(self.client, "_ws", None) if self.connected else None

    def reconnect(self) -> bool:
        """Close the open socket from outside: alpaca-py's loop sees it closed, connects again (with its own
        backoff) and re-sends every subscription. False when there is no open socket to close."""
        loop, ws = getattr(self.client, "_loop", None), self.socket
        if loop is None or ws is None or not loop.is_running():
            return False
        import asyncio

        self._closing = ws
        asyncio.run_coroutine_threadsafe(ws.close(), loop)
        return True

    def stop(self) -> None:
        if self.thread is None:
            return
        deadline = time.monotonic() + STOP_WAIT_S
        while getattr(self.client, "_loop", None) is None and self.thread.is_alive():  # run() not in its loop yet
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        loop = getattr(self.client, "_loop", None)
        if loop is not None and loop.is_running():
            try:
                import asyncio

                asyncio.run_coroutine_threadsafe(self.client.stop_ws(), loop).result(timeout=STOP_WAIT_S)
            except (RuntimeError, TimeoutError) as exc:  # a stream already gone must not stop the shutdown
                logger.debug("%s: stop: %s", self.name, exc)
        self.thread.join(timeout=STOP_WAIT_S)
        if self.thread.is_alive():
            logger.warning("%s did not stop within %.0f s; it is a daemon thread and ends with the process",
                           self.name, STOP_WAIT_S)


def trade_updates(s: Settings, handler: Callable[[object], Awaitable[None]]) -> StreamThread:
    client = TradingStream(s.alpaca_api_key.reveal(), s.alpaca_api_secret.reveal(), paper=s.alpaca_paper,
                           url_override=trading_stream_url(s))
    client.subscribe_trade_updates(handler)
    return StreamThread(client, "stream-trade-updates")


class PriceStream(StreamThread):
    """Trades of the symbols held, on the configured feed, one connection whatever the number of symbols."""

    def __init__(self, s: Settings, handler: Callable[[object], Awaitable[None]]) -> None:
        feed = DataFeed.SIP if s.alpaca_data_feed == "sip" else DataFeed.IEX
        client = StockDataStream(s.alpaca_api_key.reveal(), s.alpaca_api_secret.reveal(), feed=feed,
                                 url_override=data_stream_url(s))
        super().__init__(client, "stream-prices")
        self.handler = handler
        self.symbols: set[str] = set()

    def follow(self, symbols: Iterable[str]) -> tuple[set[str], set[str]]:
        """Subscribe to these symbols' trades and unsubscribe the others, on the open connection (alpaca-py
        sends the change; while reconnecting it sends the whole set when it is back). Returns (added, removed)."""
        wanted = set(symbols)
        added, removed = wanted - self.symbols, self.symbols - wanted
        if removed:
            self.client.unsubscribe_trades(*sorted(removed))
        if added:
            self.client.subscribe_trades(self.handler, *sorted(added))
        self.symbols = wanted
        if wanted:
            self.start()
        return added, removed
