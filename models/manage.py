"""The model's life from the command line: scheduled retraining, the versions kept, and rollback.

  python -m models.train --schedule [--once] [--at ISO] [--force]
  python -m models.train history
  python -m models.train rollback
"""

import argparse
import sys
from datetime import datetime

from trading.settings_cli import add_settings_arguments, settings_from_args

COMMANDS = ("history", "rollback")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", nargs="?", choices=COMMANDS)
    ap.add_argument("--schedule", action="store_true", help="retrain after each close when RETRAIN_EVERY is due")
    ap.add_argument("--once", action="store_true", help="--schedule: one check now, then exit")
    ap.add_argument("--force", action="store_true", help="--schedule --once: retrain even when not due (never "
                                                         "during market hours)")
    ap.add_argument("--at", type=datetime.fromisoformat, default=None,
                    help="--schedule --once: the time to judge by, ISO (naive: UTC; default now; the bot passes its "
                         "clock)")
    add_settings_arguments(ap)
    args = ap.parse_args(argv)

    from models.registry import ModelStore, RegistryError
    from models.schedule import loop, run_once
    from trading.settings import SettingsError

    try:
        settings = settings_from_args(args)
        store = ModelStore(settings.model_path, settings.models_kept)
        if args.command == "history":
            print(render_history(store))
            return 0
        if args.command == "rollback":
            old, new = store.rollback()
            print(f"Rolled back: the champion was {old}, it is {new} again (the bot picks it up at its next "
                  "iteration).")
            return 0
        if args.once:
            outcome = run_once(settings, args.at, args.force)
            print(outcome.line(), file=sys.stderr if outcome.outcome == "failed" else sys.stdout)
            return 2 if outcome.outcome == "failed" else 0
        if settings.retrain_every is None:
            raise SettingsError("RETRAIN_EVERY is empty: set it (e.g. RETRAIN_EVERY=1D) to retrain on a schedule")
        loop(settings)
    except (SettingsError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def render_history(store) -> str:
    rows = store.history()
    if not rows:
        return f"No model versions in {store.versions} yet (python -m models.train makes one)."
    champion = (store.champion() or {}).get("version")
    lines = [f"{'':2}{'version':<20} {'trained on':<24} verdict"]
    for r in rows:
        w = r["window"] or {}
        v = r["verdict"]
        mark = "* " if r["version"] == champion else "  "
        lines.append(f"{mark}{r['version']:<20} {w.get('start', '?')}..{w.get('end', '?'):<12} "
                     f"{v.get('verdict') or 'installed'}: {v.get('why') or v.get('promotion', '')}")
    lines.append("* the champion (the bot loads it); python -m models.train rollback returns to the one before.")
    return "\n".join(lines)
