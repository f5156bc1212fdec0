"""The additions table: the strategy with its defaults, with each addition switched on one at a time, and SPY, all
out of sample: `python -m research.additions`.

An addition is a name, the settings that switch it on and, optionally, a small space (research/space.py) tuned on
each fold's training window with the sweep's own machinery (research/sweep.py: its folds, Optuna search, scoring
and trial runners). The settings chosen on a training window are backtested once on that fold's test window; the
test windows stitched together give each row's figures, beside SPY bought and held over the same days. Daily bars,
costs on, development data only: nothing after 2018-12-31 is ever loaded, tuned on or reported.

  python -m research.additions                                  # every declared addition, on Ray
  python -m research.additions --only defaults,trend_filter --runner serial
  python -m research.additions --addition gate:CONFIDENCE_THRESHOLD=0.7:CONFIDENCE_THRESHOLD=0.5:0.8

Output folder (reports/additions-<time>/): table.md, table.csv, folds.csv (what each fold chose and made) and
equity.png (research/additions_report.py).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from research.cli import add_run_arguments, add_walk_forward_arguments, base_settings, make_runner
from research.space import KNOWN, Param, parse_param
from research.sweep import as_env, none_counted, optimise
from research.walkforward import Fold, folds

CUTOFF = date(2018, 12, 31)  # later bars are kept for other people's out-of-sample review (data/daily/README.md)
ALL_STOCKS = "*"  # UNIVERSE=*: every stock the data holds
# 2009-12-29 makes seven folds of two training years, a 5-day gap and one test year whose tests cover 2012..2018
DEFAULT_START = date(2009, 12, 29)
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
SYNTAX = ("write NAME:KEY=VAL,KEY=VAL[:PARAM=LOW:HIGH[:int|:log]...], e.g. --addition trend:TREND_FILTER=true or "
          "--addition vol:MARKET_VOL_MAX_PCTILE=0.8:MARKET_VOL_MAX_PCTILE=0.5:0.95")


@dataclass(frozen=True)
class Addition:
    name: str
    overrides: dict[str, str] = field(default_factory=dict)  # the settings that switch it on
    space: tuple[Param, ...] = ()  # tuned on each training window; a tuned value replaces its override
    note: str = ""
    model: bool = False  # trades with a meta-model trained for each fold before its test window (fold_models.py)

    def describe(self) -> str:
        tuned = {p.name for p in self.space}
        parts = [f"{k}={v}" for k, v in self.overrides.items() if k not in tuned]
        parts += [f"{p.name} tuned {p.low:g}..{p.high:g}" for p in self.space]
        parts += ["a meta-model per fold"] if self.model else []
        return ", ".join(parts) or "(the defaults)"


ADDITIONS: tuple[Addition, ...] = (
    Addition("defaults"),
    # the entry filters of trading/steps/entry_filters.py, each off at its default
    Addition("market_vol_gate", {"MARKET_VOL_MAX_PCTILE": "0.8"}, (Param("MARKET_VOL_MAX_PCTILE", 0.5, 0.95),)),
    Addition("trend_filter", {"TREND_FILTER": "true"}),
    Addition("atr_band", {"ATR_PCT_MIN": "0.01", "ATR_PCT_MAX": "0.04"},
             (Param("ATR_PCT_MIN", 0.0, 0.015), Param("ATR_PCT_MAX", 0.025, 0.08))),  # disjoint: MIN < MAX
    Addition("min_dollar_volume", {"MIN_DOLLAR_VOLUME": "2e8"}, (Param("MIN_DOLLAR_VOLUME", 5e7, 2e9, "log"),)),
    Addition("correlation_cap", {"CORRELATION_MAX": "0.7"}, (Param("CORRELATION_MAX", 0.2, 0.9),)),
    # the time exit, off by default since this table showed it cutting winners: the old 24 hours (on daily bars
    # the next session), or a later one (6.5 hours a daily bar)
    Addition("time_exit_24h", {"TIME_EXIT_HOURS": "24"}, note="the default before this table"),
    Addition("time_exit_tuned", {"TIME_EXIT_HOURS": "65"}, (Param("TIME_EXIT_HOURS", 30, 200, "int"),)),
    # let winners run further: a farther take-profit (the trailing stop after +2R still protects them)
    Addition("wider_target", {"TAKE_PROFIT_PCT": "0.25"}, (Param("TAKE_PROFIT_PCT", 0.10, 0.40),)),
    Addition("reentry", {"REENTRY_DAYS": "10"}, (Param("REENTRY_DAYS", 3, 30, "int"),),
             note="after a take-profit, bought again while above the trend line"),
    Addition("wider_universe", {"UNIVERSE": ALL_STOCKS}, note="every stock in the data: more survivorship bias"),
    Addition("more_dips", {"RSI_OVERSOLD": "35"}, (Param("RSI_OVERSOLD", 25, 45, "int"),),
             note="a looser oversold level: more dips bought, more time in the market"),
    Addition("atr_sizing", {"STOP_MODE": "atr"},
             (Param("ATR_STOP_MULT", 1.0, 4.0), Param("ATR_TARGET_MULT", 4.5, 12.0)),  # disjoint: STOP < TARGET
             note="shares = risk / ATR stop: per-trade volatility sizing, not a portfolio volatility target"),
    Addition("vol_target", {"VOL_TARGET_PCT": "0.15"}, (Param("VOL_TARGET_PCT", 0.05, 0.40),),
             note="risk per trade scaled by a volatility target over SPY's realised volatility"),
    Addition("hedge_off", {"MAX_INVERSE_ALLOCATION": "0"}, note="an ablation: the default breadth hedge removed"),
    Addition("hedge_to_book", {"HEDGE_BOOK_RATIO": "1"}, (Param("HEDGE_BOOK_RATIO", 0.25, 1.5),),
             note="the hedge offsets the long book instead of a fixed share of the portfolio"),
    # the meta-model: one per fold, trained on every stock from 2004 to the fold's training end
    Addition("model_gate", {}, model=True, note="the ensemble's expected-R gate at the card's threshold"),
    Addition("model_stops", {"STOP_MODE": "model"}, model=True, note="the stop model's stops, with the gate"),
)


def parse_addition(text: str) -> Addition:
    """NAME:KEY=VAL,KEY=VAL[:PARAM=LOW:HIGH[:int|:log]...] -> Addition; ValueError naming the problem and the fix."""
    name, sep, rest = text.partition(":")
    fixed_text, _, space_text = rest.partition(":")
    if not sep or not NAME_RE.match(name):
        raise ValueError(f"--addition {text!r}: no NAME before the first ':'; {SYNTAX}")
    overrides: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in fixed_text.split(","))):
        key, eq, value = (x.strip() for x in pair.partition("="))
        if not eq or not value or key.upper() not in KNOWN:
            raise ValueError(f"--addition {text!r}: {pair!r} is not KEY=VAL with KEY a strategy, risk or cost "
                             f"setting; {SYNTAX}")
        overrides[key.upper()] = value
    params: list[str] = []
    for token in filter(None, space_text.split(":")):  # a token with '=' starts a parameter, the rest continue it
        if "=" in token:
            params.append(token)
        elif params:
            params[-1] += ":" + token
        else:
            raise ValueError(f"--addition {text!r}: {token!r} is not PARAM=LOW:HIGH; {SYNTAX}")
    try:
        space = tuple(parse_param(p) for p in params)
    except ValueError as exc:
        raise ValueError(f"--addition {text!r}: {str(exc).replace('--param ', 'parameter ')}; {SYNTAX}") from None
    if not overrides and not space:
        raise ValueError(f"--addition {text!r} switches nothing on; {SYNTAX}")
    return Addition(name, overrides, space, note="from the command line")


def select(only: str | None, custom: list[str] | None) -> list[Addition]:
    """The declared additions (all, or those `--only` names) plus the command line's, which replace a namesake."""
    chosen = list(ADDITIONS)
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in {a.name for a in ADDITIONS}]
        if unknown:
            raise ValueError(f"--only {', '.join(unknown)}: not declared; choose from "
                             f"{', '.join(a.name for a in ADDITIONS)}, or add one with --addition")
        chosen = [a for a in ADDITIONS if a.name in names]
    for extra in map(parse_addition, custom or []):
        chosen = [a for a in chosen if a.name != extra.name] + [extra]
    return chosen


def switched_on(addition: Addition, market, settings) -> dict[str, str]:
    """The addition's settings with UNIVERSE=* spelled out: every symbol in the data but the inverse ETFs and the
    benchmark funds (what Settings.all_symbols adds beyond the universe and the bellwethers)."""
    out = dict(addition.overrides)
    if out.get("UNIVERSE") == ALL_STOCKS:
        funds = set(settings.all_symbols()) - set(settings.universe) - set(settings.bellwethers)
        out["UNIVERSE"] = ",".join(s for s in sorted(market.bars) if s not in funds)
    return out


def run_additions(runner, additions: list[Addition], resolved: dict[str, dict[str, str]], args,
                  progress: bool = True, fold_models: dict[int, Path] | None = None) -> dict:
    """Tune each addition's space on every training window, then backtest each fold's choice on its test window.
    Returns the folds, {addition: [test result per fold]} and one row per fold and addition."""
    from tqdm import tqdm

    fs = folds(args.start, args.end, args.train_days, args.test_days, args.gap_days)
    tuned = [a for a in additions if a.space]
    bar = tqdm(total=len(tuned) * len(fs) * args.trials + len(additions) * len(fs), desc="additions",
               unit="trial", disable=not progress)
    # (addition, fold) -> (the settings its test window trades, how they were chosen, their training objective)
    plan: dict[tuple[str, int], tuple[dict[str, str], str, float | None]] = {
        (a.name, f.number): ({**resolved[a.name], "MODEL_PATH": str(fold_models[f.number])}, "the fold's model",
                             None) if a.model else (resolved[a.name], "not tuned", None)
        for a in additions for f in fs}
    for a in tuned:  # training windows only: no test window is run until every choice is made
        for f in fs:
            study, rows = optimise(runner, f, a.space, args, progress, fixed=resolved[a.name],
                                   tag=("train", a.name, f.number), bar=bar)
            if any(r["objective"] is not None for r in rows):
                plan[a.name, f.number] = ({**resolved[a.name], **as_env(study.best_trial.params)},
                                          f"tuned on {f.train_start}..{f.train_end}", study.best_value)
            else:  # the declared settings rather than cash: a fold in cash would flatter or hurt the row
                plan[a.name, f.number] = (resolved[a.name], f"{none_counted(rows, args.min_trades)} in training: "
                                          "the declared settings", None)
    fold_of = {f.number: f for f in fs}
    jobs = [(("test", name, n), settings, fold_of[n].test_start, fold_of[n].test_end)
            for (name, n), (settings, _, _) in plan.items()]
    results: dict[tuple[str, int], dict] = {}
    for key, result in runner.run(jobs):  # one batch, so Ray keeps every CPU busy
        results[key[1], key[2]] = result
        bar.update()
    bar.close()
    return {"folds": fs, "tests": {a.name: [results[a.name, f.number] for f in fs] for a in additions},
            "fold_rows": [_fold_row(f, name, *plan[name, f.number], results[name, f.number])
                          for name in dict.fromkeys(n for n, _ in plan) for f in fs]}


def _fold_row(f: Fold, name: str, settings: dict[str, str], how: str, objective: float | None, r: dict) -> dict:
    shown = {k: f"{v.count(',') + 1} stocks" if k == "UNIVERSE" and len(v) > 40 else v for k, v in settings.items()}
    return {"addition": name, "fold": f.number, "train": f"{f.train_start}..{f.train_end}",
            "test": f"{f.test_start}..{f.test_end}", "how": how,
            "settings": ", ".join(f"{k}={v}" for k, v in shown.items()) or "(the defaults)", "is_objective": objective,
            "oos_return": r.get("total_return"), "oos_max_drawdown": r.get("max_drawdown"),
            "oos_trades": r.get("trades"), "error": r.get("error")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m research.additions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="csv:data/daily", help="csv:DIR or alpaca (daily bars)")
    ap.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first training day")
    ap.add_argument("--end", type=date.fromisoformat, default=CUTOFF, help=f"last test day, at most {CUTOFF}")
    add_walk_forward_arguments(ap, train_days=730, test_days=365, trials=8)
    ap.add_argument("--only", default=None, help="NAME,NAME: these declared additions only (see --list)")
    ap.add_argument("--addition", action="append", help=f"one more (repeat); {SYNTAX}; UNIVERSE=* is every stock")
    ap.add_argument("--list", action="store_true", help="list the declared additions and stop")
    add_run_arguments(ap, "additions")
    args = ap.parse_args(argv)
    if args.end > CUTOFF:
        print(f"error: --end {args.end} is after {CUTOFF}: bars after {CUTOFF} are kept for out-of-sample review "
              f"and are never used here; use --end {CUTOFF} or earlier", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(f"{a.name:<20}{a.describe()}" + (f"  ({a.note})" if a.note else "") for a in ADDITIONS))
        return 0
    try:
        additions = select(args.only, args.addition)
        folds(args.start, args.end, args.train_days, args.test_days, args.gap_days)  # fail before loading data
        if args.trials < 1:
            raise ValueError("--trials must be at least 1")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from utils import lumibot_env

    lumibot_env.prepare(backtesting=True)
    from backtest.runner import BacktestConfig, load_market
    from marketdata.csv_source import DataError
    from models.meta_model import load_confidence
    from models.model_warnings import overlap_warning
    from research.additions_report import write_report
    from trading.settings import Settings, SettingsError

    try:
        settings = base_settings(args)
        market, *_ = load_market(BacktestConfig(data=args.data, start=args.start, end=args.end, timeframe="day",
                                                progress=not args.no_progress), settings)
        if market.last_bar().date() > CUTOFF:
            raise DataError(f"{args.data} holds bars after {CUTOFF} (up to {market.last_bar().date()}); the "
                            f"additions table uses development data only: point --data at bars up to {CUTOFF}")
        base = settings.strategy_env()
        resolved = {a.name: switched_on(a, market, settings) for a in additions}
        fs = folds(args.start, args.end, args.train_days, args.test_days, args.gap_days)
        for a in additions:  # a setting the bot would refuse stops here, not in every trial
            try:
                s = Settings.load(environ=base, dotenv_path=None, overrides=resolved[a.name])
            except SettingsError as exc:
                raise ValueError(f"addition {a.name}: {'; '.join(exc.problems)}; fix its KEY=VAL") from None
            if a.model:  # its models are trained below, each before its fold's test window
                continue
            # one model file for every fold: trained on any test day, it would report in-sample as out of sample
            leak = overlap_warning(load_confidence(s), market.source, fs[0].test_start, fs[-1].test_end)
            if leak:
                raise ValueError(f"addition {a.name}: {leak}; give it a model trained before {fs[0].test_start}")
    except (ValueError, SettingsError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    fold_models = None
    if any(a.model for a in additions):
        from research.fold_models import train_fold_models

        stocks = switched_on(Addition("all", {"UNIVERSE": ALL_STOCKS}), market, settings)["UNIVERSE"].split(",")
        where = Path(args.out or settings.reports_dir) / f"fold-models-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            fold_models = train_fold_models(market, settings, fs, stocks, where)
        except ValueError as exc:  # TrainingError: too little data before a fold to train its model
            print(f"error: the model additions need a model per fold: {exc}", file=sys.stderr)
            return 2
    runner = make_runner(args, market, base)
    try:
        result = run_additions(runner, additions, resolved, args, progress=not args.no_progress,
                               fold_models=fold_models)
    finally:
        runner.close()
    out = write_report(result, additions, market, settings, args, time.perf_counter() - t0)
    print((out / "table.md").read_text())
    print(f"Additions folder: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
