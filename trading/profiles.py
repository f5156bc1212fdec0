"""Settings profiles: a named set of strategy and risk settings in `profiles/<NAME>.env` (or any .env-style
file), chosen with `--profile NAME` or `PROFILE=NAME` in `.env`.

Precedence, lowest first: the defaults, the profile, `.env`, the environment, the command line. So a profile
moves the defaults and any single variable the user sets still wins. A profile holds what a strategy is (stops,
sizing, gates, universe, costs); keys, URLs, tokens and file locations belong to the machine and stay in `.env`:
a profile naming one is refused, as is a name that is not a setting. Parameter sweeps (research/sweep.py)
write their chosen settings as a profile.
"""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values

from trading.settings_specs import MACHINE_GROUPS, SPECS

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"
# what a profile may not set: the account, the machine and the profile itself
NOT_IN_PROFILE = {s.env for s in SPECS if s.group in MACHINE_GROUPS} | {"PROFILE"}
KNOWN = {s.env for s in SPECS}


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.env"))


def resolve(name: str) -> Path:
    """A profile name (profiles/<name>.env) or a path to a .env-style file."""
    text = name.strip()
    candidates = [Path(text).expanduser()] if text.endswith(".env") or "/" in text else []
    candidates.append(PROFILES_DIR / f"{text}.env")
    for path in candidates:
        if path.is_file():
            return path
    raise ProfileError(f"PROFILE={text}: no such profile; use one of {', '.join(available()) or '(none)'} "
                       f"(files in {PROFILES_DIR}) or a path to a .env-style file.")


def read(name: str) -> dict[str, str]:
    """The profile's settings, by variable name. Raises ProfileError naming every bad line."""
    path = resolve(name)
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    problems = [f"{path.name}: {k} is not a setting (see .env.example for the names)" for k in values
                if k not in KNOWN]
    problems += [f"{path.name}: {k} belongs in .env, not in a profile (profiles hold strategy and risk settings)"
                 for k in values if k in NOT_IN_PROFILE]
    if problems:
        raise ProfileError("; ".join(problems))
    return values


def changes(profile_values: dict[str, str], settings) -> list[str]:
    """`NAME: default -> value` for each setting the profile changes from the defaults, with a note where a
    variable in .env or the environment overrides the profile."""
    by_env = {s.env: s for s in SPECS}
    out = []
    for key, value in profile_values.items():
        spec = by_env[key]
        line = f"{key}: {spec.default} -> {value}"
        effective = getattr(settings, spec.attr)
        if spec.parse(value) != effective:
            line += f" (overridden by .env or the environment: {effective})"
        out.append(line)
    return out


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file, the line and the fix."""
