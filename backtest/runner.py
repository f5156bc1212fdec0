"""Run CombinedStrategy through Lumibot's backtester on a `Market`, offline, into one report folder.

Offline by construction: no benchmark download (we compute SPY buy-and-hold from the same data),
risk-free rate 0, no browser, and Lumibot's own `./logs` droppings land inside the report folder
because the run happens with that folder as the working directory.
"""

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from backtest.costs import BacktestCosts
from backtest.scenario import StartingBook, starting_book
from marketdata.builtin import DEFAULT_SEED, generate, inverse_map
from marketdata.csv_source import DataError, load_csv_dir
from marketdata.market import Market
from models.features import FeatureParams
from models.meta_model import MetaModel, load_confidence
from models.model_warnings import overlap_warning, threshold_warning
from trading.indicators import IndicatorBook, market_frames
from trading.records.journal import Journal
from trading.settings import Settings

logger = logging.getLogger("trader.backtest")

DEFAULT_START, DEFAULT_END = date(2024, 1, 2), date(2024, 12, 31)
NY = "America/New_York"
# --data alpaca fetches this much before --start, so the 200-bar trend line and RSI exist on the first day traded
WARM_UP_DAYS = {"hour": 70, "day": 450}


@dataclass(frozen=True)
class BacktestConfig:
    strategy: str = "combined"  # a name in strategies.STRATEGIES
    data: str = "builtin"  # "builtin" or "csv:DIR"
    start: date | None = None
    end: date | None = None
    budget: float = 100_000.0
    book: str | None = None  # "legacy" or "cash"; default legacy on built-in data, cash on CSV
    seed: int = DEFAULT_SEED
    out_root: Path = Path("reports")
    progress: bool = True
    timeframe: str = "hour"  # --data alpaca: "hour" or "day"
    refresh: bool = False  # --data alpaca: fetch again what the cache holds


@dataclass
class BacktestRun:
    config: BacktestConfig
    settings: Settings
    market: Market
    start: pd.Timestamp
    end: pd.Timestamp
    book: StartingBook
    strategy: object  # the CombinedStrategy instance after the run
    lumibot_results: dict
    out_dir: Path
    warnings: list[str]
    wall_seconds: float
    costs: BacktestCosts


def load_market(config: BacktestConfig, settings: Settings,
                default_window: tuple[date, date] = (DEFAULT_START, DEFAULT_END)) -> tuple[Market, date, date]:
    """The market for `config.data` and the window to use (the built-in market is generated for it).
    A new data source (e.g. Alpaca history) is one more branch here."""
    if config.data == "builtin":
        start, end = config.start or default_window[0], config.end or default_window[1]
        if end <= start:
            raise DataError(f"--end {end} must be after --start {start}.")
        market = generate(settings.all_symbols(), inverse_map(settings.inverse_etfs), start, end,
                          seed=config.seed, nasdaq=settings.nasdaq_symbols)
        return market, start, end
    if config.data.startswith("csv:"):
        market = load_csv_dir(config.data[4:])
        first, last = market.first_bar().date(), market.last_bar().date()
        # default window: everything after a warm-up of ~20% of the data (at most 80 sessions)
        sessions = sorted({t.date() for df in market.bars.values() for t in df.index})
        warm = sessions[min(max(len(sessions) // 5, 1), 80, len(sessions) - 1)]
        start, end = config.start or warm, config.end or last
        if end <= start:
            raise DataError(f"the backtest window {start} .. {end} is empty; the CSV data covers {first} .. {last}.")
        if start > last or end < first:
            raise DataError(f"--start/--end {start} .. {end} lie outside the CSV data ({first} .. {last}).")
        return market, max(start, first), min(end, last)
    if config.data == "alpaca":
        return _alpaca_market(config, settings, default_window)
    raise DataError(f"--data {config.data!r} is not known; use builtin, csv:DIR or alpaca.")


def _alpaca_market(config: BacktestConfig, settings: Settings,
                   default_window: tuple[date, date]) -> tuple[Market, date, date]:
    """Alpaca's history for every symbol the settings name, through the bar cache (marketdata/alpaca_history.py).
    Without --start/--end: the length of the default window, ending yesterday."""
    from broker.clients import make_clients
    from broker.gateway import AlpacaGateway
    from marketdata.alpaca_history import HistoryRequest, last_complete_day, load_history, no_keys_error
    from marketdata.bar_cache import BarCache

    if not settings.alpaca_api_key.reveal() or not settings.alpaca_api_secret.reveal():
        raise no_keys_error()
    end = config.end or last_complete_day()  # New York's yesterday, whatever this machine's zone
    start = config.start or end - (default_window[1] - default_window[0])
    warm_up = WARM_UP_DAYS.get(config.timeframe, 0)  # indicator history before the first day traded
    req = HistoryRequest(settings.all_symbols(), config.timeframe, start - timedelta(days=warm_up), end,
                         settings.alpaca_data_feed, settings.bar_adjustment)
    trading, data = make_clients(settings)
    market = load_history(AlpacaGateway(trading, data, settings.alpaca_data_feed), req,
                          BarCache(Path(settings.bar_cache_dir)), refresh=config.refresh, progress=config.progress)
    return market, start, end


def adapt_to_data(settings: Settings, market: Market) -> tuple[Settings, list[str]]:
    """Narrow the settings to the symbols that have data, and say which steps that disables."""
    have = set(market.bars)
    warnings = list(market.warnings)
    changes: dict = {}
    universe = tuple(s for s in settings.universe if s in have)
    if not universe:
        raise DataError(f"none of the UNIVERSE symbols ({', '.join(settings.universe)}) has data; add "
                        "<SYMBOL>.csv files or set UNIVERSE to symbols you have.")
    if len(universe) < len(settings.universe):
        missing = [s for s in settings.universe if s not in have]
        warnings.append(f"no data for universe symbol(s) {', '.join(missing)}: step 4 will not enter them")
        changes["universe"] = universe
    bells = tuple(s for s in settings.bellwethers if s in have)
    if len(bells) < len(settings.bellwethers):
        missing = [s for s in settings.bellwethers if s not in have]
        if bells:
            warnings.append(f"no data for bellwether(s) {', '.join(missing)}: step 3 measures breadth over "
                            f"{', '.join(bells)} only")
            changes["bellwethers"] = bells
        else:
            warnings.append("no data for any bellwether: step 3 (hedging) is disabled")
            changes["max_inverse_allocation"] = 0.0
    general = settings.inverse_etfs["general"]
    if settings.max_inverse_allocation > 0 and general not in have:
        warnings.append(f"no data for the general inverse ETF {general}: step 3 (hedging) is disabled")
        changes["max_inverse_allocation"] = 0.0
    leveraged = [settings.inverse_etfs[r] for r in ("sp500", "tech") if settings.inverse_etfs[r] not in have]
    if leveraged and settings.enable_leveraged_hedge and changes.get("max_inverse_allocation", 1) > 0:
        warnings.append(f"no data for leveraged inverse ETF(s) {', '.join(leveraged)}: step 3 hedges with "
                        f"{general} only")
        changes["enable_leveraged_hedge"] = False
    if "SPY" not in have:
        warnings.append("no data for SPY: the buy-and-hold benchmark column is left out")
    return dataclasses.replace(settings, **changes), warnings


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@dataclass(frozen=True)
class PreparedBacktest:
    """Everything validated and loaded, nothing written yet: bad input fails here, before any file exists."""

    config: BacktestConfig
    settings: Settings
    market: Market
    start: pd.Timestamp
    end: pd.Timestamp
    sleeptime: str
    book: StartingBook
    warnings: tuple[str, ...]
    scorer: object  # the ConfidenceModel: the meta-model when MODEL_PATH holds one, else the rule


def prepare(config: BacktestConfig, settings: Settings, market: Market | None = None) -> PreparedBacktest:
    """`market`: already loaded (a sweep's trials share one); the window is then config.start .. config.end."""
    if market is None:
        market, start_d, end_d = load_market(config, settings)
    else:
        start_d, end_d = config.start or market.first_bar().date(), config.end or market.last_bar().date()
    settings, warnings = adapt_to_data(settings, market)
    daily = market.timestep == "day"
    sleeptime = "1D" if daily else settings.sleeptime
    if daily and settings.sleeptime != "1D":
        warnings.append(f"daily bars: the strategy iterates once a day (SLEEPTIME {settings.sleeptime} ignored)")
    start = pd.Timestamp(start_d, tz=NY)
    end = pd.Timestamp(end_d, tz=NY) + pd.Timedelta(days=1)
    if config.budget <= 0:
        raise DataError(f"--budget {config.budget:g} must be a positive amount of USD.")
    book_kind = config.book or ("legacy" if config.data == "builtin" else "cash")
    book = starting_book(book_kind, market, start, config.budget)
    scorer = load_confidence(settings)  # an untrustworthy model file stops here, before anything runs
    for note in (overlap_warning(scorer, market.source, start_d, end_d),
                 threshold_warning(scorer)):
        if note:
            warnings.append(note)
    return PreparedBacktest(config, settings, market, start, end, sleeptime, book, tuple(warnings), scorer)


def run_backtest(config: BacktestConfig, settings: Settings, out_dir: Path | None = None) -> BacktestRun:
    return execute(prepare(config, settings), out_dir)


def execute(prep: PreparedBacktest, out_dir: Path | None = None) -> BacktestRun:
    from lumibot.backtesting import PandasDataBacktesting
    from lumibot.entities import Asset, Data

    from strategies import strategy_class, strategy_name
    from utils.lumibot_env import quiet_known_noise

    quiet_known_noise()
    t0 = time.perf_counter()
    config, settings, market, book = prep.config, prep.settings, prep.market, prep.book
    start, end, sleeptime = prep.start, prep.end, prep.sleeptime
    features = FeatureParams.from_settings(settings) if isinstance(prep.scorer, MetaModel) else None
    frames = market_frames(market.bars, settings.rsi_period, features)
    indicator_book = IndicatorBook(frames, market.bar_period)
    costs = BacktestCosts.from_settings(settings, frames)
    buy_fees, sell_fees = costs.trading_fees()

    usd = Asset("USD", "forex")
    pandas_data = [Data(Asset(sym, "stock"), df, timestep=market.timestep, quote=usd)
                   for sym, df in market.bars.items()]
    out_dir = out_dir or new_out_dir(config.out_root, config.data, start.date(), (end - pd.Timedelta(days=1)).date())
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"settings": settings, "indicator_book": indicator_book, "bar_period": market.bar_period,
                  "sleeptime": sleeptime, "cost_basis": book.cost_basis, "scorer": prep.scorer, "costs": costs,
                  # the run's journal works in memory and is written to the report folder when the run ends
                  "journal": Journal(out_dir / "journal.sqlite", in_memory_until_saved=True)}
    try:
        with _working_dir(out_dir):
            cls = strategy_class(config.strategy)
            results, strategy = cls.run_backtest(
                PandasDataBacktesting, start.to_pydatetime().replace(tzinfo=None),
                end.to_pydatetime().replace(tzinfo=None), pandas_data=pandas_data,
                name=strategy_name(config.strategy), budget=book.cash,
                starting_positions={Asset(s, "stock"): q for s, q in book.quantities.items()} or None,
                benchmark_asset=None, risk_free_rate=0.0, analyze_backtest=False, save_stats_file=False,
                show_plot=False, show_tearsheet=False, save_tearsheet=False, show_indicators=False,
                show_progress_bar=config.progress, quiet_logs=True, parameters=parameters,
                buy_trading_fees=buy_fees, sell_trading_fees=sell_fees,
            )
    finally:
        parameters["journal"].save()  # also after a failed run: what it decided until then
    return BacktestRun(config, settings, market, start, end, book, strategy, results or {}, out_dir,
                       list(prep.warnings), time.perf_counter() - t0, costs)


def new_out_dir(root: Path, data: str, start: date, end: date) -> Path:
    label = data if data in ("builtin", "alpaca") else Path(data[4:]).name or "csv"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{label}-{start:%Y%m%d}-{end:%Y%m%d}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path.resolve()
