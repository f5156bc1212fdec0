"""Parameter sweep with walk-forward optimisation: `python -m research.sweep`.

For each fold (research/walkforward.py) Optuna's TPE sampler searches the declared space (research/space.py) on
the training window, every trial a full Lumibot backtest with costs (research/trials.py, on Ray or serially);
the best settings are then backtested once on the next, unseen window. The strategy's figure is the stitched
out-of-sample result, printed beside the in-sample one, with the deflated Sharpe ratio and the probability of
backtest overfitting of each fold's selection (research/overfitting.py).

Output folder (reports/sweep-<time>/): summary.txt, trials.csv (every trial of every fold), folds.csv,
importances.csv (Optuna's parameter importances, averaged over folds), oos_equity.png and oos_equity.csv (the
stitched out-of-sample equity against SPY buy-and-hold) and best.env: the last fold's chosen settings as a profile the
bot loads with `--profile reports/sweep-<time>/best.env`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date

import numpy as np
import pandas as pd

from research import overfitting
from research.cli import add_run_arguments, add_walk_forward_arguments, base_settings, make_runner
from research.space import Param, build_space
from research.walkforward import Fold, folds


def score(result: dict, objective: str, min_trades: int) -> float | None:
    """The trial's objective, or None when it cannot count (refused settings, too few trades, no curve)."""
    if "error" in result or result.get("trades", 0) < min_trades:
        return None
    if objective == "sharpe":
        value = result["sharpe"]
    elif objective == "return":
        value = result["total_return"]
    else:  # return over max drawdown; a drawdown under 1% counts as 1% so a flat curve cannot win by dividing by 0
        value = result["total_return"] / max(abs(result["max_drawdown"]), 0.01)
    return float(value) if value is not None and math.isfinite(value) else None


def none_counted(rows: list[dict], min_trades: int) -> str:
    """Why no trial of a fold counted: too few trades, or failures (with the first one's error), never one for
    the other: a fold whose trials all crashed must not read like a quiet market."""
    failed = [r["error"] for r in rows if r.get("error")]
    if not failed:
        return f"no trial had {min_trades}+ trades"
    return (f"{len(failed)} of {len(rows)} trials failed (first: {failed[0]})"
            + (f", the others had under {min_trades} trades" if len(failed) < len(rows) else ""))


def as_env(params: dict) -> dict[str, str]:
    return {k: f"{v:.6g}" if isinstance(v, float) else str(v) for k, v in params.items()}


def optimise(runner, fold: Fold, space: tuple[Param, ...], args, progress: bool, fixed: dict[str, str] | None = None,
             tag: tuple = (), bar=None) -> tuple[object, list[dict]]:
    """One fold's search on its training window; (the Optuna study, the trial rows). `fixed`: settings every trial
    carries besides the sampled ones (research.additions switches an addition on with them); `tag` prefixes each
    job's key so a caller's runner can tell whose trial it ran; `bar`: a progress bar to advance instead of one
    of its own."""
    import optuna
    from optuna.trial import TrialState
    from tqdm import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=args.seed + fold.number, constant_liar=True,
                                         n_startup_trials=max(2, min(10, args.trials // 3)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    asked: dict[int, object] = {}

    def jobs():
        for _ in range(args.trials):
            trial = study.ask()
            asked[trial.number] = trial
            sampled = as_env({p.name: p.suggest(trial) for p in space})
            yield (*tag, trial.number), {**(fixed or {}), **sampled}, fold.train_start, fold.train_end

    rows = []
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=args.trials, desc=f"fold {fold.number} ({fold.train_start}..{fold.train_end})",
                   unit="trial", disable=not progress)
    for key, result in runner.run(jobs()):
        number = key[-1]
        trial = asked[number]
        value = score(result, args.objective, args.min_trades)
        if value is None:  # failed, not pruned: TPE would count pruned trials among its "good" ones
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
        rows.append({"fold": fold.number, "trial": number, **trial.params, "objective": value,
                     **{k: v for k, v in result.items() if k != "equity"}, "_equity": result.get("equity")})
        bar.update()
    if own_bar:
        bar.close()
    return study, rows


def run_sweep(runner, space, args, progress: bool = True) -> dict:
    """Every fold: search, pick, test out of sample. Returns everything the report shows."""
    fold_rows, trial_rows, oos_curves, importances = [], [], [], []
    for fold in folds(args.start, args.end, args.train_days, args.test_days, args.gap_days):
        study, rows = optimise(runner, fold, space, args, progress)
        trial_rows += rows
        done = [r for r in rows if r["objective"] is not None]
        if not done:
            fold_rows.append({"fold": fold.number, "train": f"{fold.train_start}..{fold.train_end}",
                              "test": f"{fold.test_start}..{fold.test_end}",
                              "note": f"{none_counted(rows, args.min_trades)}: nothing chosen, the test window "
                              "stays in cash"})
            continue
        best = study.best_trial
        chosen = as_env(best.params)
        (_, oos), = runner.run([("oos", chosen, fold.test_start, fold.test_end)])
        curves = pd.DataFrame({r["trial"]: r["_equity"].pct_change() for r in done if r["_equity"] is not None})
        best_curve = next(r["_equity"] for r in done if r["trial"] == best.number)
        fold_rows.append({
            "fold": fold.number, "train": f"{fold.train_start}..{fold.train_end}",
            "test": f"{fold.test_start}..{fold.test_end}", **chosen, "is_objective": best.value,
            "oos_objective": score(oos, args.objective, 0), "oos_return": oos.get("total_return"),
            "oos_max_drawdown": oos.get("max_drawdown"), "oos_sharpe": oos.get("sharpe"),
            "oos_trades": oos.get("trades"), "oos_exposure": oos.get("exposure"),
            "deflated_sharpe": overfitting.deflated_sharpe(best_curve.pct_change().dropna().to_numpy(),
                                                           [overfitting.sharpe(curves[c].dropna().to_numpy())
                                                            for c in curves]),
            "pbo": overfitting.pbo(curves), "trials_counted": len(done)})
        if "equity" in oos:
            oos_curves.append(oos["equity"])
        try:
            import optuna

            importances.append(optuna.importance.get_param_importances(study))
        except (ValueError, RuntimeError):  # too few completed trials to fit the importance model
            pass
    last = next((f for f in reversed(fold_rows) if "is_objective" in f), None)
    chosen = {p.name: last[p.name] for p in space} if last else {}
    return {"folds": fold_rows, "trials": trial_rows, "oos": stitch(oos_curves), "importances": importances,
            "chosen": chosen}


def stitch(curves: list[pd.Series]) -> pd.Series:
    """The out-of-sample windows chained: each window's daily returns compounded onto the last value."""
    value, parts = 100_000.0, []
    for c in curves:
        c = c.dropna()
        if len(c):
            parts.append(c / c.iloc[0] * value)
            value = float(parts[-1].iloc[-1])
    return pd.concat(parts) if parts else pd.Series(dtype=float)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m research.sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="builtin", help="builtin, csv:DIR or alpaca")
    ap.add_argument("--timeframe", choices=("hour", "day"), default="hour", help="--data alpaca: bar size")
    ap.add_argument("--start", type=date.fromisoformat, required=True)
    ap.add_argument("--end", type=date.fromisoformat, required=True)
    add_walk_forward_arguments(ap, train_days=365, test_days=182, trials=30)
    ap.add_argument("--param", action="append", help="NAME=LOW:HIGH[:log|:int]; repeat (default: the built-in space)")
    add_run_arguments(ap, "sweep")
    args = ap.parse_args(argv)
    from research.report import write_report
    from utils import lumibot_env

    lumibot_env.prepare(backtesting=True)
    from backtest.runner import BacktestConfig, load_market
    from marketdata.csv_source import DataError
    from trading.settings import SettingsError

    try:
        space = build_space(args.param)
        settings = base_settings(args)
        folds(args.start, args.end, args.train_days, args.test_days, args.gap_days)  # fail before loading data
        config = BacktestConfig(data=args.data, start=args.start, end=args.end, timeframe=args.timeframe,
                                progress=not args.no_progress)
        market, *_ = load_market(config, settings)
    except (ValueError, SettingsError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    runner = make_runner(args, market, settings.strategy_env())  # each trial: these, then its sampled settings
    try:
        result = run_sweep(runner, space, args, progress=not args.no_progress)
    finally:
        runner.close()
    out = write_report(result, market, settings, space, args, time.perf_counter() - t0)
    print((out / "summary.txt").read_text())
    print(f"Sweep folder: {out}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
