"""Benchmark: meta-model training wall time on the built-in market, by phase.

  python bench/bench_train.py [--years 1 3]

For each window length: market generation, features + realised-R labels (build_dataset), walk-forward
validation of the three-member ensemble plus the final fit (train), all in one process on the default universe.
"""

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketdata.builtin import generate, inverse_map  # noqa: E402
from models.dataset import TrainingError, build_dataset  # noqa: E402
from models.exit_sim import ExitPolicy  # noqa: E402
from models.features import FeatureParams  # noqa: E402
from models.train import train  # noqa: E402
from trading.settings import Settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--years", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    s = Settings.defaults()
    import pandas as pd

    policy = ExitPolicy.from_settings(s, pd.Timedelta(hours=1))
    params = FeatureParams.from_settings(s)
    print(f"{'window':<24} {'bars/sym':>8} {'cands':>6} {'generate':>9} {'dataset':>8} {'train':>8} {'total':>8}")
    for years in args.years:
        start, end = date(2024 - years, 1, 2), date(2023, 12, 29)
        t0 = time.perf_counter()
        m = generate(s.all_symbols(), inverse_map(s.inverse_etfs), start, end)
        t1 = time.perf_counter()
        ds = build_dataset(m.bars, s.universe, params, s.rsi_oversold, policy, start, end)
        t2 = time.perf_counter()
        try:
            train(ds, policy, {"ensemble_agreement": s.ensemble_agreement}, n_splits=5, progress=False)
            status = ""
        except TrainingError as exc:
            status = f"  ({exc})"
        t3 = time.perf_counter()
        print(f"{start} .. {end}  {len(m.bars['SPY']):>8} {len(ds.r):>6} {t1 - t0:8.1f}s {t2 - t1:7.1f}s "
              f"{t3 - t2:7.1f}s {t3 - t0:7.1f}s{status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
