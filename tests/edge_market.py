"""A built-in market with an edge a model can learn: half the universe trends up hard, half down, so a dip in an
up-trending stock recovers and one in a down-trending stock keeps falling. The edge is in the prices (the
trend features see it), not planted in the labels: a model trained on the true labels learns it, one
trained on shuffled labels cannot. Used to judge champion against challenger honestly."""

import dataclasses
from datetime import date
from pathlib import Path

from marketdata import builtin
from marketdata.builtin import generate, inverse_map
from trading.settings import Settings

START, END = date(2022, 1, 3), date(2023, 6, 30)
SEED = 5


def edge_market(settings: Settings, start: date = START, end: date = END):
    saved = dict(builtin.PROFILES)
    try:
        for i, sym in enumerate(settings.universe):
            builtin.PROFILES[sym] = dataclasses.replace(saved[sym], drift=2.0 if i % 2 == 0 else -2.0)
        return generate(settings.all_symbols(), inverse_map(settings.inverse_etfs), start, end, seed=SEED,
                        nasdaq=settings.nasdaq_symbols)
    finally:
        builtin.PROFILES.clear()
        builtin.PROFILES.update(saved)


def write_csv(market, folder: Path) -> Path:
    """The market as a folder of <SYMBOL>.csv files (what RETRAIN_DATA=csv:DIR reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for sym, df in market.bars.items():
        df.rename_axis("datetime").to_csv(folder / f"{sym}.csv")
    return folder
