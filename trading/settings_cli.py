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


def unknown_keys(dotenv_path: str | Path = ".env") -> list[str]:
    """Keys in a .env file that are not settings (usually typos), so start-up can warn about them."""
    from dotenv import dotenv_values

    from trading.settings import SPECS

    if not Path(dotenv_path).is_file():
        return []
    known = {s.env for s in SPECS}
    return sorted(k for k in dotenv_values(dotenv_path) if k not in known and not k.startswith("LUMIBOT_"))

