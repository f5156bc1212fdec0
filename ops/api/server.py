"""Start the API: checks first (a token, a loopback address unless --api-public, a free port), then uvicorn, in
the bot's process (a daemon thread beside Lumibot's loop) or in the foreground (`live_trader.py serve`)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn

from ops.api.app import create_app
from ops.api.context import ApiContext
from trading.settings import Settings

logger = logging.getLogger("trader.api")
MAKE_TOKEN = "python -c \"import secrets; print(secrets.token_urlsafe(32))\""


class ApiStartError(Exception):
    """The API cannot start; the message says why and what to do (exit code 2)."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(settings: Settings, public: bool) -> list[str]:
    """Refuse to start without a token or on a public address without --api-public; returns warnings."""
    if not settings.api_token:
        raise ApiStartError("API_TOKEN is not set, and the API never runs without one. Make a token with\n  "
                            f"{MAKE_TOKEN}\nand put it in .env as API_TOKEN=<token> (send it as Authorization: "
                            "Bearer <token>).")
    warnings = []
    if not _loopback(settings.api_host):
        if not public:
            raise ApiStartError(f"API_HOST={settings.api_host} is reachable from other machines: add --api-public to "
                                "confirm, or use API_HOST=127.0.0.1 (and an SSH tunnel or a reverse proxy with TLS).")
        warnings.append(f"the API listens on {settings.api_host}:{settings.api_port}, reachable from other "
                        "machines; the token travels in clear text unless a TLS proxy is in front")
    with socket.socket(socket.AF_INET6 if ":" in settings.api_host else socket.AF_INET) as probe:
        try:
            probe.bind((settings.api_host, settings.api_port))
        except OSError as exc:
            raise ApiStartError(f"cannot listen on {settings.api_host}:{settings.api_port} ({exc.strerror}): another "
                                "process uses the port? Set API_PORT in .env.") from None
    return warnings


def _config(ctx: ApiContext, host: str, port: int) -> uvicorn.Config:
    # log_config=None: uvicorn keeps the bot's logging; access logs off (the request counts are in /api/health)
    return uvicorn.Config(create_app(ctx), host=host, port=port, log_config=None, access_log=False,
                          timeout_graceful_shutdown=2, lifespan="on")


class ApiThread:
    """uvicorn in a daemon thread: the bot's iterations never wait for it, and it stops with the bot."""

    def __init__(self, ctx: ApiContext, host: str, port: int) -> None:
        self.ctx, self.host, self.port = ctx, host, port
        self.server = uvicorn.Server(_config(ctx, host, port))
        self.server.install_signal_handlers = lambda: None  # the bot owns SIGINT/SIGTERM
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ApiThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ApiStartError(f"the API did not start on {self.url}")
            time.sleep(0.02)
        if self.port == 0:  # an ephemeral port (tests): the one the OS gave
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
        logger.info("API and dashboard on %s (token required)", self.url)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def start_with_bot(settings: Settings, bot, port: int | None = None) -> ApiThread:
    ctx = ApiContext.build(settings.journal_path, settings, bot)
    return ApiThread(ctx, settings.api_host, settings.api_port if port is None else port).start()


def serve(settings: Settings, journal: Path) -> int:
    """`live_trader.py serve --journal PATH`: the API and dashboard over a journal, in the foreground."""
    ctx = ApiContext.build(journal, settings)
    print(f"Serving {journal} on http://{settings.api_host}:{settings.api_port} (dashboard at /, API docs at /docs; "
          "Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.Server(_config(ctx, settings.api_host, settings.api_port)).run()
    return 0
