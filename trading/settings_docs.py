"""The settings table rendered for people: .env.example and the README's configuration table, both generated
from SPECS so they cannot drift (tests/test_settings.py keeps the committed files in sync).

  python -m trading.settings > .env.example
  python -m trading.settings --readme
"""

from pathlib import Path

from trading.settings_specs import SPECS


def render_env_example() -> str:
    """The text of .env.example, generated from SPECS (a test keeps the committed file in sync)."""
    lines = [
        "# Copy to .env, fill in your Alpaca keys, and uncomment only what you change: every commented line shows the",
        "# default. A value set here wins over a profile (PROFILE, --profile), so leave the rest commented for a",
        "# profile to apply. Environment variables override this file. Generated from trading/settings.py",
        "# (python -m trading.settings).",
    ]
    group = None
    titles = {"strategy": "Strategy", "risk": "Risk controls, sizing and exit policy", "model": "Meta-model",
              "files": "Files and logging",
              "broker": "Alpaca account (secrets: .env only)",
              "costs": "Costs charged in backtests (fees and slippage)",
              "ops": "Alerts, status and control API, dashboard (tokens: .env only)"}
    for s in SPECS:
        if s.group != group:
            group = s.group
            lines += ["", f"# ---- {titles[group]}"]
        lines.append(f"# {s.doc} Allowed: {s.allowed}.")
        required = s.env in ("ALPACA_API_KEY", "ALPACA_API_SECRET")  # the two lines every user fills in
        lines.append(f"{s.env}={s.default}" if required else f"# {s.env}={s.default}")
    return "\n".join(lines) + "\n"


def render_markdown_table() -> str:
    rows = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    for s in SPECS:
        default = s.default if s.default else "(empty)"
        rows.append(f"| `{s.env}` | `{default}` | {s.allowed} | {s.doc} |")
    return "\n".join(rows) + "\n"


def update_readme(path: Path = Path("README.md")) -> None:
    """Rewrite the configuration table between the README's settings-table markers."""
    text = path.read_text()
    head, rest = text.split("<!-- settings-table:start -->\n", 1)
    _, tail = rest.split("<!-- settings-table:end -->", 1)
    path.write_text(f"{head}<!-- settings-table:start -->\n{render_markdown_table()}<!-- settings-table:end -->{tail}")
