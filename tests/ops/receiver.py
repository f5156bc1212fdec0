"""A real HTTP receiver on loopback for apprise's json:// URLs: it records what arrives, and can be made slow.

`Receiver(delay_s=...)` answers each POST after sleeping (a hanging channel); `dead_url()` is a port with
nothing listening (a refused connection).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, delay_s: float = 0.0, status: int = 200) -> None:
        self.delay_s, self.status = delay_s, status
        self.messages: list[dict] = []  # apprise's JSON payloads: version, title, message, type, attachments
        self.hits = 0  # requests received, answered or not yet
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls do_<METHOD>
                with outer._cond:
                    outer.hits += 1
                    outer._cond.notify_all()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                with outer._cond:
                    outer.messages.append({**json.loads(body), "path": self.path})
                    outer._cond.notify_all()
                try:
                    self.send_response(outer.status)
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting: that is the point of a slow receiver

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/alerts"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, n: int, timeout: float = 5.0, hits: bool = False) -> bool:
        """Until `n` messages arrived (or `n` requests came in, with hits=True); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: (self.hits if hits else len(self.messages)) >= n, timeout)

    def titles(self) -> list[str]:
        with self._cond:
            return [m["title"] for m in self.messages]


def dead_url() -> str:
    """A json:// URL on a loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"json://127.0.0.1:{port}/alerts"
