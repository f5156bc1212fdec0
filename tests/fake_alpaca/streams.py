"""The fake's two websockets, on their own loopback port (the REST server is http.server-based and cannot
upgrade), served by `websockets` in a daemon thread that owns its asyncio loop.

/stream       trade_updates (alpaca-streams.md A, D 1-7). No greeting; {"action":"authenticate",...} -> authorization
              authorized | unauthorized (then closed); listen -> listening ([] stops delivery), before auth ->
              unauthorized/listen. Events: JSON in binary frames, like the paper server.
/v2/{feed}    stock market data (B, D 8-14), also /v1beta1/{feed}. msgpack binary frames if the client sends
              Content-Type: application/msgpack (alpaca-py always does), else JSON text. Greeting, auth,
              subscribe/unsubscribe -> the full subscription. Errors (stream_events.ERRORS): 400 garbage, 401
              (un)subscribe before auth, 402 bad keys, 403 second auth, 404 no auth within
              Settings.stream_auth_timeout, 405 above Settings.stream_symbol_limit symbols of trades+quotes
              (subscriptions unchanged), 406 a second authenticated connection on the same endpoint (freed as soon
              as the first closes), 410 unknown channel; 402/404/406 close the connection.
Other threads reach the loop only through call_soon_threadsafe / run_coroutine_threadsafe, and FakeAlpaca calls
them under the engine lock, so messages leave in the engine's order. The loop never takes the engine lock; the
counters and the subscription union other threads read sit behind a small lock of their own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from . import stream_events as ev

if TYPE_CHECKING:
    from .fake import FakeAlpaca

CLOSE = object()  # queued after the last frame of a connection the server ends (an auth failure)
FRAME_MAX = 200  # data points per frame: far below the client's 1 MiB max_size
IGNORED_CHANNELS = frozenset({"action", "corrections", "cancelErrors"})  # implied by trades; accepted, unused
KINDS = ("trading", "data")


class Conn:
    """One websocket: kind, encoding, auth state, subscriptions, and an outgoing queue drained by one writer task,
    so that replies and pushed messages leave in the order they were queued."""

    def __init__(self, ws: ServerConnection, kind: str) -> None:
        self.ws, self.kind = ws, kind
        self.path = ws.request.path
        self.msgpack = "msgpack" in (ws.request.headers.get("Content-Type") or "").lower()
        self.authed = self.listening = self.counted = False
        self.mute = False  # connected, answering pings and control messages, but carrying no market data
        self.subs: dict[str, set[str]] = {c: set() for c in ev.DATA_CHANNELS}
        self.out: asyncio.Queue = asyncio.Queue()
        self.done = asyncio.Event()

    def put(self, frame) -> None:
        self.out.put_nowait(frame)

    def put_data(self, msgs: list[dict]) -> None:
        self.put(ev.encode_data(msgs, self.msgpack))

    def wants(self, msg: dict) -> bool:
        subs = self.subs[ev.CHANNEL_OF[msg["T"]]]
        return msg["S"] in subs or "*" in subs


class StreamServer:
    def __init__(self, owner: FakeAlpaca) -> None:
        self.owner = owner  # key, secret and settings are read live, so tests can flip settings at any time
        self.lock = threading.Lock()
        self.open = dict.fromkeys(KINDS, 0)       # counted connections open now (see _count)
        self.connects = dict.fromkeys(KINDS, 0)   # counted connections accepted since start
        self.union: dict[str, frozenset[str]] = {c: frozenset() for c in ev.DATA_CHANNELS}
        self.conns: set[Conn] = set()             # loop thread only
        self.slots: dict[str, Conn] = {}          # data endpoint path -> its authenticated connection (loop only)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle (any thread)
    def start(self) -> StreamServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main(ready)), daemon=True,
                                        name="fake-alpaca-streams")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake's stream server did not start")
        return self

    async def _main(self, ready: threading.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._route, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stop.wait()
        # leaving `async with` closed every connection with 1001 and waited for the handlers

    def stop(self) -> None:
        self._call(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _call(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: the server is gone, nobody to send to
            pass

    # ------------------------------------------------------------------ controls (any thread)
    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.open)

    def totals(self) -> dict[str, int]:
        with self.lock:
            return dict(self.connects)

    def subscribed(self, channel: str) -> frozenset[str]:
        with self.lock:
            return self.union[channel]

    def publish_trade_updates(self, msgs: list[dict]) -> None:
        self._call(self._fanout_trading, [ev.encode_trading(m) for m in msgs])

    def publish_data(self, msgs: list[dict]) -> None:
        self._call(self._fanout_data, msgs)

    def mute_data(self) -> None:
        """Every data connection open now goes mute (alpaca-py issue 740); a new connection carries data again."""
        asyncio.run_coroutine_threadsafe(self._mute_data(), self.loop).result(timeout=10)

    def drop(self) -> None:
        """Abort every connection's transport (no close frame) and wait until their handlers have cleaned up."""
        asyncio.run_coroutine_threadsafe(self._drop(), self.loop).result(timeout=10)

    # ------------------------------------------------------------------ loop side
    def _fanout_trading(self, frames: list[bytes]) -> None:
        for conn in self.conns:
            if conn.kind == "trading" and conn.authed and conn.listening:
                for frame in frames:
                    conn.put(frame)

    def _fanout_data(self, msgs: list[dict]) -> None:
        for conn in self.conns:
            if conn.kind == "data" and conn.authed and not conn.mute:
                mine = [m for m in msgs if conn.wants(m)]
                for i in range(0, len(mine), FRAME_MAX):
                    conn.put_data(mine[i:i + FRAME_MAX])

    async def _mute_data(self) -> None:
        for conn in self.conns:
            if conn.kind == "data":
                conn.mute = True

    async def _drop(self) -> None:
        conns = list(self.conns)
        for conn in conns:
            conn.ws.transport.abort()
        if conns:
            await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in conns)), 5)

    def _keys_ok(self, key, secret) -> bool:
        o = self.owner
        return not o.settings.refuse_stream_auth and key == o.key and secret == o.secret

    def _count(self, conn: Conn) -> None:
        """A data connection counts once authenticated; a trading one once it also listens to trade_updates
        (alpaca-py sends listen right after auth), so a test that waits for the count misses no event."""
        if conn.counted:
            return
        conn.counted = True
        with self.lock:
            self.open[conn.kind] += 1
            self.connects[conn.kind] += 1

    def _refresh_union(self) -> None:
        data = [c for c in self.conns if c.kind == "data" and c.authed]
        union = {ch: frozenset().union(*(c.subs[ch] for c in data)) for ch in ev.DATA_CHANNELS}
        with self.lock:
            self.union = union

    async def _route(self, ws: ServerConnection) -> None:
        path = ws.request.path
        kind = ("trading" if path.rstrip("/") == "/stream"
                else "data" if path.startswith(("/v2/", "/v1beta1/")) else None)
        if kind is None:
            await ws.close(1008, "unknown path")
            return
        conn = Conn(ws, kind)
        self.conns.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        try:
            await (self._trading(conn) if kind == "trading" else self._data(conn))
            conn.put(CLOSE)
            await writer  # the last replies (an auth failure) leave before the close frame
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - a bug in the fake: visible in owner.errors, like the REST side's 500s
            self.owner.errors.append(traceback.format_exc())
        finally:
            writer.cancel()
            self.conns.discard(conn)
            if self.slots.get(conn.path) is conn:
                del self.slots[conn.path]  # freed at once, so the client's own reconnect is never locked out
            if conn.counted:
                with self.lock:
                    self.open[kind] -= 1
            self._refresh_union()
            conn.done.set()

    async def _writer(self, conn: Conn) -> None:
        try:
            while True:
                frame = await conn.out.get()
                if frame is CLOSE:
                    await conn.ws.close()
                    return
                await conn.ws.send(frame)
        except ConnectionClosed:
            pass

    async def _trading(self, conn: Conn) -> None:
        async for raw in conn.ws:
            try:
                m = json.loads(raw)
            except ValueError:
                continue  # what the real server answers to garbage is unknown; alpaca-py never sends any
            if not isinstance(m, dict):
                continue
            action = m.get("action")
            data = m.get("data") if isinstance(m.get("data"), dict) else {}
            if action == "authenticate":
                ok = self._keys_ok(data.get("key_id"), data.get("secret_key"))
                conn.put(ev.encode_trading({"stream": "authorization", "data": {
                    "status": "authorized" if ok else "unauthorized", "action": "authenticate"}}))
                if not ok:
                    return
                conn.authed = True
            elif action == "listen":
                if not conn.authed:
                    conn.put(ev.encode_trading({"stream": "authorization", "data": {
                        "status": "unauthorized", "action": "listen"}}))
                    continue
                streams = [s for s in (data.get("streams") or []) if s == "trade_updates"]
                conn.listening = bool(streams)
                if conn.listening:
                    self._count(conn)
                conn.put(ev.encode_trading({"stream": "listening", "data": {"streams": streams}}))

    async def _data(self, conn: Conn) -> None:
        conn.put_data([{"T": "success", "msg": "connected"}])
        deadline = self.loop.time() + self.owner.settings.stream_auth_timeout
        while True:
            try:
                if conn.authed:
                    raw = await conn.ws.recv()
                else:
                    raw = await asyncio.wait_for(conn.ws.recv(), max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                conn.put_data(ev.error_msg(404))
                return
            try:
                m = ev.decode_data(raw, conn.msgpack)
            except (ValueError, TypeError):
                m = None
            action = m.get("action") if isinstance(m, dict) else None
            if action == "auth":
                if conn.authed:
                    conn.put_data(ev.error_msg(403))
                    continue
                if not self._keys_ok(m.get("key"), m.get("secret")):
                    conn.put_data(ev.error_msg(402))
                    return
                if conn.path in self.slots:
                    conn.put_data(ev.error_msg(406))
                    return
                self.slots[conn.path] = conn
                conn.authed = True
                self._count(conn)
                conn.put_data([{"T": "success", "msg": "authenticated"}])
            elif action in ("subscribe", "unsubscribe"):
                if not conn.authed:
                    conn.put_data(ev.error_msg(401))
                    continue
                self._subscribe(conn, m, add=action == "subscribe")
            else:
                conn.put_data(ev.error_msg(400))

    def _subscribe(self, conn: Conn, m: dict, add: bool) -> None:
        if any(k not in ev.DATA_CHANNELS and k not in IGNORED_CHANNELS for k in m):
            conn.put_data(ev.error_msg(410))
            return
        subs = {c: set(v) for c, v in conn.subs.items()}
        for c in ev.DATA_CHANNELS:
            syms = m.get(c) or []
            if not isinstance(syms, list) or not all(isinstance(s, str) and s for s in syms):
                conn.put_data(ev.error_msg(400))
                return
            (subs[c].update if add else subs[c].difference_update)(s.upper() for s in syms)
        cap = self.owner.settings.stream_symbol_limit
        if add and cap is not None and len(subs["trades"] | subs["quotes"]) > cap:
            conn.put_data(ev.error_msg(405))  # the subscriptions stay as they were
            return
        conn.subs = subs
        self._refresh_union()
        conn.put_data([ev.subscription_msg(subs)])
