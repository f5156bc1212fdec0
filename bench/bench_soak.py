"""Soak: the live bot (built as tests/live_harness.py's LiveBot builds it) iterated many times against the fake
Alpaca server on a stepped clock, watching memory, sockets and HTTP requests per iteration.

  python bench/bench_soak.py [--symbols 10,500] [--iterations 1000] [--quick] [--budget-minutes 40]
                             [--fake process|inline] [--every K] [--tracemalloc [FRAMES]] [--objects]
                             [--malloc-trim]

Each universe runs in a fresh child process (this file with --one N), so one universe's memory is not counted
in the next. The market is one long scripted market (bench/soak_fake_server.soak_market: the scripted day, then
a seeded random walk) with enough hourly bars for every iteration; after each iteration the fake's clock moves
to one minute past the start of the next bar, overnight gaps and weekends included, so every iteration finds
the market open and one new bar completed (and the first iteration of each day re-fetches the whole bar window).

--fake process (the default): the fake server runs in a process of its own (bench/soak_fake_server.py), which
the child steps over a pipe, so the bot process's RSS and sockets are the bot's alone (the fake keeps every
order it ever accepted and its bar series). --fake inline: the fake runs inside the bot's process, as the
tests run it (RSS and sockets are then bot + fake).

Measured at iterations 1, 100, every K-th with --every K, and the last (after a gc.collect()), and printed as
tables:
- RSS of the bot process, its TCP sockets (all, and those to the fake), the fake process's RSS and sockets
  (process mode), HTTP requests at the fake in that iteration (bar pages, latest trades, trading API), the
  iteration's wall time, the bot's decision records in memory, its journaled orders and the fake's orders;
- where the bot's memory is: pymalloc's arenas (Python's small objects) and the bytes in use in them, glibc
  malloc's bytes in use (numpy/pandas buffers, sqlite, C libraries) and the free bytes it keeps (mallinfo2 and
  sys._debugmallocstats); RSS minus these is code and shared libraries;
- what the bot keeps that grows with orders: Lumibot's tracked orders per bucket and positions, the fill
  watcher's watched orders, the ledger's in-memory fills, closed trades and samples;
then the mean requests per iteration over the run, the trading API requests of the last measured iteration by
endpoint, and a verdict: are the bot's RSS and sockets flat within 5% from iteration 100 to the last? The fake's
rate limits are off: the simulated hour passes in a fraction of a wall second, so the wall-clock 200-a-minute
limit would refuse requests a real bot an hour apart never sends that fast.

Diagnostics (each slows the run or changes what RSS means, so they are off by default):
--tracemalloc [FRAMES]: tracemalloc runs in the bot process from before the bot is built (FRAMES frames per
  allocation, default 1; it roughly doubles the bot's time and RSS), the traced memory is a column, and the
  snapshots at iteration 100 and the last (written to disk, not held) are compared: the top 15 growths by
  filename:lineno (with FRAMES > 1 also the top 5 by traceback), and the object types as with --objects.
--objects: the gc-tracked object types whose count grew most from iteration 100 to the last.
--malloc-trim: at each checkpoint, after RSS is read, malloc_trim(0) gives malloc's free pages back and RSS is
  read again (a column); the RSS of later checkpoints is then lower than without it.
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
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

from bench.bench_live_requests import names  # noqa: E402
from bench.soak_memory import growth_report, heap_mb, object_counts, rss_mb, tcp_sockets  # noqa: E402

FLAT = 0.05  # RSS and sockets may move this much from iteration 100 to the last and still count as flat
WARM = 100  # iterations of warm-up: caches, first full bar fetch, Lumibot's books, connection pools
NY = ZoneInfo("America/New_York")
FAKE_SERVER = Path(__file__).with_name("soak_fake_server.py")


def checkpoints(iterations: int, every: int = 0) -> list[int]:
    extra = range(every, iterations, every) if every > 0 else ()
    return sorted({1, min(WARM, iterations), iterations, *extra})


class InlineFake:
    """The fake server in this process (as the tests run it)."""

    inline = True

    def __init__(self, n: int, iterations: int) -> None:
        from bench.soak_fake_server import log_counts, soak_market
        from tests.fake_alpaca import FakeAlpaca

        bars, start, steps = soak_market(n, iterations)
        self.srv = FakeAlpaca(bars, now=start, rate_limit=None, data_rate_limit=None).start()
        self.steps, self.url, self.key, self.secret = steps, self.srv.url, self.srv.key, self.srv.secret
        self._counts = log_counts

    @property
    def now(self) -> datetime:
        return self.srv.now

    def counts(self) -> dict:
        row = self._counts(self.srv)
        self.srv.clear_log()  # the fake's request log would otherwise grow with the run and be counted as ours
        return row

    def set_now(self, t) -> None:
        self.srv.set_now(t)

    def stats(self) -> dict:
        return {"rss_mb": math.nan, "sockets": -1, "fake_orders": len(self.srv.engine.orders),
                "errors": len(self.srv.errors), "now": self.srv.now.isoformat()}

    def stop(self) -> None:
        self.srv.stop()


class ProcessFake:
    """The fake server in a process of its own (bench/soak_fake_server.py), stepped over a pipe. It has what
    LiveBot reads of a FakeAlpaca (url, key, secret, now); `now` is the fake's clock as of the last step."""

    inline = False

    def __init__(self, n: int, iterations: int) -> None:
        self.proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--symbols", str(n), "--iterations",
                                      str(iterations)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)
        hello = self._read()
        self.url, self.key, self.secret = hello["url"], hello["key"], hello["secret"]
        self.steps = hello["steps"]
        self.now = self._time(hello["now"])

    @staticmethod
    def _time(iso: str) -> datetime:
        return datetime.fromisoformat(iso).astimezone(NY)

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the fake server process ended (exit {self.proc.wait()})")
        return json.loads(line)

    def _ask(self, cmd: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def counts(self) -> dict:
        return self._ask("counts")

    def set_now(self, t) -> None:
        self.now = self._time(self._ask("set_now", t=str(t))["now"])

    def stats(self) -> dict:
        return self._ask("stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self._ask("stop")
                self.proc.wait(timeout=30)
            except (OSError, SystemExit, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def bot_books(bot) -> dict:
    """What the bot keeps that grows with orders and iterations: Lumibot's order buckets (its tracked orders), the
    fill watcher's watched orders, the ledger's in-memory fills, closed trades and samples."""
    out = {}
    snap = getattr(bot.strategy.broker, "_telemetry_snapshot", None)
    if callable(snap):
        out.update({f"lumibot_{k}": v for k, v in snap().items()
                    if k.startswith(("orders_", "positions_", "trade_events"))})
    ledger = bot.strategy.ledger
    out.update(watched=len(bot.strategy.venue.watcher.watch), ledger_fills=len(ledger.fills),
               ledger_trades=len(ledger.trades), ledger_samples=len(ledger.samples))
    return out


def run_one(n: int, iterations: int, budget_s: float, fake_mode: str, every: int, frames: int,
            trim: bool = False, objects: bool = False) -> dict:
    """One universe in this process: start the fake, build the bot, iterate, measure at the checkpoints."""
    if frames:
        import tracemalloc

        tracemalloc.start(frames)
    from tqdm import tqdm

    from tests.live_harness import LiveBot
    from utils import logging_setup

    logging_setup.configure("WARNING", console=False)  # 500 symbols' decision lines are not the point here
    fake = ProcessFake(n, iterations) if fake_mode == "process" else InlineFake(n, iterations)
    port = int(fake.url.rsplit(":", 1)[1])
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    marks: dict[int, dict] = {}
    totals = {"requests": 0, "bars": 0, "latest": 0, "trading": 0, "wall": 0.0}
    snaps: dict[str, tuple] = {}  # checkpoint -> (tracemalloc snapshot file, gc-tracked objects by type)
    done = 0
    try:
        # the inline fake serves 500 symbols' bar pages on the bot's GIL: under load a page can take longer than
        # the 2 s the tests allow, and a timed-out iteration is skipped (not measured), so allow 30 s
        bot = LiveBot(fake, tmp / "journal.sqlite",
                      env={"UNIVERSE": ",".join(names(n)), "BROKER_TIMEOUT_SECONDS": "30"})
        fake.counts()  # start-up requests are not an iteration's
        began = time.perf_counter()
        wanted = set(checkpoints(iterations, every))
        for i in tqdm(range(1, iterations + 1), desc=f"{n} symbols", unit="it", file=sys.stderr, mininterval=2):
            t0 = time.perf_counter()
            bot.iterate()
            wall = time.perf_counter() - t0
            row = {**fake.counts(), "wall": wall}
            for k in totals:
                totals[k] += row[k]
            done = i
            over = time.perf_counter() - began > budget_s
            if i in wanted or over:
                gc.collect()  # what the process holds, not garbage the collector has not reached yet
                sockets, bot_sockets = tcp_sockets(port)
                fs = fake.stats()
                rss = rss_mb()
                heap = heap_mb(trim)
                if trim:
                    heap["rss_trimmed_mb"] = rss_mb()
                marks[i] = {**row, "rss_mb": rss, **heap, "sockets": sockets, "bot_sockets": bot_sockets,
                            "fake_rss_mb": fs["rss_mb"], "fake_sockets": fs["sockets"],
                            "decision_records": len(bot.strategy.decision_log.records),
                            "fake_orders": fs["fake_orders"], "orders_sent": len(bot.journal.frame("orders")),
                            "completed": bot.strategy.iterations,  # the others were skipped (broker unreachable)
                            **bot_books(bot)}
                if frames:
                    marks[i]["traced_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
                if (frames or objects) and (i == WARM or i == iterations or over):
                    path = None
                    if frames:  # to disk: a snapshot held would count as growth
                        path = tmp / f"tracemalloc-{i}.pickle"
                        tracemalloc.take_snapshot().dump(str(path))
                    snaps[str(i)] = (path, object_counts())
                    gc.collect()
                print(f"[soak {n}] iteration {i}: {json.dumps(marks[i])}", file=sys.stderr, flush=True)
            if over:
                break
            fake.set_now(fake.steps[i - 1])  # iteration i ran at the previous step (the first at the start)
        elapsed = time.perf_counter() - began
        bot.close()
        final = fake.stats()
    finally:
        fake.stop()
    growth = []
    if str(WARM) in snaps and len(snaps) > 1:
        (p0, o0), (p1, o1) = snaps[str(WARM)], snaps[str(max(int(k) for k in snaps))]
        load = (lambda p: tracemalloc.Snapshot.load(str(p))) if frames else (lambda p: None)
        growth = growth_report(load(p0), load(p1), o0, o1, frames)
    return {"n": n, "iterations": done, "asked": iterations, "elapsed_s": elapsed, "marks": marks,
            "mean": {k: v / max(done, 1) for k, v in totals.items()}, "clock_end": final["now"],
            "errors": final["errors"], "fake": fake_mode, "growth": growth}


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
    who = "bot + inline fake" if r["fake"] == "inline" else "bot process"
    line = (f"{r['n']} symbols ({who}): {'FLAT' if flat else 'NOT FLAT'} within {FLAT:.0%} from iteration {WARM} "
            f"to {max(r['marks'])}: " + "; ".join(parts))
    if max(r["marks"]) < r["asked"]:  # cut by the time budget: where the measured RSS slope would lead
        slope = (last["rss_mb"] - warm["rss_mb"]) / (max(r["marks"]) - WARM)
        at = warm["rss_mb"] + slope * (r["asked"] - WARM)
        line += (f"; at this RSS slope ({slope * 100:+.1f} MB per 100 iterations) iteration {r['asked']} would be at "
                 f"{at:.0f} MB ({at / warm['rss_mb'] - 1:+.1%})")
    return line


def report(results: list[dict]) -> None:
    where = ("the fake in its own process" if all(r["fake"] == "process" for r in results)
             else "the fake inside the bot's process")
    print(f"\nSoak: the live bot against the fake Alpaca server ({where}), one bar per iteration (goal: the bot's "
          f"RSS and sockets flat within {FLAT:.0%} after {WARM} iterations of warm-up)")
    traced = any("traced_mb" in m for r in results for m in r["marks"].values())
    print(f"{'symbols':>7} {'iter':>5} {'RSS MB':>7} {'TCP':>4} {'bot TCP':>7} {'fake RSS':>8} {'fake TCP':>8} "
          f"{'requests':>8} {'bars':>5} {'latest':>6} {'trading':>7} {'wall s':>6} {'decision recs':>13} "
          f"{'orders sent':>11} {'fake orders':>11}" + (f" {'traced MB':>9}" if traced else ""))
    for r in results:
        for i, m in sorted(r["marks"].items()):
            fake_rss = "-" if r["fake"] == "inline" else f"{m['fake_rss_mb']:.1f}"
            fake_tcp = "-" if r["fake"] == "inline" else str(m["fake_sockets"])
            print(f"{r['n']:>7} {i:>5} {m['rss_mb']:>7.1f} {m['sockets']:>4} {m['bot_sockets']:>7} {fake_rss:>8} "
                  f"{fake_tcp:>8} {m['requests']:>8} {m['bars']:>5} {m['latest']:>6} {m['trading']:>7} "
                  f"{m['wall']:>6.2f} {m['decision_records']:>13} {m['orders_sent']:>11} {m['fake_orders']:>11}"
                  + (f" {m.get('traced_mb', math.nan):>9.1f}" if traced else ""))
    print("\nWhere the bot process's memory is (MB): pymalloc arenas (Python objects) and the bytes in use in them, "
          "glibc malloc's\nbytes in use (numpy/pandas buffers, sqlite, C libraries) and the free bytes it keeps")
    print(f"{'symbols':>7} {'iter':>5} {'RSS':>7} {'pymalloc':>8} {'in use':>7} {'malloc':>7} {'free':>7}"
          + (f" {'traced':>7}" if traced else "")
          + (f" {'RSS after malloc_trim':>21}" if any("rss_trimmed_mb" in m for r in results
                                                       for m in r["marks"].values()) else ""))
    for r in results:
        for i, m in sorted(r["marks"].items()):
            print(f"{r['n']:>7} {i:>5} {m['rss_mb']:>7.1f} {m.get('pymalloc_mb', math.nan):>8.1f} "
                  f"{m.get('pymalloc_used_mb', math.nan):>7.1f} {m.get('malloc_used_mb', math.nan):>7.1f} "
                  f"{m.get('malloc_free_mb', math.nan):>7.1f}"
                  + (f" {m.get('traced_mb', math.nan):>7.1f}" if traced else "")
                  + (f" {m['rss_trimmed_mb']:>21.1f}" if "rss_trimmed_mb" in m else ""))
    books = [k for k in ("lumibot_orders_unprocessed", "lumibot_orders_new", "lumibot_orders_partial",
                         "lumibot_orders_filled", "lumibot_orders_canceled", "lumibot_orders_error",
                         "lumibot_positions_tracked", "lumibot_trade_events_rows", "watched", "ledger_fills",
                         "ledger_trades", "ledger_samples")
             if any(k in m for r in results for m in r["marks"].values())]
    print("\nWhat the bot keeps in memory: Lumibot's tracked orders by bucket and positions, the fill watcher's "
          "orders, the ledger's fills, closed trades and samples")
    print(f"{'symbols':>7} {'iter':>5} " + " ".join(f"{k.removeprefix('lumibot_'):>{max(len(k) - 8, 7)}}"
                                                    for k in books))
    for r in results:
        for i, m in sorted(r["marks"].items()):
            print(f"{r['n']:>7} {i:>5} " + " ".join(f"{m.get(k, ''):>{max(len(k) - 8, 7)}}" for k in books))
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
    print("\nTrading API requests of the last measured iteration, by endpoint")
    for r in results:
        last = r["marks"][max(r["marks"])]
        print(f"{r['n']:>7} symbols, iteration {max(r['marks'])}: "
              + ", ".join(f"{k} {v}" for k, v in last.get("endpoints", {}).items()))
    for r in results:
        if r["growth"]:
            print(f"\n{r['n']} symbols, bot process: growth from iteration {WARM} to {max(r['marks'])}")
            print("\n".join(r["growth"]))
    print()
    for r in results:
        print("Verdict " + verdict(r))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", default="10,500", help="universe sizes, comma-separated")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="10 and 50 symbols, 150 iterations")
    ap.add_argument("--budget-minutes", type=float, default=40.0, help="per universe: stop there and say so")
    ap.add_argument("--fake", choices=("process", "inline"), default="process",
                    help="the fake server in its own process (default: the bot's RSS is the bot's) or in the bot's")
    ap.add_argument("--every", type=int, default=0, help="also measure every K iterations")
    ap.add_argument("--tracemalloc", type=int, nargs="?", const=1, default=0, metavar="FRAMES",
                    help=f"trace the bot process's allocations; print the top growths from iteration {WARM} "
                         "to the last")
    ap.add_argument("--malloc-trim", action="store_true",
                    help="at each checkpoint, after reading RSS, give malloc's free pages back (malloc_trim) and "
                         "read it again")
    ap.add_argument("--objects", action="store_true",
                    help=f"print the gc-tracked object types whose count grew most from iteration {WARM} to the last")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one universe, JSON on stdout
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.iterations = "10,50", 150
    if args.one is not None:
        r = run_one(args.one, args.iterations, args.budget_minutes * 60, args.fake, args.every, args.tracemalloc,
                    args.malloc_trim, args.objects)
        print(json.dumps(r))
        return 0
    results = []
    for n in (int(x) for x in args.symbols.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--iterations", str(args.iterations),
                              "--budget-minutes", str(args.budget_minutes), "--fake", args.fake, "--every",
                              str(args.every), "--tracemalloc", str(args.tracemalloc),
                              *(["--malloc-trim"] if args.malloc_trim else []),
                              *(["--objects"] if args.objects else [])], stdout=subprocess.PIPE, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["marks"] = {int(k): v for k, v in r["marks"].items()}
        results.append(r)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
