"""Show every position with its protection, now.

  python check_positions_now.py            # with keys in .env: the Alpaca account; without: the last offline run
  python check_positions_now.py --json     # the same, for scripts
  python check_positions_now.py --history  # performance tables from the journal

Exit codes: 0 all positions protected and none near its stop; 1 a position is unprotected, near its
stop or short (for cron and alerting); 2 bad input or configuration (the message says what to fix).
"""

import argparse
import json
import sys
from pathlib import Path

from utils import lumibot_env


def short_positions(rows: list[dict]) -> list[dict]:
    """Rows with a negative quantity. The bot only buys and protects longs, so a short (a stop or a
    sale that fired on shares already gone, or a manual trade) has nothing guarding it: its loss grows
    without limit while the price rises, so it always needs attention."""
    return [r for r in rows if (r.get("qty") or 0) < 0]


def short_lines(shorts: list[dict]) -> list[str]:
    """One line per short position saying that it is short and what to do about it."""
    return [f"SHORT {r['symbol']}: {r['qty']:g} sh. This bot only holds longs, so nothing protects a short and a "
            f"rising price loses without limit. Cover it: buy {-r['qty']:g} {r['symbol']} (cancel its open orders "
            "first), or close the position in the Alpaca dashboard." for r in shorts]


def flag_shorts(rows: list[dict], totals: dict) -> list[dict]:
    """Mark the shorts in the rows and totals (the JSON output carries them too); returns them."""
    shorts = short_positions(rows)
    for r in rows:
        r["short"] = (r.get("qty") or 0) < 0
    totals["short"] = [r["symbol"] for r in shorts]
    return shorts


def latest_report(reports_dir: Path) -> Path | None:
    runs = sorted((p for p in reports_dir.glob("*/final_state.json")), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="check_positions_now.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--history", action="store_true", help="print the journal's performance tables")
    ap.add_argument("--journal", type=Path, default=None, help="journal for --history (default JOURNAL_PATH, or "
                    "the last offline run's)")
    ap.add_argument("--env-file", type=Path, default=Path(".env"))
    args = ap.parse_args(argv)
    from trading.settings import Settings, SettingsError

    try:
        settings = Settings.load(dotenv_path=args.env_file)
    except SettingsError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    if args.history:
        return history(args, settings)
    if settings.has_alpaca_keys:
        return live(args, settings)
    return offline(args, settings)


def live(args, settings) -> int:
    lumibot_env.prepare(backtesting=False)
    import pandas as pd

    from broker.errors import BrokerUnavailable
    from broker.launcher import LaunchError, connect
    from broker.snapshot import build_live_snapshot
    from models.schedule import life_line
    from trading.records.positions_view import needs_attention, position_rows, render, to_json
    from trading.records.status import model_watch_line, read_status, streams_line

    try:
        gateway, account = connect(settings)
        snap = build_live_snapshot(gateway, settings, pd.Timestamp.now(tz="America/New_York"), pd.Timedelta(hours=1))
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokerUnavailable as exc:
        print(f"error: cannot reach Alpaca ({exc})", file=sys.stderr)
        return 2
    rows, totals = position_rows(snap, settings)
    shorts = flag_shorts(rows, totals)
    mode = "paper" if settings.alpaca_paper else "LIVE"
    source = f"Alpaca {mode} account ...{account.account_number[-4:]}"
    bot = read_status(settings.journal_path)
    if args.json:
        data = json.loads(to_json(rows, totals, source, simulated=False))
        print(json.dumps({**data, "bot": {"time": (bot or {}).get("time"), "streams": (bot or {}).get("streams")}},
                         indent=2))
    else:
        extra = [line for line in (life_line(settings), model_watch_line(bot)) if line]
        print("\n".join([render(rows, totals, source), *short_lines(shorts), streams_line(bot), *extra]))
    return 1 if needs_attention(totals) or shorts else 0


def offline(args, settings) -> int:
    from trading.records.positions_view import needs_attention, render

    folder = latest_report(Path(settings.reports_dir))
    if folder is None:
        print("error: no Alpaca keys and no offline run to show. Add keys to .env (see .env.example), or run a "
              "backtest first: python live_trader.py --strategy combined --backtest", file=sys.stderr)
        return 2
    state = json.loads((folder / "final_state.json").read_text())
    rows, totals = state["positions"], state["totals"]
    shorts = flag_shorts(rows, totals)
    note = (f"SIMULATED: no Alpaca keys, so this is the end state of the last offline backtest "
            f"({state['source']}; {folder}). Not a real account.")
    if args.json:
        print(json.dumps({**state, "note": note}, indent=2))
    else:
        fixed = [{k: (float("nan") if v is None and k in ("last",) else v) for k, v in r.items()} for r in rows]
        print("\n".join([render(fixed, totals, note), *short_lines(shorts)]))
    return 1 if needs_attention(totals) or shorts else 0


def history(args, settings) -> int:
    from trading.records import performance
    from trading.records.journal import Journal

    path = args.journal or Path(settings.journal_path)
    if not path.exists() and args.journal is None:
        folder = latest_report(Path(settings.reports_dir))
        path = folder / "journal.sqlite" if folder else path
        if path.exists():
            print(f"(no live journal at {settings.journal_path}: showing the last offline run, {path.parent})\n")
    if not path.exists():
        print(f"error: no journal at {path}; pass --journal PATH", file=sys.stderr)
        return 2
    print(performance.render(performance.tables(Journal(path))))
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends quietly, like any Unix tool
    sys.exit(main())
