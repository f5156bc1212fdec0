"""The human's controls: a kill-switch file, and the halt / resume / flatten commands.

`python live_trader.py halt|resume|flatten` writes the command into the journal; the running bot
applies it at its next iteration (and a stopped bot at its next start). While the kill-switch file
exists the bot is HALTED. Only `resume` lifts a human halt: never the clock, and not removing the
file alone.
"""

from datetime import datetime
from pathlib import Path

from trading.risk.verdict import Hold, Mode

COMMANDS = ("halt", "resume", "flatten")
COMMAND_KEY = "command"
EFFECTS = {"halt": "HALTED: protective orders only, open entry orders cancelled; protective legs stay",
           "resume": "ACTIVE again (a kill-switch file, if present, halts it again)",
           "flatten": "every order cancelled and every position closed at market, then HALTED"}


RISK_OFF = ("RISK_ENABLED=false: the bot ignores halt, resume and flatten. Set RISK_ENABLED=true and restart it, "
            "or stop the bot (Ctrl-C/SIGTERM keeps every position protected)")


def risk_off(journal) -> bool:
    """The bot writing this journal runs without its risk controller (where the commands live): its own last
    status says so, whatever the settings file of whoever asks."""
    status = journal.get_state("status") or {}
    return "RISK_ENABLED=false" in str((status.get("risk") or {}).get("why", ""))


def write_command(journal, command: str, now: datetime, source: str = "cli") -> str:
    """Write a human's command for the bot (the CLI and the API both come here) and journal who asked.
    The bot applies the latest one at its next iteration; a stopped bot at its next start. Returns the effect."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    with journal.batch():
        journal.set_state(COMMAND_KEY, {"command": command, "id": now.isoformat(), "time": now.isoformat(),
                                        "source": source}, now)
        journal.record_control(now, source, command, "", f"ok: at its next iteration the bot goes {EFFECTS[command]}")
    return EFFECTS[command]


def kill_switch_file(path: str) -> Hold | None:
    if path and Path(path).exists():
        return Hold(Mode.HALTED, "kill_switch", f"kill-switch file {path} exists", None)
    return None


def command_hold(command: str) -> Hold | None:
    if command == "halt":
        return Hold(Mode.HALTED, "manual", "halted by the halt command", None)
    if command == "flatten":
        return Hold(Mode.HALTED, "manual", "flattened and halted by the flatten command", None)
    return None
