"""Benchmark: the decision part of one live iteration alone (snapshot to plan) at 10, 100 and 500 symbols.

  python bench/bench_decision.py [--sizes 10 100 500] [--repeat 30]

Goal: at most 50 ms per iteration at 500 symbols, growing at most linearly (500/10 <= 50).

For each universe, once: a scripted market (tests/live_harness.scripted_market) with 1,500 hourly bars of
history, the indicator and meta-model feature rows computed the way the live snapshot computes them
(trading.indicators.market_frames + IndicatorBook.as_of), then made to look like a busy hour: 10% of the
universe oversold (entry candidates, scored in one batched call), bellwethers neutral (no breadth gate), ten
holdings (eight under an OCO, one unprotected, one with its stop far below) with open trades in the ledger.
Timed, median of --repeat runs, each on a fresh Snapshot (it caches per instance):
  snapshot  Snapshot(...) from the indicator rows (the per-symbol lookups)
  rule      plan_iteration with the rule-based confidence
  model     plan_iteration with a MetaModel (a fitted pipeline of models/train.py): the batched predict_proba
  review    the risk controller's review of the plan (trading/risk)
  decision  snapshot + model + review: what the goal is about.
The indicator computation itself (data, not decision; the live bot redoes it every iteration) is shown once per
universe for scale: the 400-bar window without the model's features (rule), and 1,500 bars with them (model).
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.bench_live_requests import names  # noqa: E402
from models.ensemble import Ensemble  # noqa: E402
from models.features import FEATURE_HISTORY_BARS, FEATURE_NAMES, FeatureParams  # noqa: E402
from models.meta_model import MetaModel  # noqa: E402
from tests.live_harness import NY, scripted_market  # noqa: E402
from trading.confidence import RuleConfidence  # noqa: E402
from trading.indicators import MIN_HISTORY_BARS, IndicatorBook, completed_bars, market_frames  # noqa: E402
from trading.records.ledger import Lot  # noqa: E402
from trading.risk import build_risk  # noqa: E402
from trading.settings import Settings  # noqa: E402
from trading.snapshot import Holding, OpenOrder, Snapshot  # noqa: E402
from trading.steps.planner import plan_iteration  # noqa: E402

GOAL_MS = 50.0
HOUR = pd.Timedelta(hours=1)
NOW = pd.Timestamp("2024-03-05 11:31", tz=NY)


def fitted_model() -> MetaModel:
    """A MetaModel around the real ensemble fitted on random rows: prediction cost is what matters here."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(3000, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    x[["rvol_70", "spy_rvol_70"]] = np.abs(x[["rvol_70", "spy_rvol_70"]])  # volatilities (the regime step logs them)
    r = x.iloc[:, 0].to_numpy() + rng.normal(size=len(x))
    card = {"created": datetime.now(UTC).isoformat(), "training_window": {"start": "bench", "end": "bench"},
            "metrics": {"overall": {"auc": None}}, "gate": {"min_expected_r": -10.0}}  # every candidate passes
    return MetaModel(Path("bench.joblib"), card, Ensemble().fit(x, r), max_age_days=1e9, block_when_stale=False)


def busy_market(s: Settings, n: int) -> tuple[pd.DataFrame, tuple[float, float]]:
    """The indicator + feature rows of every symbol as of NOW, with 10% of the universe made oversold;
    returns them and the seconds the indicator computation took: without the model's features over the
    400-bar live window, and with them over 1,500 bars."""
    sessions = FEATURE_HISTORY_BARS // 7 + 5
    bars = scripted_market(symbols=(*s.universe, "SPY", "QQQ"), days=1, history_sessions=sessions, shapes=())
    noise = np.random.default_rng(n + 1)
    bars = {sym: completed_bars(df, NOW, HOUR).iloc[-FEATURE_HISTORY_BARS:] for sym, df in bars.items()}
    # the scripted volume is constant: its z-score feature would be NaN and the model would score nothing
    bars = {sym: df.assign(volume=df["volume"] * noise.lognormal(0.0, 0.3, len(df))) for sym, df in bars.items()}
    t0 = time.perf_counter()
    window = {sym: df.iloc[-MIN_HISTORY_BARS:] for sym, df in bars.items()}
    IndicatorBook(market_frames(window, s.rsi_period), HOUR).as_of(NOW)
    t1 = time.perf_counter()
    market = IndicatorBook(market_frames(bars, s.rsi_period, FeatureParams.from_settings(s)), HOUR).as_of(NOW)
    took = (t1 - t0, time.perf_counter() - t1)
    rng = np.random.default_rng(n)
    others = [sym for sym in s.universe if sym not in s.bellwethers]
    oversold = rng.choice(others, size=max(1, len(s.universe) // 10), replace=False)
    market.loc[list(oversold), "rsi"] = rng.uniform(15, s.rsi_oversold - 0.5, len(oversold))
    market.loc[list(s.bellwethers), "rsi"] = 50.0
    return market, took


def book(market: pd.DataFrame, s: Settings) -> tuple[dict[str, Holding], tuple[OpenOrder, ...], dict[str, Lot]]:
    """Ten holdings among the non-oversold universe: eight under an OCO near the price, one unprotected, one
    whose trade is far in profit (exit policy moves its stop); open trades for all of them."""
    calm = [sym for sym in s.universe if sym not in s.bellwethers and market.at[sym, "rsi"] >= s.rsi_oversold][:10]
    holdings, orders, trades = {}, [], {}
    for k, sym in enumerate(calm):
        px = float(market.at[sym, "close"])
        entry = px / 1.04 if k == len(calm) - 1 else px * 1.01
        qty = float(max(1, int(5000 / px)))
        holdings[sym] = Holding(sym, qty, entry)
        stop, target = round(entry * 0.95, 2), round(entry * 1.15, 2)
        if k != 0:  # the first one has lost its protection
            orders += [OpenOrder(f"{sym}-tp", sym, "sell", "limit", qty, limit_price=target, parent_id=f"{sym}-g"),
                       OpenOrder(f"{sym}-sl", sym, "sell", "stop", qty, stop_price=stop, parent_id=f"{sym}-g")]
        trades[sym] = Lot(sym, qty, entry, (NOW - pd.Timedelta(days=2)).to_pydatetime(), "entry",
                          initial_stop=stop, stop=stop, target=target, highest=px, lowest=entry)
    return holdings, tuple(orders), trades


def median_ms(fn, repeat: int) -> tuple[float, object]:
    for _ in range(3):  # warm-up: first calls pay for lazy imports and caches, not for the decision
        fn()
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def run(n: int, repeat: int, model: MetaModel) -> dict:
    s = Settings.defaults(universe=tuple(names(n)))
    market, indicators_s = busy_market(s, n)
    holdings, orders, trades = book(market, s)
    cash = 60_000.0
    value = cash + sum(h.qty * float(market.at[sym, "close"]) for sym, h in holdings.items())
    rule = RuleConfidence(s.rsi_oversold)
    risk = build_risk(s, None, HOUR)

    def snap() -> Snapshot:
        return Snapshot(now=NOW.to_pydatetime(), cash=cash, portfolio_value=value, holdings=holdings,
                        open_orders=orders, market=market)

    def plan(scorer):
        return lambda: plan_iteration(snap(), s, scorer, trades=trades, id_time=NOW)

    snapshot_ms, _ = median_ms(snap, repeat)
    rule_ms, _ = median_ms(plan(rule), repeat)
    model_ms, planned = median_ms(plan(model), repeat)
    one = snap()
    review_ms, reviewed = median_ms(lambda: risk.review(planned.decisions, one), repeat)
    intents = [d for d in reviewed if d.intent is not None]
    return {"n": n, "snapshot": snapshot_ms, "rule": rule_ms - snapshot_ms, "model": model_ms - snapshot_ms,
            "review": review_ms, "decision": model_ms + review_ms, "indicators": indicators_s,
            "candidates": int((market.loc[list(s.universe), "rsi"] < s.rsi_oversold).sum()),
            "planned": sum(1 for d in planned.decisions if d.action == "enter"),
            "approved": sum(1 for d in intents if d.action == "enter"), "intents": len(intents),
            "decisions": len(reviewed)}

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per measurement (the median is shown)")
    args = ap.parse_args()
    model = fitted_model()
    results = [run(n, args.repeat, model) for n in args.sizes]
    print(f"\nDecision part of one iteration (snapshot -> plan -> risk review), median of {args.repeat} runs, ms")
    print(f"Goal: at most {GOAL_MS:.0f} ms at 500 symbols, growing at most linearly (500/10 <= 50)")
    print(f"{'symbols':>7} {'cands':>5} {'snapshot':>8} {'rule':>7} {'model':>7} {'review':>7} {'decision':>8} "
          f"{'entries planned/approved':>24} {'intents':>7} {'lines':>5} {'indicators s: rule/model':>25}")
    for r in results:
        entries = f"{r['planned']}/{r['approved']}"
        print(f"{r['n']:>7} {r['candidates']:>5} {r['snapshot']:>8.2f} {r['rule']:>7.2f} {r['model']:>7.2f} "
              f"{r['review']:>7.2f} {r['decision']:>8.2f} {entries:>24} {r['intents']:>7} {r['decisions']:>5} "
              f"{r['indicators'][0]:>16.2f} / {r['indicators'][1]:>6.2f}")
    by_n = {r["n"]: r for r in results}
    if 10 in by_n and 500 in by_n:
        ratio = by_n[500]["decision"] / by_n[10]["decision"]
        at_500 = by_n[500]["decision"]
        linear = "at most linear" if ratio <= 50 else "faster than linear"
        print(f"\n500/10 ratio {ratio:.1f} vs 50 for linear growth: {linear}; {at_500:.1f} ms at 500 symbols "
              f"({'meets' if at_500 <= GOAL_MS else 'MISSES'} the {GOAL_MS:.0f} ms goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
