"""Benchmark: what a dead alert channel costs a live iteration, side by side with a live one and with none.

  python bench/bench_alerts.py [--days 2] [--hang 60]

Four bots (live, paper, through Lumibot's Alpaca broker and the real alpaca-py clients), each against
its own fake Alpaca server on the same scripted market, are iterated in turn, hour by hour (the first
one rotating), so drift on the machine hits all of them alike:
- off:     no ALERT_URLS (the NullAlerter);
- live:    apprise json:// to a receiver on loopback that answers at once;
- dead:    json:// to a loopback port with nothing listening (connection refused);
- hanging: json:// to a receiver that accepts and then answers only after --hang seconds.
Every bot alerts at ALERT_LEVEL=info with no cooldown, and the data feed is made stale from the first
hour (the fake's stale_data fault), so every iteration emits alerts (stale data, denied entries), on
top of the day's own (an unprotected position, its protection, the fills). Printed: per iteration
mean, median and max wall time per bot, the ratio to the live channel, the time spent inside emit()
(the whole cost of alerting to the iteration: mean and max per call), the alerts each one emitted and
what became of them, and how long close() waited at shutdown.
"""

import argparse
import statistics
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
from tests.live_harness import NY, LiveBot, scripted_market  # noqa: E402
from tests.ops.receiver import Receiver, dead_url  # noqa: E402

OPEN = "09:31"


def build(name: str, url: str, bars, tmp: Path) -> dict:
    srv = FakeAlpaca(bars, now=pd.Timestamp(f"2024-03-05 {OPEN}", tz=NY)).start()
    srv.add_position("XOM", 100, 80.0)  # unprotected at start: protect at the first iteration
    srv.faults.add("stale_data", bars=3)  # the whole feed lags: stale-data alerts every iteration
    env = {"ALERT_LEVEL": "info", "ALERT_COOLDOWN_MINUTES": "0", "BREADTH_ENTRY_GATE": "false"}
    if url:
        env["ALERT_URLS"] = url
    bot = LiveBot(srv, tmp / f"{name}.sqlite", env=env)
    b = {"name": name, "srv": srv, "bot": bot, "times": [], "emits": []}
    alerter = bot.strategy.alerts.alerter
    emit = alerter.emit

    def timed(*a, **kw):  # what an iteration pays per alert
        t0 = time.perf_counter()
        try:
            return emit(*a, **kw)
        finally:
            b["emits"].append(time.perf_counter() - t0)

    alerter.emit = timed
    return b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=4, help="scripted sessions iterated (7 hourly iterations each)")
    ap.add_argument("--hang", type=float, default=60.0, help="seconds the hanging receiver takes to answer")
    args = ap.parse_args()
    from utils import logging_setup

    logging_setup.configure("ERROR", console=True)  # the alerts' own "dropped" lines are expected here
    bars = scripted_market(days=args.days)
    sessions = sorted({t.normalize() for t in bars["SPY"].index if t >= pd.Timestamp("2024-03-05", tz=NY)})
    live, hanging = Receiver().start(), Receiver(delay_s=args.hang).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    bots = [build("off", "", bars, tmp), build("live", live.url, bars, tmp), build("dead", dead_url(), bars, tmp),
            build("hanging", hanging.url, bars, tmp)]
    try:
        for day in sessions[:args.days]:
            for b in bots:
                b["srv"].set_now(pd.Timestamp(f"{day:%Y-%m-%d} {OPEN}", tz=NY))
            for hour in range(7):
                for b in bots[hour % 4:] + bots[:hour % 4]:  # each takes its turn first: no position bias
                    t0 = time.perf_counter()
                    b["bot"].iterate()
                    b["times"].append(time.perf_counter() - t0)
                    b["srv"].advance(pd.Timedelta(hours=1))
        for b in bots:
            t0 = time.perf_counter()
            b["bot"].strategy.alerts.close(2.0)
            b["close"] = time.perf_counter() - t0
            alerts = b["bot"].journal.frame("alerts")
            b["statuses"] = alerts["status"].value_counts().to_dict() if len(alerts) else {}
        report(bots, live)
    finally:
        for b in bots:
            b["srv"].stop()
        live.stop()
        hanging.stop()
    return 0


def report(bots: list[dict], live: Receiver) -> None:
    base = statistics.mean(next(b for b in bots if b["name"] == "live")["times"])
    print(f"\nLive iteration wall time with each alert channel ({len(bots[0]['times'])} iterations each, interleaved)")
    print(f"{'channel':<8} {'mean ms':>8} {'median ms':>10} {'max ms':>8} {'vs live':>8} {'emit() us':>14} "
          f"{'alerts':>7}  {'what became of them':<34} {'close() s':>9}")
    for b in bots:
        t, e = b["times"], b["emits"]
        fate = ", ".join(f"{k} {v}" for k, v in sorted(b["statuses"].items())) or "-"
        emits = f"{statistics.mean(e) * 1e6:.0f} / {max(e) * 1e6:.0f}" if e else "-"
        print(f"{b['name']:<8} {statistics.mean(t) * 1e3:>8.1f} {statistics.median(t) * 1e3:>10.1f} "
              f"{max(t) * 1e3:>8.1f} {statistics.mean(t) / base:>7.2f}x {emits:>14} {sum(b['statuses'].values()):>7}  "
              f"{fate:<34} {b['close']:>9.2f}")
    print("(emit() us: mean / max per call, every call including those the level filter or cooldown stop)")
    print(f"(the live receiver got {len(live.messages)} messages; at close() the hanging channel still held one "
          "alert (left 'queued') and the rest were dropped, as at a shutdown with a channel that does not answer)")


if __name__ == "__main__":
    sys.exit(main())
