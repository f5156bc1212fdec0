"""Soak: the live bot (built as tests/live_harness.py's LiveBot builds it) iterated many times against the fake
Alpaca server on a stepped clock, watching memory, sockets and HTTP requests per iteration.

  python bench/bench_soak.py [--symbols 10,500] [--iterations 1000] [--quick] [--budget-minutes 40]

Each universe runs in a fresh child process (this file with --one N), so one universe's memory is not counted
in the next. The market is one long scripted market (tests/live_harness.scripted_market: the scripted day,
then a seeded random walk) with enough hourly bars for every iteration; after each iteration the fake's clock
moves to one minute past the start of the next bar, overnight gaps and weekends included, so every iteration
finds the market open and one new bar completed.

Printed at iterations 1, 100 and the last: RSS of the process (bot + the in-process fake server), TCP sockets
(all of the process's, and those of the bot's clients), HTTP requests at the fake in that iteration; then the
mean requests per iteration over the run and a verdict: are RSS and sockets flat within 5% from iteration 100
to the last? The fake's rate limits are off: the simulated hour passes in a fraction of a wall second, so the
wall-clock 200-a-minute limit would refuse requests a real bot an hour apart never sends that fast.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

import pandas as pd  # noqa: E402

from bench.bench_live_requests import names, open_sockets  # noqa: E402

FLAT = 0.05  # RSS and sockets may move this much from iteration 100 to the last and still count as flat
WARM = 100  # iterations of warm-up: caches, first full bar fetch, Lumibot's books, connection pools
BARS_PER_SESSION = 7  # hourly bars in a regular session: 09:30 .. 15:30
HISTORY_SESSIONS = 62  # 434 hourly bars of history: the bot's 400-bar window is full from the first iteration


def rss_mb() -> float:
    """Resident memory of this process in MB (psutil when installed, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def tcp_sockets(server_port: int) -> tuple[int, int]:
    """(all TCP sockets of this process except listening ones, the bot's client sockets to the fake)."""
    try:
        import psutil

        conns = [c for c in psutil.Process().net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]
        return len(conns), sum(1 for c in conns if c.raddr and c.raddr.port == server_port)
    except ImportError:
        total = open_sockets()  # the /proc reading of bench_live_requests: client and server ends
        return total, total // 2


def checkpoints(iterations: int) -> list[int]:
    return sorted({1, min(WARM, iterations), iterations})


def run_one(n: int, iterations: int, budget_s: float) -> dict:
    """One universe in this process: build the market and the bot, iterate, measure at the checkpoints."""
    from tqdm import tqdm

    from tests.fake_alpaca import FakeAlpaca
    from tests.live_harness import NY, SCRIPTED_DAY, LiveBot, scripted_market
    from utils import logging_setup

    logging_setup.configure("WARNING", console=False)  # 500 symbols' decision lines are not the point here
    universe = names(n)
    sessions = math.ceil(iterations / BARS_PER_SESSION * 1.15) + 3  # early closes have fewer bars
    bars = scripted_market(symbols=(*universe, "SPY", "QQQ"), days=sessions, history_sessions=HISTORY_SESSIONS,
                           shapes=SCRIPTED_DAY)
    start = pd.Timestamp("2024-03-05 09:31", tz=NY)
    steps = [t + pd.Timedelta(minutes=1) for t in bars["SPY"].index if t + pd.Timedelta(minutes=1) > start]
    if len(steps) < iterations:
        raise SystemExit(f"the market has {len(steps)} bars after the start, {iterations} needed")
    srv = FakeAlpaca(bars, now=start, rate_limit=None, data_rate_limit=None).start()
    port = int(srv.url.rsplit(":", 1)[1])
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    marks: dict[int, dict] = {}
    totals = {"requests": 0, "bars": 0, "latest": 0, "trading": 0, "wall": 0.0}
    done = 0
    try:
        # the in-process fake serves 500 symbols' bar pages on the bot's GIL: under load a page can take longer
        # than the 2 s the tests allow, and a timed-out iteration is skipped (not measured), so allow 30 s
        bot = LiveBot(srv, tmp / "journal.sqlite", env={"UNIVERSE": ",".join(universe), "BROKER_TIMEOUT_SECONDS": "30"})
        began = time.perf_counter()
        wanted = set(checkpoints(iterations))
        for i in tqdm(range(1, iterations + 1), desc=f"{n} symbols", unit="it", file=sys.stderr, mininterval=2):
            srv.clear_log()  # the fake's request log would otherwise grow with the run and be counted as ours
            t0 = time.perf_counter()
            bot.iterate()
            wall = time.perf_counter() - t0
            row = {"requests": len(srv.requests), "bars": srv.count("/v2/stocks/bars"),
                   "latest": srv.count("/v2/stocks/trades/latest"),
                   "trading": sum(1 for r in srv.requests if not r["path"].startswith("/v2/stocks")), "wall": wall}
            for k in totals:
                totals[k] += row[k]
            done = i
            over = time.perf_counter() - began > budget_s
            if i in wanted or over:
                gc.collect()  # what the process holds, not garbage the collector has not reached yet
                sockets, bot_sockets = tcp_sockets(port)
                marks[i] = {**row, "rss_mb": rss_mb(), "sockets": sockets, "bot_sockets": bot_sockets,
                            "decision_records": len(bot.strategy.decision_log.records),
                            "fake_orders": len(srv.engine.orders), "orders_sent": len(bot.journal.frame("orders")),
                            "completed": bot.strategy.iterations}  # the others were skipped (broker unreachable)
            if over:
                break
            srv.set_now(steps[i - 1])  # iteration i ran at the previous step (the first at `start`)
        elapsed = time.perf_counter() - began
        bot.close()
    finally:
        srv.stop()
    return {"n": n, "iterations": done, "asked": iterations, "elapsed_s": elapsed, "marks": marks,
            "mean": {k: v / max(done, 1) for k, v in totals.items()}, "clock_end": str(srv.now),
            "errors": len(srv.errors)}


def verdict(r: dict) -> str:
    """Flat when the last checkpoint is within FLAT of the warm-up checkpoint, for RSS and for sockets."""
    warm = r["marks"].get(WARM)
    last = r["marks"][max(r["marks"])]
    if warm is None or max(r["marks"]) <= WARM:
        return f"{r['n']} symbols: no verdict (the run ended before iteration {WARM} plus some)"
    parts, flat = [], True
    for key, unit in (("rss_mb", " MB"), ("sockets", "")):
        a, b = warm[key], last[key]
        change = (b - a) / a if a else (0.0 if b == a else math.inf)
        ok = abs(change) <= FLAT
        flat &= ok
        parts.append(f"{key.split('_')[0].upper()} {a:.0f}{unit} -> {b:.0f}{unit} ({change:+.1%}, "
                     f"{'flat' if ok else 'NOT flat'})")
    line = (f"{r['n']} symbols: {'FLAT' if flat else 'NOT FLAT'} within {FLAT:.0%} from iteration {WARM} to "
            f"{max(r['marks'])}: " + "; ".join(parts))
    if max(r["marks"]) < r["asked"]:  # cut by the time budget: where the measured RSS slope would lead
        slope = (last["rss_mb"] - warm["rss_mb"]) / (max(r["marks"]) - WARM)
        at = warm["rss_mb"] + slope * (r["asked"] - WARM)
        line += (f"; at this RSS slope ({slope * 100:+.1f} MB per 100 iterations) iteration {r['asked']} would be at "
                 f"{at:.0f} MB ({at / warm['rss_mb'] - 1:+.1%})")
    return line


def report(results: list[dict]) -> None:
    print(f"\nSoak: the live bot against the fake Alpaca server, one bar per iteration (goal: RSS and sockets flat "
          f"within {FLAT:.0%} after {WARM} iterations of warm-up)")
    print(f"{'symbols':>7} {'iter':>5} {'RSS MB':>7} {'TCP':>4} {'bot TCP':>7} {'requests':>8} {'bars':>5} "
          f"{'latest':>6} {'trading':>7} {'wall s':>6} {'decision recs':>13} {'orders sent':>11} {'fake orders':>11}")
    for r in results:
        for i, m in sorted(r["marks"].items()):
            print(f"{r['n']:>7} {i:>5} {m['rss_mb']:>7.1f} {m['sockets']:>4} {m['bot_sockets']:>7} "
                  f"{m['requests']:>8} {m['bars']:>5} {m['latest']:>6} {m['trading']:>7} {m['wall']:>6.2f} "
                  f"{m['decision_records']:>13} {m['orders_sent']:>11} {m['fake_orders']:>11}")
    print("\nHTTP requests per iteration, mean over the run")
    for r in results:
        mean = r["mean"]
        cut = "" if r["iterations"] == r["asked"] else f" (stopped at the time budget; {r['asked']} asked)"
        skipped = r["iterations"] - r["marks"][max(r["marks"])]["completed"]
        print(f"{r['n']:>7} symbols: {r['iterations']} iterations{cut} in {r['elapsed_s'] / 60:.1f} min "
              f"({r['elapsed_s'] / max(r['iterations'], 1):.2f} s/iteration, bot {mean['wall']:.2f} s): "
              f"{mean['requests']:.1f} requests (bars {mean['bars']:.2f}, latest {mean['latest']:.2f}, trading "
              f"{mean['trading']:.1f}); {skipped} iteration(s) skipped (broker unreachable); the fake's clock reached "
              f"{r['clock_end'][:16]}; fake 500s {r['errors']}")
    print()
    for r in results:
        print("Verdict " + verdict(r))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", default="10,500", help="universe sizes, comma-separated")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="10 and 50 symbols, 150 iterations")
    ap.add_argument("--budget-minutes", type=float, default=40.0, help="per universe: stop there and say so")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one universe, JSON on stdout
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.iterations = "10,50", 150
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.iterations, args.budget_minutes * 60)))
        return 0
    results = []
    for n in (int(x) for x in args.symbols.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--iterations", str(args.iterations),
                              "--budget-minutes", str(args.budget_minutes)], stdout=subprocess.PIPE, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["marks"] = {int(k): v for k, v in r["marks"].items()}
        results.append(r)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
