"""A meta-model per walk-forward fold, trained only on what came before that fold's test window.

For the additions that need a model (the expected-R gate, model stops), each fold gets its own: trained
(models/train.py fit_model) on every stock of the data from MODEL_TRAIN_START to the fold's training end, so
its labels read no bar of the test window (the training set stops at its end date, labels included). Stocks
are pooled: the features say nothing about which stock they come from, and the default universe alone has too
few daily candidates to validate a model on. The test window's backtest then loads it through MODEL_PATH.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from research.walkforward import Fold

MODEL_TRAIN_START = date(2004, 1, 2)  # four years of warm-up in data/daily (2000-) for the 200-bar features


def train_fold_models(market, settings, fold_list: list[Fold], stocks: list[str], out: Path,
                      say=print) -> dict[int, Path]:
    """{fold number: model path}, one model per fold; `stocks` is the pooled training universe."""
    from models.train import fit_model

    pooled = settings.with_changes({"UNIVERSE": ",".join(stocks)})
    paths = {}
    for f in fold_list:
        folder = out / f"model-fold{f.number}"
        path, card = fit_model(pooled, market, MODEL_TRAIN_START, f.train_end, folder, progress=False,
                               say=lambda _: None)
        gate = card["gate"]["min_expected_r"]
        say(f"fold {f.number}: model trained on {MODEL_TRAIN_START}..{f.train_end} ({card['data']['candidates']} "
            f"candidates, walk-forward AUC {card['metrics']['overall']['auc']:.3f}, proposed MIN_EXPECTED_R "
            f"{'none' if gate is None else f'{gate:+.3f}'})")
        paths[f.number] = path
    return paths
