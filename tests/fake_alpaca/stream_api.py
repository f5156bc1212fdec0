"""FakeAlpaca's websocket side (a mixin): the lazily started stream server, push_trade, and the hooks that flush
trade_updates after each HTTP response and each clock move.

Ordering. The engine queues every order event in `engine.outbox`, tagged with the Trading API request being
handled (FakeAlpaca.dispatch sets the tag) or None (a clock move, settle, push_trade). The HTTP handler calls
`response_done()` after it has sent its response (or dropped the connection); events are then released from the
front of the queue up to the first one whose request has not been answered yet. So an order's first event never
leaves before the REST response that created it, and all events keep the engine's order. Work that a request's
step resolves first (due fills, cancels, replaces) is released before that request is handled.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from . import matching
from .stream_events import clock_data, releasable, trade_msg
from .streams import StreamServer

if TYPE_CHECKING:
    from .engine import Engine
    from .marketdata import MarketData


class StreamsMixin:
    engine: Engine
    marketdata: MarketData

    def _init_streams(self) -> None:
        self._streams: StreamServer | None = None
        self._streams_lock = threading.Lock()
        self._tls = threading.local()
        self._tags = itertools.count(1)
        self._unsent: set[int] = set()  # requests handled whose response has not been sent yet
        self._trade_ids = itertools.count(1)
        self.trade_updates_sent: list[dict] = []  # every trade_updates message released, listeners or not

    # ------------------------------------------------------------------ public
    @property
    def stream_url(self) -> str:
        """ws://127.0.0.1:PORT; the first access starts the stream server (and the engine's event queue)."""
        with self._streams_lock:
            if self._streams is None:
                server = StreamServer(self).start()
                with self.engine.lock:
                    self.engine.outbox = []
                    self._streams = server
            return self._streams.url

    def stream_connections(self) -> dict[str, int]:
        """Stream connections open now, {"trading": n, "data": n}: data ones once authenticated, trading ones once
        authenticated and listening to trade_updates (so after waiting for 1 no event can be missed)."""
        s = self._streams
        return s.counts() if s is not None else {"trading": 0, "data": 0}

    def stream_connects(self) -> dict[str, int]:
        """Connections counted as in stream_connections() since the stream server started, per kind."""
        s = self._streams
        return s.totals() if s is not None else {"trading": 0, "data": 0}

    def data_subscriptions(self, channel: str = "trades") -> set[str]:
        """Symbols subscribed to `channel` now, over every open data connection ("*" stays "*")."""
        s = self._streams
        return set(s.subscribed(channel)) if s is not None else set()

    def drop_streams(self) -> None:
        """Abort every stream connection (no close frame), as a network failure would; clients reconnect."""
        s = self._streams
        if s is not None:
            s.drop()

    def mute_data_streams(self) -> None:
        """The data connections open now stay connected but carry no more market data (pings and subscription
        acks still answered), as Alpaca's did in alpaca-py issue 740; a client that reconnects gets data again."""
        s = self._streams
        if s is not None:
            s.mute_data()

    def push_trade(self, symbol: str, price: float, size: float = 100) -> None:
        """A trade prints now at `price`: until the clock next moves it is the mark (matching, positions, REST
        latest trade/quote/snapshot), working orders it makes marketable or whose stop it reaches fill at it
        (matching.trade_at), and trade subscribers get it at once."""
        sym = symbol.upper()
        with self.engine.lock:
            if sym not in self.engine.series:
                raise KeyError(symbol)
            if self.engine.halted_since(sym) is not None:
                raise RuntimeError(f"{sym} is halted: it does not trade")
            self.engine.pushed[sym] = (float(price), size)
            if self._streams is not None:  # the print first, then the fills it causes
                self._streams.publish_data([trade_msg(sym, self.engine.now, float(price), size,
                                                      next(self._trade_ids))])
            matching.trade_at(self.engine, sym, float(price))
            self._flush_streams()

    # ------------------------------------------------------------------ hooks (FakeAlpaca, server.Handler)
    def _tag_request(self) -> None:
        """Called under the engine lock before a Trading API request is handled."""
        self._tls.tag = None
        if self.engine.outbox is None:
            return
        self._flush_streams()  # what this request's step resolved happened before the request
        tag = next(self._tags)
        self._unsent.add(tag)
        self.engine.emit_tag = self._tls.tag = tag

    def response_done(self) -> None:
        """Called by the HTTP handler after each response (sent or dropped): release the events it held back."""
        tag = getattr(self._tls, "tag", None)
        self._tls.tag = None
        if tag is None and self._streams is None:
            return
        with self.engine.lock:
            self._unsent.discard(tag)
            self._flush_streams()

    def _flush_streams(self) -> None:
        """Engine lock held: send the releasable trade_updates."""
        out = self.engine.outbox
        if not out or self._streams is None:
            return
        msgs = releasable(out, self._unsent)
        if msgs:
            self.trade_updates_sent.extend(msgs)
            self._streams.publish_trade_updates(msgs)

    def _clock_moved(self, old_ns: int) -> None:
        """Engine lock held, after the clock moved: the order events first (they happened on the way), then the
        market data of the new time."""
        if self._streams is None:
            return
        self._flush_streams()
        if self.engine.now_ns > old_ns:
            subs = {c: self._streams.subscribed(c) for c in ("trades", "quotes", "bars")}
            msgs = clock_data(self.engine, self.marketdata, subs, old_ns, self._trade_ids)
            if msgs:
                self._streams.publish_data(msgs)

    def _stop_streams(self) -> None:
        with self._streams_lock:
            server = self._streams
            if server is None:
                return
            with self.engine.lock:
                self.engine.outbox = None
                self._streams = None
                self._unsent.clear()
        server.stop()
