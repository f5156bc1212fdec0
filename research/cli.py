"""What the walk-forward commands (research.sweep, research.additions) share on their command line: the folds,
the search, where trials run, the base settings and the output folder; and the runner those options choose."""

from __future__ import annotations

import argparse
from pathlib import Path

from trading.settings_cli import add_settings_arguments, settings_from_args

OBJECTIVES = ("ret_over_dd", "sharpe", "return")


def add_walk_forward_arguments(ap: argparse.ArgumentParser, *, train_days: int, test_days: int, trials: int) -> None:
    """The folds and the search within each training window."""
    ap.add_argument("--train-days", type=int, default=train_days)
    ap.add_argument("--test-days", type=int, default=test_days)
    ap.add_argument("--gap-days", type=int, default=5, help="days between a training and its test window")
    ap.add_argument("--trials", type=int, default=trials, help="trials per fold (a space searched per fold)")
    ap.add_argument("--objective", choices=OBJECTIVES, default="ret_over_dd")
    ap.add_argument("--min-trades", type=int, default=10, help="a trial with fewer closed trades does not count")


def add_run_arguments(ap: argparse.ArgumentParser, what: str) -> None:
    """Where the trials run, the base settings and the output; `what` names the output folder in the help."""
    ap.add_argument("--runner", choices=("ray", "serial"), default="ray")
    ap.add_argument("--address", default=None, help="join an existing Ray cluster (default: a local one)")
    ap.add_argument("--cpus", type=int, default=None, help="local Ray: CPUs to use (default: all)")
    ap.add_argument("--seed", type=int, default=7)
    add_settings_arguments(ap, profile_help=f"base settings profile the {what} starts from")
    ap.add_argument("--out", type=Path, default=None, help=f"folder for the {what} folder (default REPORTS_DIR)")
    ap.add_argument("--no-progress", action="store_true")


base_settings = settings_from_args  # the settings every trial starts from: .env and --profile


def make_runner(args, market, base_env: dict[str, str]):
    from research.trials import RayRunner, SerialRunner

    if args.runner == "ray":
        return RayRunner(market, base_env, args.address, args.cpus)
    return SerialRunner(market, base_env)
