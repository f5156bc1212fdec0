"""Train the entry meta-model with walk-forward validation and write it with its card.

  python -m models.train --data builtin [--start 2021-01-04 --end 2023-12-29] [--out models/]
  python -m models.train --data csv:DIR [--start ... --end ...]

Writes meta_model.joblib, meta_model.json (the card), calibration.png and feature_importance.png
into --out, and prints the walk-forward table. The default built-in window ends before the default
backtest year (2024), so backtests with the model are out of sample.
"""

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from models.features import DERIVED_FEATURES, FEATURE_NAMES, FeatureParams, VolRegime, feature_frames
from models.labels import LabelSpec, bracket_outcomes
from models.meta_model import CARD_FORMAT, sha256_file
from models.validation import gate_metrics, select, walk_forward

TRAIN_DEFAULT_WINDOW = (date(2021, 1, 4), date(2023, 12, 29))
MIN_POSITIVES = 5


class TrainingError(ValueError):
    """Not enough data to train or validate; the message says what is missing."""


@dataclass
class Dataset:
    X: pd.DataFrame
    y: np.ndarray
    r: np.ndarray
    times: pd.DatetimeIndex
    symbols: np.ndarray
    bar_pos: np.ndarray
    timeline: pd.DatetimeIndex

    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X.to_numpy(dtype=float)).tobytes())
        h.update(self.y.tobytes())
        h.update(self.times.asi8.tobytes())
        h.update("|".join(self.symbols).encode())
        return h.hexdigest()


def build_dataset(bars: dict[str, pd.DataFrame], universe: tuple[str, ...], params: FeatureParams,
                  oversold: float, spec: LabelSpec, start: date, end: date) -> Dataset:
    """Every candidate the strategy would consider (RSI below oversold) in [start, end], with its label."""
    feats = feature_frames(bars, params, symbols=universe)
    timeline = None
    for sym in feats:
        timeline = bars[sym].index if timeline is None else timeline.union(bars[sym].index)
    lo, hi = pd.Timestamp(start, tz=timeline.tz), pd.Timestamp(end, tz=timeline.tz) + pd.Timedelta(days=1)
    timeline = timeline[(timeline >= lo) & (timeline < hi)]  # folds split the window; warm-up only feeds features
    parts = []
    for sym, f in feats.items():
        complete = f.notna().all(axis=1).to_numpy()
        in_window = (f.index >= lo) & (f.index < hi)
        pos = np.flatnonzero((f["rsi"].to_numpy() < oversold) & complete & in_window)
        y, r = bracket_outcomes(bars[sym], pos, spec)
        keep = np.isfinite(y)
        if keep.any():
            parts.append(pd.DataFrame({"symbol": sym, "y": y[keep], "r": r[keep]}, index=f.index[pos[keep]])
                         .join(f.iloc[pos[keep]]))
    if not parts:
        raise TrainingError(f"no candidates (RSI < {oversold:g} with complete features and a full label horizon) "
                            f"between {start} and {end}; use a longer window or more symbols.")
    data = pd.concat(parts).rename_axis("time").reset_index().sort_values(["time", "symbol"], kind="stable")
    times = pd.DatetimeIndex(data["time"])
    return Dataset(X=data[list(FEATURE_NAMES)].reset_index(drop=True), y=data["y"].to_numpy(),
                   r=data["r"].to_numpy(), times=times, symbols=data["symbol"].to_numpy(),
                   bar_pos=timeline.get_indexer(times), timeline=timeline)


def make_pipeline(seed: int = 0):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    # trees need no scaling; the K-Means regime step scales its own inputs
    return Pipeline([("regime", VolRegime(random_state=seed)),
                     ("clf", GradientBoostingClassifier(n_estimators=200, max_depth=3, learning_rate=0.05,
                                                        subsample=0.8, min_samples_leaf=20, random_state=seed))])


def fit_calibrated(X: pd.DataFrame, y: np.ndarray, bar_pos: np.ndarray, gap: int,
                   seed: int = 0) -> tuple[object, dict]:
    """Fit on the first 75% of the training span, calibrate (sigmoid) on the last 25% after a gap:
    probabilities calibrated out of sample, in time order. Returns the model and the split it used
    (bar positions), measured from the rows actually fitted and calibrated on, so the card shows the
    gap that was applied rather than the one that was asked for."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    first, last = int(bar_pos.min()), int(bar_pos.max())
    cut = first + int(0.75 * (last - first))
    fit_mask, cal_mask = bar_pos < cut - gap, bar_pos >= cut
    for name, mask in (("fit", fit_mask), ("calibration", cal_mask)):
        positives = int(y[mask].sum())
        if positives < MIN_POSITIVES or positives == mask.sum():
            raise TrainingError(f"the {name} part has {positives} winning candidates of {int(mask.sum())}; need at "
                                f"least {MIN_POSITIVES} of each class (use a longer window or more symbols)")
    pipe = make_pipeline(seed).fit(X[fit_mask], y[fit_mask])
    model = CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid").fit(X[cal_mask], y[cal_mask])
    fit_last, cal_first = int(bar_pos[fit_mask].max()), int(bar_pos[cal_mask].min())
    split = {"fit_bars": [first, fit_last + 1], "calibration_bars": [cal_first, last + 1],
             # bars between the last candidate fitted on and the first one calibrated on; a label looks
             # `gap` bars ahead, so this must exceed the gap or calibration sees what the fit learned from
             "gap_bars": cal_first - fit_last - 1, "requested_gap_bars": int(gap),
             "n_fit": int(fit_mask.sum()), "n_calibration": int(cal_mask.sum())}
    return model, split


def suggest_threshold(p: np.ndarray, y: np.ndarray, r: np.ndarray, min_share: float = 0.10) -> float | None:
    """The threshold with the best out-of-sample average R among those passing at least `min_share` of
    candidates, if it beats taking every candidate; None when no threshold does."""
    best, best_r = None, float(r.mean())
    for thr in np.round(np.arange(0.01, 0.91, 0.01), 2):
        passed = p >= thr
        if passed.mean() < min_share or passed.sum() < 20:
            continue
        avg = float(r[passed].mean())
        if avg > best_r:
            best, best_r = float(thr), avg
    return best


def train(ds: Dataset, spec: LabelSpec, threshold: float, n_splits: int = 5, seed: int = 0, progress: bool = True):
    from tqdm import tqdm

    try:
        folds = walk_forward(len(ds.timeline), n_splits, gap=spec.horizon_bars)
    except ValueError as exc:
        raise TrainingError(f"{exc}; use a longer window (an earlier --start), fewer folds (--splits) or a shorter "
                            "label horizon (MODEL_HORIZON_BARS)") from None
    rows, oos_p, oos_i = [], [], []
    for fold in tqdm(folds, desc="walk-forward folds", disable=not progress, file=sys.stdout):
        tr, te = select(ds.bar_pos, fold.train_bars), select(ds.bar_pos, fold.test_bars)
        # boundaries in bar positions of the timeline ([start, end)), so the card proves the purge gap
        row = {"fold": fold.number, "train": _span(ds.timeline, fold.train_bars),
               "test": _span(ds.timeline, fold.test_bars), "n_train": int(tr.sum()), "n_test": int(te.sum()),
               "train_bars": list(fold.train_bars), "test_bars": list(fold.test_bars),
               "gap_bars": fold.test_bars[0] - fold.train_bars[1]}
        try:
            model, split = fit_calibrated(ds.X[tr], ds.y[tr], ds.bar_pos[tr], spec.horizon_bars, seed)
        except TrainingError as exc:
            rows.append({**row, "skipped": str(exc)})
            continue
        row["calibration"] = split
        if not te.any():
            rows.append({**row, "skipped": "no candidates in the test window"})
            continue
        p = model.predict_proba(ds.X[te])[:, 1]
        rows.append({**row, **gate_metrics(p, ds.y[te], ds.r[te], threshold)})
        oos_p.append(p)
        oos_i.append(np.flatnonzero(te))
    if not oos_p:
        raise TrainingError("no walk-forward fold could be trained; use a longer window or more symbols")
    p_all, i_all = np.concatenate(oos_p), np.concatenate(oos_i)
    overall = gate_metrics(p_all, ds.y[i_all], ds.r[i_all], threshold)
    suggested = suggest_threshold(p_all, ds.y[i_all], ds.r[i_all])
    if suggested is not None:
        overall["at_suggested"] = gate_metrics(p_all, ds.y[i_all], ds.r[i_all], suggested)
    final, split = fit_calibrated(ds.X, ds.y, ds.bar_pos, spec.horizon_bars, seed)
    final.calibration_split_ = split  # fitted-attribute style: main() writes it into the card
    return final, rows, overall, suggested, (p_all, ds.y[i_all])


def write_model(out: Path, model, card: dict) -> Path:
    import joblib

    out.mkdir(parents=True, exist_ok=True)
    path = out / "meta_model.joblib"
    tmp = path.with_suffix(".joblib.tmp")
    joblib.dump(model, tmp)
    card["sha256"] = sha256_file(tmp)
    card_tmp = out / "meta_model.json.tmp"
    card_tmp.write_text(json.dumps(_clean(card), indent=2))
    tmp.replace(path)  # model and card change together: each is written whole, then moved into place
    card_tmp.replace(out / "meta_model.json")
    return path


def render_table(rows: list[dict], overall: dict, threshold: float, suggested: float | None) -> str:
    def f(x, spec=".3f"):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)

    head = (f"{'fold':>4} {'test window':<23} {'n':>5} {'base':>5} {'AUC':>6} {'Brier':>6} {'pass':>6} "
            f"{'hit+':>6} {'hit-':>6} {'R+':>6} {'R-':>6}")
    lines = [f"Walk-forward (threshold {threshold:g}; + passed, - rejected; R = bracket outcome in stop units)",
             head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['fold']:>4} {r['test']:<23} skipped: {r['skipped']}")
            continue
        lines.append(f"{r['fold']:>4} {r['test']:<23} {r['n']:>5} {f(r['base_rate'], '.2f'):>5} {f(r['auc']):>6} "
                     f"{f(r['brier']):>6} {f(r['pass_share'], '.1%'):>6} {f(r['hit_passed'], '.2f'):>6} "
                     f"{f(r['hit_rejected'], '.2f'):>6} {f(r['avg_r_passed'], '+.2f'):>6} "
                     f"{f(r['avg_r_rejected'], '+.2f'):>6}")
    o = overall
    lines.append(f"{'all':>4} {'(out of sample)':<23} {o['n']:>5} {f(o['base_rate'], '.2f'):>5} {f(o['auc']):>6} "
                 f"{f(o['brier']):>6} {f(o['pass_share'], '.1%'):>6} {f(o['hit_passed'], '.2f'):>6} "
                 f"{f(o['hit_rejected'], '.2f'):>6} {f(o['avg_r_passed'], '+.2f'):>6} "
                 f"{f(o['avg_r_rejected'], '+.2f'):>6}")
    if suggested is None:
        lines.append("No threshold improved the average R of the candidates out of sample: on this data the model "
                     "shows no usable edge.")
    else:
        s = o["at_suggested"]
        lines.append(f"Best out-of-sample threshold {suggested:.2f}: passes {s['pass_share']:.0%}, hit rate "
                     f"{f(s['hit_passed'], '.2f')} vs {f(s['hit_rejected'], '.2f')}, average R "
                     f"{f(s['avg_r_passed'], '+.2f')} vs {f(s['avg_r_rejected'], '+.2f')} (not applied: set "
                     "CONFIDENCE_THRESHOLD yourself).")
    return "\n".join(lines)


def _span(timeline: pd.DatetimeIndex, span: tuple[int, int]) -> str:
    return f"{timeline[span[0]]:%Y-%m-%d}..{timeline[span[1] - 1]:%Y-%m-%d}"


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _plots(out: Path, model, oos: tuple[np.ndarray, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    p, y = oos
    fig, ax = plt.subplots(figsize=(5.5, 5))
    frac, mean = calibration_curve(y, p, n_bins=8, strategy="quantile")
    ax.plot([0, max(p.max(), 0.3)], [0, max(p.max(), 0.3)], "k--", lw=0.8, label="perfect")
    ax.plot(mean, frac, "o-", label="meta-model (walk-forward, out of sample)")
    ax.set_xlabel("predicted probability of target before stop")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)
    pipe = model.calibrated_classifiers_[0].estimator.estimator
    importances = pipe.named_steps["clf"].feature_importances_
    names = [*FEATURE_NAMES, *DERIVED_FEATURES]
    order = np.argsort(importances)
    fig, ax = plt.subplots(figsize=(6.5, 7))
    ax.barh([names[i] for i in order], importances[order])
    ax.set_xlabel("impurity importance (final model)")
    fig.tight_layout()
    fig.savefig(out / "feature_importance.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="builtin", help="builtin, csv:DIR or alpaca (cached in BAR_CACHE_DIR)")
    ap.add_argument("--timeframe", choices=("hour", "day"), default="hour", help="--data alpaca: bar size")
    ap.add_argument("--refresh", action="store_true", help="--data alpaca: fetch again what the cache holds")
    ap.add_argument("--start", type=date.fromisoformat)
    ap.add_argument("--end", type=date.fromisoformat)
    ap.add_argument("--out", type=Path, default=None, help="folder (default: the folder of MODEL_PATH)")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None, help="seed of the built-in market")
    ap.add_argument("--env-file", type=Path, default=Path(".env"))
    ap.add_argument("--profile", default=None, help="settings profile (profiles/NAME.env or a path)")
    args = ap.parse_args(argv)

    from backtest.runner import BacktestConfig, load_market
    from marketdata.builtin import DEFAULT_SEED
    from marketdata.csv_source import DataError
    from trading.settings import Settings, SettingsError

    try:
        settings = Settings.load(dotenv_path=args.env_file,
                                 overrides={"PROFILE": args.profile} if args.profile else None)
        spec = LabelSpec(settings.model_horizon_bars, settings.stop_loss_pct, settings.take_profit_pct)
        params = FeatureParams.from_settings(settings)
        config = BacktestConfig(data=args.data, start=args.start, end=args.end, timeframe=args.timeframe,
                                refresh=args.refresh, seed=DEFAULT_SEED if args.seed is None else args.seed)
        t0 = time.perf_counter()
        market, start, end = load_market(config, settings, default_window=TRAIN_DEFAULT_WINDOW)
        universe = tuple(s for s in settings.universe if s in market.bars)
        print(f"Training the meta-model on {market.source}, {start} .. {end}, {len(universe)} universe symbols "
              f"({market.timestep} bars). Label: {spec.describe()}.")
        ds = build_dataset(market.bars, universe, params, settings.rsi_oversold, spec, start, end)
        print(f"{len(ds.y)} candidates (RSI < {settings.rsi_oversold:g}), {int(ds.y.sum())} winners "
              f"(base rate {ds.y.mean():.1%}); break-even probability for this bracket "
              f"{spec.stop_pct / (spec.stop_pct + spec.target_pct):.2f}.")
        model, rows, overall, suggested, oos = train(ds, spec, settings.confidence_threshold, args.splits)
    except (SettingsError, DataError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import pandas_ta_classic
    import sklearn

    card = {
        "format": CARD_FORMAT, "model_file": "meta_model.joblib",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": "GradientBoostingClassifier in a Pipeline with a K-Means volatility-regime step, calibrated "
                 "(sigmoid) on the last 25% of the training window after a gap of the label horizon",
        "feature_names": list(FEATURE_NAMES), "derived_features": list(DERIVED_FEATURES),
        "feature_params": params.as_dict(),
        "label": {"horizon_bars": spec.horizon_bars, "stop_pct": spec.stop_pct, "target_pct": spec.target_pct,
                  "entry": "next bar's open", "candidates": f"RSI < {settings.rsi_oversold:g}",
                  "definition": spec.describe()},
        "training_window": {"start": str(start), "end": str(end), "timestep": market.timestep},
        "data": {"source": market.source, "sha256": ds.sha256(), "candidates": len(ds.y),
                 "winners": int(ds.y.sum()), "symbols": list(universe)},
        "versions": {"sklearn": sklearn.__version__, "pandas": pd.__version__,
                     "pandas_ta_classic": getattr(pandas_ta_classic, "version", "?"),
                     "python": platform.python_version()},
        "metrics": {"folds": rows, "overall": overall},
        # what the folds and the final calibration actually used, in bars of the timeline
        "validation": {"method": "walk-forward, expanding window (TimeSeriesSplit), never shuffled",
                       "n_splits": args.splits, "gap_bars": spec.horizon_bars,
                       "final_calibration": getattr(model, "calibration_split_", None)},
        "threshold": settings.confidence_threshold,
        "breakeven_probability": spec.stop_pct / (spec.stop_pct + spec.target_pct),
        "suggested_threshold": suggested,
        # out-of-sample probabilities: a later CONFIDENCE_THRESHOLD above all of them means no entries at all
        "oos_probability": {q: float(np.quantile(oos[0], v)) for q, v in (("p50", 0.5), ("p90", 0.9),
                                                                           ("p99", 0.99), ("max", 1.0))},
        "train_seconds": time.perf_counter() - t0,
    }
    out = args.out or Path(settings.model_path).parent
    path = write_model(out, model, card)
    _plots(out, model, oos)
    print()
    print(render_table(rows, overall, settings.confidence_threshold, suggested))
    print(f"\nWrote {path}, {path.with_suffix('.json').name}, calibration.png, feature_importance.png in {out} "
          f"({card['train_seconds']:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
