"""Sweep throughput: the same trials run serially in this process and on Ray (a local cluster on this machine's
cores), side by side in one run; trials per minute for each and the ratio.

  python bench/bench_sweep.py [--data csv:data/daily] [--start 2015-01-02 --end 2016-12-30] [--trials 12] [--cpus 2]

Each trial is a full Lumibot backtest with costs of the window (daily bars by default), for a different
STOP_LOSS_PCT, exactly what research.sweep runs. Ray's start-up (cluster, workers importing Lumibot) is timed
apart and also counted in the end-to-end figure, since a sweep pays it once.
"""

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

from backtest.runner import BacktestConfig, load_market  # noqa: E402
from research.trials import RayRunner, SerialRunner  # noqa: E402
from trading.settings import Settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="csv:data/daily")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2015, 1, 2))
    ap.add_argument("--end", type=date.fromisoformat, default=date(2016, 12, 30))
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    settings = Settings.defaults()
    market, *_ = load_market(BacktestConfig(data=args.data, start=args.start, end=args.end, progress=False), settings)
    jobs = [(i, {"STOP_LOSS_PCT": f"{0.03 + 0.005 * i:.3f}"}, args.start, args.end) for i in range(args.trials)]

    t0 = time.perf_counter()
    serial = dict(SerialRunner(market, {}).run(jobs))
    serial_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ray_runner = RayRunner(market, {}, num_cpus=args.cpus)
    list(ray_runner.run(jobs[:args.cpus]))  # warm the workers (imports), as the first trials of a sweep do
    startup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    remote = dict(ray_runner.run(jobs))
    ray_s = time.perf_counter() - t1
    ray_runner.close()

    same = all(abs(serial[k]["total_return"] - remote[k]["total_return"]) < 1e-12 for k in serial)
    per_min = {"serial": args.trials / serial_s * 60, "ray": args.trials / ray_s * 60,
               "ray end to end": args.trials / (ray_s + startup_s) * 60}
    print(f"{args.trials} trials, {market.source} {args.start} .. {args.end} ({market.timestep} bars), {args.cpus} "
          f"Ray CPUs; same results serial and on Ray: {same}")
    print(f"  serial          {serial_s:7.1f} s   {per_min['serial']:6.1f} trials/min")
    print(f"  ray             {ray_s:7.1f} s   {per_min['ray']:6.1f} trials/min   (start-up and warm-up "
          f"{startup_s:.1f} s, not counted)")
    print(f"  ray end to end  {ray_s + startup_s:7.1f} s   {per_min['ray end to end']:6.1f} trials/min")
    print(f"  ratio ray / serial: {per_min['ray'] / per_min['serial']:.2f}x "
          f"({per_min['ray end to end'] / per_min['serial']:.2f}x end to end)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
