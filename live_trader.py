"""Run a strategy: offline backtest (`--backtest`) or live on Alpaca (paper by default).

  python live_trader.py --strategy combined --backtest                      # built-in market, 2024
  python live_trader.py --strategy combined --backtest --data csv:DIR --start 2023-01-03 --end 2023-12-29
  python live_trader.py --strategy combined                                 # live: needs keys in .env
  python live_trader.py halt | resume | flatten                             # the running bot obeys next iteration
  python live_trader.py report [--journal PATH]                             # performance from the journal
  python live_trader.py --strategy combined --api                           # live, with the API and dashboard
  python live_trader.py serve [--journal PATH]                              # API and dashboard over a journal

Exit codes: 0 done, 2 bad input or configuration (the message says what to fix), 1 unexpected failure.
"""

import argparse
import sys
from datetime import UTC, date
from pathlib import Path

from strategies import STRATEGIES, strategy_name
from utils import lumibot_env

KNOWN_STRATEGIES = tuple(STRATEGIES)


class UsageError(Exception):
    """Bad command-line input; the message says how to fix it."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-01-02") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live_trader.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run",
                   choices=("run", "halt", "resume", "flatten", "report", "serve", "diff"),
                   help="run (default); halt, resume, flatten: tell the running bot; report: journal tables; "
                   "serve: the API and dashboard over a journal; diff: a live journal against its backtest replay")
    p.add_argument("--journal", type=Path, default=None, help="journal for halt/resume/flatten/report "
                   "(default JOURNAL_PATH)")
    p.add_argument("--strategy", default="combined", help=f"strategy name (known: {', '.join(KNOWN_STRATEGIES)})")
    p.add_argument("--backtest", action="store_true", help="run offline on historical or built-in data")
    p.add_argument("--data", default="builtin", help="builtin (simulated market), csv:DIR (one <SYMBOL>.csv each) "
                   "or alpaca (Alpaca's history, cached in BAR_CACHE_DIR; needs keys)")
    p.add_argument("--timeframe", choices=("hour", "day"), default="hour", help="--data alpaca: bar size")
    p.add_argument("--refresh", action="store_true", help="--data alpaca: fetch again what the cache holds")
    p.add_argument("--start", type=_date, help="first backtest day (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, help="last backtest day (YYYY-MM-DD)")
    p.add_argument("--budget", type=float, default=100_000.0, help="starting portfolio value in USD")
    p.add_argument("--book", choices=("legacy", "cash"), help="starting book: legacy (unprotected positions, "
                   "the default on built-in data) or cash (default on CSV data)")
    p.add_argument("--seed", type=int, default=None, help="seed of the built-in market")
    p.add_argument("--out", type=Path, default=None, help="folder for report folders (default REPORTS_DIR)")
    p.add_argument("--env-file", type=Path, default=Path(".env"), help="settings file (default .env)")
    p.add_argument("--profile", default=None, help="settings profile: conservative, balanced, aggressive, paper "
                   "(profiles/), or a path to a .env-style file such as a sweep's output; .env and the "
                   "environment still win (default: PROFILE in .env)")
    p.add_argument("--dry-run", action="store_true", help="live: decide, log and journal everything, send nothing")
    p.add_argument("--live", action="store_true", help="trade real money (also needs ALPACA_PAPER=false)")
    p.add_argument("--yes", action="store_true", help="with --live: skip the typed confirmation")
    p.add_argument("--verbose", action="store_true", help="print every decision line during a backtest")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--api", action="store_true", help="live: also serve the status and control API and the dashboard "
                   "on API_HOST:API_PORT (needs API_TOKEN in .env)")
    p.add_argument("--api-public", action="store_true", help="allow API_HOST to be an address other machines reach")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from marketdata.csv_source import DataError
    from models.meta_model import ModelError
    from trading.settings import SettingsError

    try:
        if args.strategy not in KNOWN_STRATEGIES:
            raise UsageError(f"unknown strategy {args.strategy!r}; known strategies: {', '.join(KNOWN_STRATEGIES)}")
        if args.command in ("halt", "resume", "flatten"):
            return control_command(args)
        if args.command == "report":
            return report_command(args)
        if args.command == "serve":
            return serve_command(args)
        if args.command == "diff":
            return diff_command(args)
        if args.backtest:
            return run_backtest_command(args)
        return run_live_command(args)
    except (SettingsError, DataError, ModelError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _settings(args):
    from trading.settings import Settings
    from trading.settings_cli import unknown_keys

    profile = getattr(args, "profile", None)
    settings = Settings.load(dotenv_path=args.env_file, overrides={"PROFILE": profile} if profile else None)
    for key in unknown_keys(args.env_file):
        print(f"warning: {args.env_file} sets {key}, which is not a setting (typo?); see .env.example",
              file=sys.stderr)
    if settings.profile:
        changed = settings.profile_changes()
        print(f"profile {settings.profile}: " + ("; ".join(changed) if changed else "the defaults, nothing changed"),
              flush=True)
    return settings


def run_backtest_command(args) -> int:
    import pandas as pd

    settings = _settings(args)
    if args.data not in ("builtin", "alpaca") and not args.data.startswith("csv:"):
        raise UsageError(f"--data {args.data!r}: use builtin, csv:DIR or alpaca")
    lumibot_env.prepare(backtesting=True)
    from backtest import runner
    from backtest.report import render_table, summarize, write_report
    from marketdata.builtin import DEFAULT_SEED
    from utils import logging_setup

    out_root = (args.out or Path(settings.reports_dir)).resolve()
    config = runner.BacktestConfig(strategy=args.strategy, data=args.data, start=args.start, end=args.end,
                                   budget=args.budget, book=args.book, out_root=out_root,
                                   seed=DEFAULT_SEED if args.seed is None else args.seed,
                                   progress=not args.no_progress, timeframe=args.timeframe, refresh=args.refresh)
    prep = runner.prepare(config, settings)  # bad data fails here, before any file is written
    where = "the built-in simulated market" if args.data == "builtin" else prep.market.source
    print(f"Backtesting {strategy_name(args.strategy)} offline on {where}, {prep.start.date()} .. "
          f"{(prep.end - pd.Timedelta(days=1)).date()} ({prep.market.timestep} bars; from here no network, no "
          "browser)", flush=True)
    for w in prep.warnings:
        print(f"warning: {w}", flush=True)
    out_dir = runner.new_out_dir(out_root, config.data, prep.start.date(), (prep.end - pd.Timedelta(days=1)).date())
    logging_setup.configure(settings.log_level, console=args.verbose, logfile=out_dir / "decisions.log",
                            buffered=True)
    try:
        run = runner.execute(prep, out_dir=out_dir)
        summary = summarize(run)
        table = render_table(summary)
        files = write_report(run, summary, table)
    finally:
        logging_setup.close()
    print()
    print(table)
    print(f"Report folder: {run.out_dir}")
    for f in files:
        print(f"  {f.name}")
    return 0


def _journal_path(args) -> Path:
    return args.journal or Path(_settings(args).journal_path)


def control_command(args) -> int:
    """Write the human's command into the journal; the bot applies it at its next iteration."""
    from datetime import datetime

    from trading.records.journal import Journal
    from trading.risk.kill_switch import RISK_OFF, risk_off, write_command

    path = _journal_path(args)  # with --journal, no settings file is read: a broken .env must not block a halt
    if not path.exists():  # a mistyped path would start a journal no bot reads
        raise UsageError(f"no journal at {path}: the bot has not run with it. Pass the journal the running bot "
                         "uses (--journal PATH, or JOURNAL_PATH in .env); a backtest's is in its report folder.")
    journal = Journal(path)
    if risk_off(journal):  # written, the command would do nothing
        raise UsageError(RISK_OFF + ".")
    effect = write_command(journal, args.command, datetime.now(UTC), source="cli")
    print(f"{args.command} written to {path}: at its next iteration the bot goes {effect}.")
    return 0


def report_command(args) -> int:
    from trading.records import performance
    from trading.records.journal import Journal

    path = _journal_path(args)
    if not path.exists():
        raise UsageError(f"no journal at {path}; pass --journal PATH (a backtest keeps its journal.sqlite in its "
                         "report folder)")
    print(performance.render(performance.tables(Journal(path))))
    return 0


def diff_command(args) -> int:
    """Replay a live or paper journal's period as a backtest and list what differs (backtest/diff.py)."""
    import time

    from trading.records.journal import Journal
    from trading.settings import Settings

    path = _journal_path(args)
    if not path.exists():
        raise UsageError(f"no journal at {path}; pass --journal PATH (the JOURNAL_PATH of a live or paper run)")
    lumibot_env.prepare(backtesting=True)
    from backtest.diff import render, replay_inputs, run_diff, write

    journal = Journal(path)
    run, *_ = replay_inputs(journal)
    # the run's own settings; keys and files from this machine's .env (--data alpaca reads with them)
    from trading.profiles import NOT_IN_PROFILE

    strategy = {k: v for k, v in run["settings"].items() if k not in NOT_IN_PROFILE}  # no paths, keys or profile
    settings = Settings.load(dotenv_path=args.env_file, overrides=strategy)
    data = "alpaca" if args.data == "builtin" else args.data
    out_root = (args.out or Path(settings.reports_dir)).resolve()
    result = run_diff(journal, settings, data, args.timeframe if args.timeframe != "hour" else None, out_root,
                      progress=not args.no_progress)
    folder = out_root / f"diff-{time.strftime('%Y%m%d-%H%M%S')}"
    write(result, folder)
    print(render(result))
    print(f"Diff folder: {folder} (the replay's own report: {result.out_dir})")
    return 0


def _api_checks(settings, public: bool) -> None:
    from ops.api.server import ApiStartError, check

    try:
        warnings = check(settings, public)
    except ApiStartError as exc:
        raise UsageError(str(exc)) from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def serve_command(args) -> int:
    settings = _settings(args)
    path = _journal_path(args)
    if not path.exists():
        raise UsageError(f"no journal at {path}; pass --journal PATH (the bot's JOURNAL_PATH, or a backtest's "
                         "journal.sqlite in its report folder)")
    _api_checks(settings, args.api_public)
    from ops.api.server import serve
    from utils import logging_setup

    logging_setup.configure(settings.log_level, console=True)
    try:
        return serve(settings, path)
    finally:
        logging_setup.close()


def run_live_command(args) -> int:
    settings = _settings(args)
    if args.api:
        _api_checks(settings, args.api_public)  # before anything connects: a bad API set-up starts nothing
    if not settings.has_alpaca_keys:
        raise UsageError(
            "no Alpaca keys. To trade the paper account, copy .env.example to .env and set ALPACA_API_KEY and "
            "ALPACA_API_SECRET (paper keys from https://app.alpaca.markets). To run offline instead: "
            "python live_trader.py --strategy combined --backtest")
    lumibot_env.prepare(backtesting=False)
    from broker.launcher import LaunchError, banner, connect, mask, money_gate, run
    from models.meta_model import ModelError, load_confidence
    from ops.alert_events import bot_not_started
    from ops.alerts import send_now
    from utils import logging_setup

    try:
        scorer = load_confidence(settings)  # an untrusted model file stops here, before any order
        gateway, account = connect(settings)
        print(banner(settings, account, args.dry_run), flush=True)
        money_gate(settings, args.live, args.yes, account)
    except (LaunchError, ModelError) as exc:
        # a bot restarted unattended (systemd, cron) that refuses to start is otherwise silent on the phone
        send_now(settings, bot_not_started(str(exc)))
        raise UsageError(str(exc)) from None
    logging_setup.configure(settings.log_level, console=True, logfile=Path("logs") / "trader.log")
    try:
        return run(settings, gateway, scorer, args.dry_run, strategy=args.strategy, api=args.api,
                   account_label=mask(account.account_number))
    finally:
        logging_setup.close()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends quietly, like any Unix tool
    sys.exit(main())
