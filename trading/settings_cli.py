"""The settings options every command line shares (--env-file, --profile), and the one way they load."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_settings_arguments(ap: argparse.ArgumentParser,
                           profile_help: str = "settings profile (profiles/NAME.env or a path)") -> None:
    ap.add_argument("--env-file", type=Path, default=Path(".env"))
    ap.add_argument("--profile", default=None, help=profile_help)


def settings_from_args(args: argparse.Namespace):
    """.env (and --profile) validated once; SettingsError names what is wrong and how to fix it."""
    from trading.settings import Settings

    return Settings.load(dotenv_path=args.env_file, overrides={"PROFILE": args.profile} if args.profile else None)
