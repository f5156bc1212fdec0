"""Benchmark: HTTP requests per live iteration for universes of 10, 100 and 500 symbols, against the fake
Alpaca server, side by side with what Lumibot's own calls would cost for the same symbols.

  python bench/bench_live_requests.py [--sizes 10 100 500] [--hours 4]

For each universe the bot (live, paper, through Lumibot's Alpaca broker and the real alpaca-py clients)
runs the first hours of a scripted day. Counted per iteration at the server:
- bars: HTTP requests to /v2/stocks/bars (one multi-symbol request; alpaca-py follows next_page_token,
  10,000 bars a page, so a full window of 400 bars x 500 symbols is 20+ pages; later iterations the same
  day fetch only from the last bar held);
- latest: /v2/stocks/trades/latest (one request for all symbols);
- trading: every trading-API request (the bot's snapshot, Lumibot's own re-read, orders).
Then, once, what Lumibot's live data calls cost for the same symbols: `get_last_prices` (one quotes request
per symbol) and `get_historical_prices` per symbol (one bars request per symbol).
Also a soak: sockets open in this process at the start and after all the iterations.
"""

import argparse
import itertools
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

import pandas as pd  # noqa: E402

from tests.fake_alpaca import FakeAlpaca  # noqa: E402
from tests.live_harness import NY, SCRIPTED_DAY, UNIVERSE, LiveBot, scripted_market  # noqa: E402


def names(n: int) -> list[str]:
    fillers = ("".join(p) for p in itertools.product(string.ascii_uppercase, repeat=3))
    return [*UNIVERSE, *(f"Z{f}" for f in itertools.islice(fillers, max(n - len(UNIVERSE), 0)))][:n]


def open_sockets() -> int:
    """TCP sockets of this process (client and the in-process fake's server side), from /proc."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink().name if hasattr(fd, "readlink") else ""
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        count += sum(1 for r in rows if r.split()[9] in inodes and r.split()[3] != "0A")  # not LISTEN
    return count


def lumibot_per_symbol_cost(bot: LiveBot, srv: FakeAlpaca, symbols: list[str]) -> tuple[tuple[int, int], ...]:
    """(requests, of which refused with 429) for Lumibot's get_last_prices and per-symbol get_historical_prices."""
    import logging

    from alpaca.common.exceptions import APIError
    from lumibot.entities import Asset

    logging.disable(logging.ERROR)  # Lumibot logs one "too many requests" error line per symbol otherwise
    try:
        srv.clear_log()
        try:
            bot.strategy.get_last_prices([Asset(s) for s in symbols])
        except APIError:
            pass  # Lumibot gives up at the first 429 (the rest of the symbols get no price)
        quotes = (len(srv.requests), sum(1 for r in srv.requests if r["status"] == 429))
        srv.clear_log()
        for s in symbols:
            bot.strategy.get_historical_prices(Asset(s), 30, "hour")
        bars = [r for r in srv.requests if r["path"] == "/v2/stocks/bars"]
        return quotes, (len(bars), sum(1 for r in bars if r["status"] == 429))
    finally:
        logging.disable(logging.NOTSET)


def run(n: int, hours: int, soak_hours: int) -> dict:
    universe = names(n)
    bars = scripted_market(symbols=(*universe, "SPY", "QQQ"), history_sessions=62, shapes=SCRIPTED_DAY)
    srv = FakeAlpaca(bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        bot = LiveBot(srv, tmp / "journal.sqlite", env={"UNIVERSE": ",".join(universe),
                                                        "MAX_ORDERS_PER_ITERATION": "3"})
        rows = []
        sockets_start = None
        for hour in range(hours + soak_hours):
            srv.clear_log()
            t0 = time.perf_counter()
            bot.iterate()
            wall = time.perf_counter() - t0
            if hour < hours:
                rows.append({"bars": srv.count("/v2/stocks/bars"), "latest": srv.count("/v2/stocks/trades/latest"),
                             "trading": sum(1 for r in srv.requests if not r["path"].startswith("/v2/stocks")),
                             "wall": wall})
            if hour == 0:
                sockets_start = open_sockets()
            srv.advance(pd.Timedelta(minutes=20 if hour >= hours else 60))
        sockets_end = open_sockets()
        quotes, per_symbol_bars = lumibot_per_symbol_cost(bot, srv, universe)  # after the soak: a fresh minute
        bot.close()
        return {"n": n, "rows": rows, "quotes": quotes, "per_symbol_bars": per_symbol_bars,
                "sockets": (sockets_start, sockets_end), "connections": srv.connections_accepted,
                "iterations": hours + soak_hours, "rejections": len(srv.rejections)}
    finally:
        srv.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    ap.add_argument("--hours", type=int, default=3, help="iterations measured per universe")
    ap.add_argument("--soak", type=int, default=30, help="further iterations (20 minutes apart) for the soak")
    args = ap.parse_args()
    from utils import logging_setup

    logging_setup.configure("WARNING", console=False)  # the decision lines of 500 symbols are not the point here
    results = [run(n, args.hours, args.soak) for n in args.sizes]
    print("\nHTTP requests per live iteration (first iteration of the day = full bar window; later = new bars)")
    print(f"{'symbols':>8} {'iteration':>9} {'bars':>5} {'latest':>6} {'data total':>10} {'trading':>7} {'wall s':>7}")
    for r in results:
        for i, row in enumerate(r["rows"], 1):
            print(f"{r['n']:>8} {i:>9} {row['bars']:>5} {row['latest']:>6} {row['bars'] + row['latest']:>10} "
                  f"{row['trading']:>7} {row['wall']:>7.2f}")
    print("\nThe same symbols through Lumibot's per-symbol live calls (one iteration's worth)")
    print("(requests, and how many the data API's 200-a-minute limit refused with 429)")
    print(f"{'symbols':>8} {'get_last_prices':>18} {'get_historical_prices':>22} {'ours (later iter.)':>19}")
    for r in results:
        ours = r["rows"][-1]["bars"] + r["rows"][-1]["latest"]
        (q, q429), (b, b429) = r["quotes"], r["per_symbol_bars"]
        print(f"{r['n']:>8} {f'{q} ({q429} x 429)':>18} {f'{b} ({b429} x 429)':>22} {ours:>19}")
    print("\nSoak: sockets of this process (bot clients + the fake's server side), connections the fake accepted")
    for r in results:
        print(f"{r['n']:>8} symbols: {r['iterations']} iterations, sockets after the first {r['sockets'][0]}, "
              f"at the end {r['sockets'][1]}; connections accepted {r['connections']}; "
              f"4xx answers {r['rejections']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
