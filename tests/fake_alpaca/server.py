"""The HTTP layer: a keep-alive ThreadingHTTPServer with auth, rate-limit headers, fault injection and a log.

Every request is recorded in `requests`; 4xx answers on /v2/orders and /v2/positions also in `rejections`.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import traceback
from collections import deque
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from .fake import FakeAlpaca

UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}
FAULT_BODIES = {"500": {"code": 50010000, "message": "internal server error"},
                "503": {"code": 50310000, "message": "service unavailable"},
                "504": {"message": "gateway timeout"}}
RESET = -1  # _answer's status for "drop the connection without an answer"


class RateLimiter:
    """A rolling 60-second window per bucket ("trading" and "data")."""

    def __init__(self, limits: dict[str, int | None]) -> None:
        self.limits = limits
        self._hits: dict[str, deque] = {k: deque() for k in limits}
        self._lock = threading.Lock()

    def hit(self, bucket: str) -> tuple[int, int, int, bool]:
        """Count one request: (limit, remaining, reset epoch seconds, over the limit)."""
        now = time.time()
        with self._lock:
            q = self._hits[bucket]
            while q and q[0] <= now - 60:
                q.popleft()
            q.append(now)
            limit = self.limits.get(bucket)
            shown = limit if limit is not None else 10_000
            reset = int(q[0] + 60)
            over = limit is not None and len(q) > limit
            return shown, max(0, shown - len(q)), reset, over


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, owner: FakeAlpaca) -> None:
        self.owner = owner
        self.sockets: set[socket.socket] = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.sock_lock:
            self.owner.connections_accepted += 1
            self.sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sock_lock:
            self.sockets.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self.sock_lock:
            socks = list(self.sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _plain(obj):
    """Decimals from the JSON parser back to floats for the request log."""
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAlpaca/1.0"
    disable_nagle_algorithm = True   # no 40 ms delayed-ACK stalls on keep-alive connections
    wbufsize = 64 * 1024             # headers and body leave in one write (flushed in _send)
    server: _Server

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PUT(self):
        self._handle("PUT")

    # ------------------------------------------------------------------ plumbing
    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None, None, False
        try:
            return json.loads(raw, parse_float=Decimal), raw, False
        except ValueError:
            return None, raw, True

    def _send(self, status: int, payload, headers: dict) -> None:
        data = b"" if payload is None or status == 204 else json.dumps(payload).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, str(v))
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.wfile.flush()

    def _handle(self, method: str) -> None:
        try:
            self._handle_request(method)
        finally:
            self.server.owner.response_done()  # the trade_updates this request caused may leave now

    def _handle_request(self, method: str) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body, _raw, bad_json = self._read_body()
        status, payload, headers = self._answer(owner, method, path, query, body, bad_json)
        plain = _plain(body)
        if status == RESET:  # the connection drops: no status line, no body (the client sees a reset)
            with owner.log_lock:
                owner.requests.append({"method": method, "path": path, "query": query, "body": plain,
                                       "status": "reset", "time": owner.now, "wall": time.time()})
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        entry = {"method": method, "path": path, "query": query, "body": plain, "status": status,
                 "time": owner.now, "wall": time.time()}
        with owner.log_lock:
            owner.requests.append(entry)
            if 400 <= status < 500 and path.startswith(("/v2/orders", "/v2/positions")):
                owner.rejections.append({"method": method, "path": path, "query": query, "body": plain,
                                         "status": status, "response": payload})
        self._send(status, payload, headers)

    def _answer(self, owner: FakeAlpaca, method, path, query, body, bad_json):
        data = path.startswith("/v2/stocks")
        limit, remaining, reset, over = owner.rate_limiter.hit("data" if data else "trading")
        headers = {"X-Ratelimit-Limit": limit, "X-Ratelimit-Remaining": remaining, "X-Ratelimit-Reset": reset}
        if (self.headers.get("APCA-API-KEY-ID") != owner.key
                or self.headers.get("APCA-API-SECRET-KEY") != owner.secret):
            return 401, UNAUTHORIZED, headers
        if over:
            headers["X-Ratelimit-Remaining"] = 0
            return 429, {"message": "too many requests"}, headers
        faults = owner.faults
        slow = faults.take("timeout", method, path)
        if slow is not None:
            time.sleep(float(slow.params.get("seconds", 3)))
        hit = faults.take(("429", "500", "503", "504"), method, path)
        if hit is not None:
            if hit.kind == "429":
                headers["X-Ratelimit-Remaining"] = 0
                headers["X-Ratelimit-Reset"] = int(time.time()) + int(hit.params.get("reset_in", 60))
                return 429, {"message": "too many requests"}, headers
            return int(hit.kind), FAULT_BODIES[hit.kind], headers
        reset = faults.take("reset", method, path)
        if reset is not None and not reset.params.get("after"):
            return RESET, None, headers
        lost = faults.take("lost_response", method, path)
        if bad_json:
            status, payload = 400, {"code": 40010000, "message": "request body format is invalid"}
        else:
            try:
                status, payload = owner.dispatch(method, path, query, body)
            except Exception as exc:  # noqa: BLE001 - any bug in the fake becomes a visible 500
                owner.errors.append(traceback.format_exc())
                status, payload = 500, {"code": 50010000, "message": f"fake server error: {exc}"}
        if lost is not None:
            return 504, FAULT_BODIES["504"], headers
        if reset is not None:
            return RESET, None, headers
        return status, payload, headers


def serve(owner: FakeAlpaca, host: str = "127.0.0.1", port: int = 0) -> tuple[_Server, threading.Thread]:
    srv = _Server((host, port), Handler, owner)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True,
                              name="fake-alpaca")
    thread.start()
    return srv, thread
