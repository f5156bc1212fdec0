"""The soak's fake Alpaca server (tests/fake_alpaca) in a process of its own, driven over a pipe.

  python bench/soak_fake_server.py --symbols N --iterations I

Builds the soak's market (`soak_market`: tests/live_harness.scripted_market for N symbols plus SPY and QQQ, enough
hourly bars for I iterations), starts the fake with its rate limits off, and writes one JSON line to stdout:
{"url", "key", "secret", "now", "steps"} (steps: the clock of every iteration after the first, ISO strings). Then
it answers one JSON line per JSON line read on stdin:

  {"cmd": "counts"}          the requests logged since the last "counts" (then the log is cleared):
                             {"requests", "bars", "latest", "trading", "endpoints": {"GET /v2/orders/{id}": n, ...}}
  {"cmd": "set_now", "t": ISO}  the clock moved to t (bars, expiries and pending work in between are processed):
                             {"now"}
  {"cmd": "stats"}           {"rss_mb", "fake_orders", "errors", "sockets", "now"} of this process
  {"cmd": "stop"}            the server stops and the process exits: {}

bench/bench_soak.py starts it so that the bot process's memory and sockets are the bot's alone (the fake keeps
every order it ever accepted, and serves 500 symbols' bar pages on its own interpreter lock).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BARS_PER_SESSION = 7  # hourly bars in a regular session: 09:30 .. 15:30
HISTORY_SESSIONS = 62  # 434 hourly bars of history: the bot's 400-bar window is full from the first iteration
START = "2024-03-05 09:31"  # the first iteration's clock (New York)


def soak_market(n: int, iterations: int):
    """(bars, start, steps): the market for n symbols, the first iteration's clock, and the clock of iterations
    2.. (one minute past the start of each later bar, overnight gaps and weekends included)."""
    import pandas as pd

    from bench.bench_live_requests import names
    from tests.live_harness import NY, SCRIPTED_DAY, scripted_market

    universe = names(n)
    sessions = math.ceil(iterations / BARS_PER_SESSION * 1.15) + 3  # early closes have fewer bars
    bars = scripted_market(symbols=(*universe, "SPY", "QQQ"), days=sessions, history_sessions=HISTORY_SESSIONS,
                           shapes=SCRIPTED_DAY)
    start = pd.Timestamp(START, tz=NY)
    steps = [t + pd.Timedelta(minutes=1) for t in bars["SPY"].index if t + pd.Timedelta(minutes=1) > start]
    if len(steps) < iterations:
        raise SystemExit(f"the market has {len(steps)} bars after the start, {iterations} needed")
    return bars, start, steps


ORDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SYMBOL = re.compile(r"(?<=/v2/positions/)[^/]+")


def endpoint(method: str, path: str) -> str:
    """"GET /v2/orders/{id}": the order id or symbol in a path replaced."""
    return f"{method} {SYMBOL.sub('{symbol}', ORDER_ID.sub('{id}', path))}"


def log_counts(srv) -> dict:
    """HTTP requests in the fake's log: all, bar pages, latest trades, trading API, and the trading API's by
    endpoint ("GET /v2/orders/{id}": ids and symbols in the path replaced)."""
    with srv.log_lock:
        reqs = list(srv.requests)
    trading = [r for r in reqs if not r["path"].startswith("/v2/stocks")]
    return {"requests": len(reqs), "bars": sum(1 for r in reqs if r["path"].startswith("/v2/stocks/bars")),
            "latest": sum(1 for r in reqs if r["path"].startswith("/v2/stocks/trades/latest")),
            "trading": len(trading),
            "endpoints": dict(Counter(endpoint(r["method"], r["path"]) for r in trading).most_common())}


def process_stats(srv) -> dict:
    """Memory and sockets of this process, and what the fake holds."""
    import psutil

    me = psutil.Process()
    conns = [c for c in me.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]
    return {"rss_mb": me.memory_info().rss / 2**20, "fake_orders": len(srv.engine.orders), "errors": len(srv.errors),
            "sockets": len(conns), "now": srv.now.isoformat()}


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, required=True)
    ap.add_argument("--iterations", type=int, required=True)
    args = ap.parse_args()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)  # the pipe: only our JSON lines go there
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything a library prints goes to stderr

    from utils import lumibot_env

    lumibot_env.prepare(backtesting=True)
    from tests.fake_alpaca import FakeAlpaca

    bars, start, steps = soak_market(args.symbols, args.iterations)
    srv = FakeAlpaca(bars, now=start, rate_limit=None, data_rate_limit=None).start()
    del bars
    out.write(json.dumps({"url": srv.url, "key": srv.key, "secret": srv.secret, "now": srv.now.isoformat(),
                          "steps": [t.isoformat() for t in steps[:args.iterations]]}) + "\n")
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            msg = json.loads(line)
            cmd = msg["cmd"]
            if cmd == "counts":
                answer = log_counts(srv)
                srv.clear_log()
            elif cmd == "set_now":
                srv.set_now(msg["t"])
                answer = {"now": srv.now.isoformat()}
            elif cmd == "stats":
                answer = process_stats(srv)
            elif cmd == "stop":
                out.write("{}\n")
                break
            else:
                answer = {"error": f"unknown command {cmd!r}"}
            out.write(json.dumps(answer) + "\n")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
