"""Run exactly one iteration now and show what the bot decides, step by step.

  python test_iteration.py              # with keys: the Alpaca account, DRY RUN (nothing sent)
  python test_iteration.py --submit     # with keys: send the orders (paper by default)
  python test_iteration.py --offline    # no keys needed: the built-in market, a simulated portfolio
  python test_iteration.py --offline --at "2024-03-15 12:30"

Offline, the portfolio is like the design's example: ten positions, some without protection, one
near its stop, one oversized, about $1,450 in cash; the moment defaults to the first hour of the
built-in year when the bellwethers are broadly overbought. Nothing is sent anywhere. Exit code 0 when
the iteration ran, 2 on bad input.
"""

import argparse
import sys
from decimal import Decimal
from pathlib import Path

from utils import lumibot_env

RULE = "=" * 72
SECTIONS = (("POSITIONS CHECK", ("protect", "exits")), ("PORTFOLIO VALUE", ()),
            ("MARKET SENTIMENT AND HEDGE", ("hedge",)), ("POSITION SIZES", ("trim",)),
            ("NEW OPPORTUNITIES", ("entry",)), ("RISK", ("risk",)))
# the design's example book: weight of the portfolio, P&L since entry, protected with an OCO?
DESIGN_BOOK = (("AMD", 0.20, 0.30, True), ("AAPL", 0.088, 0.02, True), ("MSFT", 0.088, 0.01, True),
               ("GOOGL", 0.088, -0.01, True), ("NVDA", 0.088, 0.04, True), ("AMZN", 0.088, 0.00, True),
               ("TSLA", 0.088, -0.04, False), ("META", 0.088, 0.05, False), ("JPM", 0.088, -0.01, False),
               ("XOM", 0.088, 0.02, False))
DESIGN_VALUE, DESIGN_CASH = 99_620.0, 1_450.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="test_iteration.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--offline", action="store_true", help="the built-in market and a simulated portfolio")
    ap.add_argument("--submit", action="store_true", help="with keys: send the orders (default: dry run)")
    ap.add_argument("--at", default=None, help="offline: the moment, e.g. '2024-03-15 12:30' (New York time)")
    ap.add_argument("--env-file", type=Path, default=Path(".env"))
    args = ap.parse_args(argv)
    from trading.settings import Settings, SettingsError

    try:
        settings = Settings.load(dotenv_path=args.env_file)
        if args.offline or not settings.has_alpaca_keys:
            return offline(settings, args.at)
        return live(settings, submit=args.submit)
    except SettingsError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------------------------- offline
def overbought_moment(book, settings):
    """The first hour of the built-in year when breadth reaches BEARISH_THRESHOLD."""
    import pandas as pd

    times = book.index[book.index >= pd.Timestamp("2024-01-02", tz=book.index.tz)]
    for t in times[times.hour < 15]:  # hours Lumibot iterates on hourly data (15:30 is the session's "close")
        rows = book.as_of(t)
        rsi = rows.loc[[b for b in settings.bellwethers if b in rows.index], "rsi"]
        if len(rsi) and (rsi > settings.rsi_overbought).mean() >= settings.bearish_threshold:
            return t
    return book.index[-50]


def offline(settings, at: str | None) -> int:
    lumibot_env.prepare(backtesting=True)
    import pandas as pd
    from lumibot.backtesting import BacktestingBroker, PandasDataBacktesting
    from lumibot.entities import Asset, Data

    from marketdata.builtin import generate, inverse_map
    from strategies.combined_strategy import CombinedStrategy
    from strategies.lumibot_orders import to_lumibot
    from trading.indicators import IndicatorBook, market_frames
    from trading.orders import OcoOrder, protective_levels
    from trading.records.journal import Journal
    from utils import logging_setup

    logging_setup.configure(console=False)
    market = generate(settings.all_symbols(), inverse_map(settings.inverse_etfs), "2024-01-02", "2024-12-31",
                      nasdaq=settings.nasdaq_symbols)
    book = IndicatorBook(market_frames(market.bars, settings.rsi_period), market.bar_period)
    when = pd.Timestamp(at, tz="America/New_York") if at else overbought_moment(book, settings)
    quantities, cost = {}, {}
    for sym, weight, pnl, _ in DESIGN_BOOK:
        price = market.price_at(sym, when)
        quantities[sym] = max(int(weight * DESIGN_VALUE // price), 1)
        cost[sym] = round(price / (1 + pnl), 2)
    usd = Asset("USD", "forex")
    data = [Data(Asset(s, "stock"), df, timestep="hour", quote=usd) for s, df in market.bars.items()]
    ds = PandasDataBacktesting(datetime_start=(when - pd.Timedelta(days=3)).to_pydatetime(),
                               datetime_end=(when + pd.Timedelta(days=3)).to_pydatetime(), pandas_data=data,
                               show_progress_bar=False)
    broker = BacktestingBroker(ds)
    journal = Journal(":memory:")  # a dry iteration writes nothing
    params = {"settings": settings, "indicator_book": book, "bar_period": market.bar_period, "cost_basis": cost,
              "journal": journal}
    strat = CombinedStrategy(broker=broker, budget=DESIGN_CASH, benchmark_asset=None, risk_free_rate=0.0,
                             analyze_backtest=False, parameters=params,
                             starting_positions={Asset(s, "stock"): q for s, q in quantities.items()})
    broker.initialize_market_calendars(ds.get_trading_days_pandas())
    broker._update_datetime(when.to_pydatetime())
    broker.set_strategy_name(strat.name)
    strat.initialize()
    for sym, _, _, protected in DESIGN_BOOK:  # the protected part of the book already has its OCO resting
        if protected:
            stop, target = protective_levels(cost[sym], settings.stop_loss_pct, settings.take_profit_pct)
            price = Decimal(str(market.price_at(sym, when)))
            target = max(target, (price * Decimal("1.02")).quantize(Decimal("0.01")))
            oco = OcoOrder(sym, quantities[sym], target, stop, f"setup-{sym}")
            strat.submit_order(to_lumibot(strat, oco))
    strat.on_trading_iteration()
    header = (f"offline: built-in simulated market (not real prices) at {when:%Y-%m-%d %H:%M} New York; "
              "a simulated portfolio; nothing is sent anywhere")
    print_iteration(strat, header)
    return 0


# ---------------------------------------------------------------------------------------------- live
def live(settings, submit: bool) -> int:
    lumibot_env.prepare(backtesting=False)
    from broker.launcher import LaunchError, banner, build_strategy, connect
    from models.meta_model import ModelError, load_confidence
    from trading.records.journal import Journal
    from utils import logging_setup

    logging_setup.configure(console=False)
    try:
        scorer = load_confidence(settings)
        gateway, account = connect(settings)
    except (LaunchError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(banner(settings, account, dry_run=not submit))
    journal = None if submit else Journal(":memory:")  # a dry run leaves the real journal untouched
    strat = build_strategy(settings, gateway, scorer, dry_run=not submit, journal=journal)
    strat.initialize()
    strat.on_trading_iteration()
    mode = "paper" if settings.alpaca_paper else "LIVE"
    header = (f"Alpaca {mode} account; " + ("orders SENT" if submit else "DRY RUN: nothing sent (--submit sends)"))
    print_iteration(strat, header)
    return 0


# ---------------------------------------------------------------------------------------------- output
def print_iteration(strat, header: str) -> None:
    from trading.records.decision_log import NOTE_ACTIONS

    rows = strat.decision_log.records
    snap = strat._last_snapshot
    print(RULE)
    print("RUNNING TRADING ITERATION NOW")
    print(header)
    print(RULE)
    for title, steps in SECTIONS:
        print(f"\n{title}")
        if title == "PORTFOLIO VALUE":
            if snap is None:
                print("  (no snapshot: the market is closed or the broker did not answer)")
                continue
            held = len(snap.holdings)
            print(f"  Portfolio value: ${snap.portfolio_value:,.2f} | cash ${snap.cash:,.2f} | {held} positions | "
                  f"risk controller: {strat.risk.describe()}")
            continue
        lines = [r for r in rows if r["step"] in steps and r["action"] not in NOTE_ACTIONS]
        for r in lines:
            mark = "!" if r["level"] == "warning" else " "
            who = f"{r['symbol']:<5} " if r["symbol"] else ""
            print(f" {mark} {who}{r['action']}: {r['reason']}")
        if not lines:
            print("   nothing to report")
    notes = [r for r in rows if r["action"] in NOTE_ACTIONS]
    orders = strat.journal.frame("orders")
    print("\nSUMMARY")
    for n in notes:
        print(f"   {n['reason']}")
    if len(orders):
        for o in orders.itertuples():
            if str(o.client_order_id).startswith("setup-"):
                continue
            price = f" limit {o.limit_price}" if o.limit_price == o.limit_price and o.limit_price else ""
            print(f"   {o.intent:<9} {o.side:<4} {o.qty:g} {o.symbol} ({o.order_class}{price}) -> {o.status}")
    else:
        print("   no orders")
    print(RULE)
    print("ITERATION COMPLETE")
    print(RULE)


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends quietly, like any Unix tool
    sys.exit(main())
