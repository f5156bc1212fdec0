"""Train the entry meta-model: an ensemble predicting each candidate's realised R, validated walk-forward.

  python -m models.train --data builtin [--start 2021-01-04 --end 2023-12-29] [--out models/]
  python -m models.train --data csv:DIR --timeframe day [--start ... --end ...] [--splits 5]
  python -m models.train --schedule [--once] | history | rollback      (models/manage.py)

The label is the realised R of the bot's own exit policy (exit_sim.py), net of costs. Three model families
(ensemble.py) are fitted on expanding walk-forward folds with a purge gap of the label horizon; every figure
printed is out of sample, with its candidate count and a day-bootstrap 95% interval (evaluation.py). The
gate's threshold (MIN_EXPECTED_R) is proposed from those out-of-sample predictions and written into the card;
the threshold each fold is judged with is chosen on the earlier folds only, so the reported gate was never
tuned on the candidates it is reported on. Installs the model as the champion in --out (a new version in
versions/, the card meta_model.json pointing at it: models/registry.py) and writes validation.png. The
default built-in window ends before the default backtest year (2024).
"""

import argparse
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from models.dataset import Dataset, TrainingError, build_dataset
from models.degradation import expectation
from models.drift import reference as drift_reference
from models.ensemble import MEMBERS, Ensemble, assess_predictions, failed_gates
from models.evaluation import DayBootstrap, auc, choose_threshold, gate_report, mean
from models.exit_sim import ExitPolicy
from models.features import DERIVED_FEATURES, FEATURE_NAMES, FeatureParams
from models.meta_model import CARD_FORMAT, DEFAULT_MIN_EXPECTED_R
from models.model_files import plot_validation, render_report, write_model
from models.stop_comparison import StopComparison
from models.validation import select, walk_forward
from trading.settings_cli import add_settings_arguments, settings_from_args

TRAIN_DEFAULT_WINDOW = (date(2021, 1, 4), date(2023, 12, 29))
MIN_TRAIN_CANDIDATES = 100


def train(ds: Dataset, policy: ExitPolicy, gates: dict, stop_bounds: tuple[float, float] = (0.02, 0.12),
          n_splits: int = 5, seed: int = 0, progress: bool = True) -> dict:
    """Walk-forward validation, the proposed threshold, the stops compared, and the final ensemble (with its stop
    model) fitted on every candidate. `gates`: ensemble_agreement and max_uncertainty, applied in the report as
    the bot applies them. With STOP_MODE=model each fold's labels use that fold's own stop model."""
    from tqdm import tqdm

    try:
        folds = walk_forward(len(ds.timeline), n_splits, gap=policy.horizon_bars)
    except ValueError as exc:
        raise TrainingError(f"{exc}; use a longer window (an earlier --start), fewer folds (--splits) or a shorter "
                            "label horizon (MODEL_HORIZON_BARS)") from None
    rows, preds, index, thresholds, rs, stops = [], [], [], [], [], StopComparison(ds, policy, stop_bounds)
    for fold in tqdm(folds, desc="walk-forward folds", disable=not progress, file=sys.stdout):
        tr, te = select(ds.bar_pos, fold.train_bars), select(ds.bar_pos, fold.test_bars)
        row = {"fold": fold.number, "train": _span(ds.timeline, fold.train_bars),
               "test": _span(ds.timeline, fold.test_bars), "n_train": int(tr.sum()), "n_test": int(te.sum()),
               "train_bars": list(fold.train_bars), "test_bars": list(fold.test_bars),
               "gap_bars": fold.test_bars[0] - fold.train_bars[1]}
        if tr.sum() < MIN_TRAIN_CANDIDATES or not te.any():
            rows.append({**row, "skipped": f"{int(tr.sum())} training and {int(te.sum())} test candidates (need "
                                           f"{MIN_TRAIN_CANDIDATES} and 1)"})
            continue
        tr_rows, te_rows = np.flatnonzero(tr), np.flatnonzero(te)
        stop_model = stops.fold(tr_rows, te_rows, seed)
        if policy.stop_mode == "model":
            if stop_model is None:
                rows.append({**row, "skipped": "too few winning candidates to fit the stop model (STOP_MODE=model)"})
                continue
            r_tr, r_te = stops.labels(tr_rows, stop_model), stops.labels(te_rows, stop_model)
        else:
            r_tr, r_te = ds.r[tr], ds.r[te]
        # the threshold this fold is judged with comes from earlier folds' out-of-sample predictions only
        earlier = np.concatenate(preds).mean(axis=1) if preds else np.array([])
        chosen = choose_threshold(earlier, np.concatenate(rs)) if preds else None
        threshold = DEFAULT_MIN_EXPECTED_R if chosen is None else chosen
        p = Ensemble(MEMBERS, seed).fit(ds.X[tr], r_tr).predict_members(ds.X[te])
        a = assess_predictions(p, threshold)
        passed = _passes(a, threshold, gates)
        rows.append({**row, "threshold": threshold, "auc": auc(a.expected_r, (r_te > 0).astype(float)),
                     "pass_share": float(passed.mean()), "avg_r_passed": mean(r_te[passed]),
                     "avg_r_rejected": mean(r_te[~passed])})
        preds.append(p)
        index.append(te_rows)
        rs.append(r_te)
        thresholds.append(np.full(int(te.sum()), threshold))
    if not preds:
        raise TrainingError("no walk-forward fold could be trained; use a longer window or more symbols")
    p_all, i_all, thr_all, r = np.concatenate(preds), np.concatenate(index), np.concatenate(thresholds), \
        np.concatenate(rs)
    boot = DayBootstrap(ds.times[i_all].normalize().asi8)
    ens = assess_predictions(p_all, thr_all)
    report = {"ensemble": gate_report(ens.expected_r, r, _passes(ens, thr_all, gates), boot)}
    for k, name in enumerate(MEMBERS):
        report[name] = gate_report(p_all[:, k], r, p_all[:, k] >= thr_all, boot)
    proposed = choose_threshold(ens.expected_r, r)
    everyone = np.arange(len(ds.r))
    final_stops = stops.fit(everyone, seed)
    r_final = stops.labels(everyone, final_stops) if policy.stop_mode == "model" else ds.r
    final = Ensemble(MEMBERS, seed).fit(ds.X, r_final)
    final.stop_model_ = final_stops  # None when too few winners: STOP_MODE=model then refuses the model at start
    return {"model": final, "folds": rows, "report": report, "proposed": proposed, "stops": stops.report(),
            # what the live watch holds its trades to: the candidates each fold's gate passed, out of sample
            "expectation": expectation(r[_passes(ens, thr_all, gates)]),
            "oos": {"expected_r": ens.expected_r, "r": r, "uncertainty": ens.uncertainty},
            "n_days": len(np.unique(ds.times[i_all].normalize()))}


def _passes(a, threshold, gates: dict) -> np.ndarray:
    return failed_gates(a.expected_r, a.agreement, a.uncertainty, threshold, gates.get("ensemble_agreement", 0.0),
                        gates.get("max_uncertainty", 0.0)) == ""


def _span(timeline: pd.DatetimeIndex, span: tuple[int, int]) -> str:
    return f"{timeline[span[0]]:%Y-%m-%d}..{timeline[span[1] - 1]:%Y-%m-%d}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in argv for a in ("--schedule", "--once", "history", "rollback")):
        from models.manage import main as manage

        return manage(argv)
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="builtin", help="builtin, csv:DIR or alpaca (cached in BAR_CACHE_DIR)")
    ap.add_argument("--timeframe", choices=("hour", "day"), default="hour", help="--data alpaca: bar size")
    ap.add_argument("--refresh", action="store_true", help="--data alpaca: fetch again what the cache holds")
    ap.add_argument("--start", type=date.fromisoformat)
    ap.add_argument("--end", type=date.fromisoformat)
    ap.add_argument("--out", type=Path, default=None, help="folder (default: the folder of MODEL_PATH)")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None, help="seed of the built-in market")
    add_settings_arguments(ap)
    args = ap.parse_args(argv)

    from backtest.runner import BacktestConfig, load_market
    from marketdata.builtin import DEFAULT_SEED
    from marketdata.csv_source import DataError
    from trading.settings import SettingsError

    try:
        settings = settings_from_args(args)
        config = BacktestConfig(data=args.data, start=args.start, end=args.end, timeframe=args.timeframe,
                                refresh=args.refresh, seed=DEFAULT_SEED if args.seed is None else args.seed)
        market, start, end = load_market(config, settings, default_window=TRAIN_DEFAULT_WINDOW)
        out = args.out or Path(settings.model_path).parent
        path, card = fit_model(settings, market, start, end, out, args.splits)
    except (SettingsError, DataError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(render_report(card))
    print(f"\nInstalled as the champion {card.get('version', '')} ({path.with_suffix('.json')} points at "
          f"versions/{card.get('version', '')}); validation.png in {out} ({card['train_seconds']:.0f} s). The one "
          "before: python -m models.train rollback.")
    return 0


def fit_model(settings, market, start: date, end: date, out: Path, splits: int = 5, progress: bool = True,
              say=print) -> tuple[Path, dict]:
    """Build the candidates of `market` in [start, end], validate walk-forward, fit the final ensemble and write
    it with its card and plot into `out`. The research tools call this for each walk-forward fold."""
    t0 = time.perf_counter()
    params = FeatureParams.from_settings(settings)
    policy = ExitPolicy.from_settings(settings, market.bar_period)
    universe = tuple(s for s in settings.universe if s in market.bars)
    say(f"Training the meta-model on {market.source}, {start} .. {end}, {len(universe)} universe symbols "
        f"({market.timestep} bars). Label: {policy.describe()}.")
    ds = build_dataset(market.bars, universe, params, settings.rsi_oversold, policy, start, end)
    exits = ", ".join(f"{n} {k}" for k, n in ds.exits().items())
    say(f"{len(ds.r)} candidates (RSI < {settings.rsi_oversold:g}) on {len(np.unique(ds.times.normalize()))} "
        f"days; average realised R {ds.r.mean():+.3f}, {ds.y.mean():.0%} made money; exits: {exits}.")
    gates = {"ensemble_agreement": settings.ensemble_agreement, "max_uncertainty": settings.max_uncertainty}
    result = train(ds, policy, gates, (settings.stop_model_min_pct, settings.stop_model_max_pct), splits,
                   progress=progress)
    card = make_card(settings, splits, market, start, end, universe, policy, params, ds, result, gates)
    card["train_seconds"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    plot_validation(out / "validation.png", result["oos"], result["proposed"])
    path = write_model(out / Path(settings.model_path).name, result["model"], card, out / "validation.png",
                       keep=settings.models_kept)
    return path, card


def make_card(settings, splits: int, market, start, end, universe, policy: ExitPolicy, params: FeatureParams,
              ds: Dataset, result: dict, gates: dict) -> dict:
    import lightgbm
    import pandas_ta_classic
    import sklearn

    oos = result["oos"]["expected_r"]
    return {
        "format": CARD_FORMAT, "kind": "ensemble", "model_file": "meta_model.joblib",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": "ensemble of LightGBM, ridge regression and extra trees predicting realised R (the mean is the "
                 "expected R; agreement and spread are the gates' inputs), each with a K-Means volatility-regime "
                 "step", "members": list(MEMBERS),
        "feature_names": list(FEATURE_NAMES), "derived_features": list(DERIVED_FEATURES),
        "feature_params": params.as_dict(),
        "label": {"kind": "realised R", "horizon_bars": policy.horizon_bars, "policy": vars(policy),
                  "entry": "next bar's open", "candidates": f"RSI < {settings.rsi_oversold:g}",
                  "definition": policy.describe()},
        "training_window": {"start": str(start), "end": str(end), "timestep": market.timestep},
        "data": {"source": market.source, "sha256": ds.sha256(), "candidates": len(ds.r), "symbols": list(universe),
                 "average_r": float(ds.r.mean()), "exits": ds.exits()},
        "versions": {"sklearn": sklearn.__version__, "lightgbm": lightgbm.__version__, "pandas": pd.__version__,
                     "pandas_ta_classic": getattr(pandas_ta_classic, "version", "?"),
                     "python": platform.python_version()},
        "metrics": {"folds": result["folds"], "overall": result["report"]["ensemble"],
                    "members": {m: result["report"][m] for m in MEMBERS}, "days": result["n_days"]},
        "validation": {"method": "walk-forward, expanding window (TimeSeriesSplit), never shuffled; intervals "
                                 "from a bootstrap over days; each fold's threshold chosen on earlier folds",
                       "n_splits": splits, "gap_bars": policy.horizon_bars, "gates": gates},
        # the bot gates on this unless MIN_EXPECTED_R is set; None: no threshold beat taking every candidate
        "gate": {"min_expected_r": result["proposed"], "default": DEFAULT_MIN_EXPECTED_R,
                 "chosen_on": "all folds' out-of-sample predictions (the best average realised R among thresholds "
                              "passing at least 10% and 20 candidates)"},
        "stops": result["stops"],
        # what the live bot compares its recent candidates with (models/drift.py)
        "drift_reference": drift_reference(ds.X[list(FEATURE_NAMES)]),
        "live_expectation": result["expectation"],  # models/degradation.py
        "oos_expected_r": {q: float(np.quantile(oos, v)) for q, v in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9),
                                                                      ("max", 1.0))},
    }


if __name__ == "__main__":
    sys.exit(main())
