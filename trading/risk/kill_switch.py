"""The human's controls: a kill-switch file, and the halt / resume / flatten commands.

`python live_trader.py halt|resume|flatten` writes the command into the journal; the running bot
applies it at its next iteration (and a stopped bot at its next start). While the kill-switch file
exists the bot is HALTED. Only `resume` lifts a human halt: never the clock, and not removing the
file alone.
"""

from pathlib import Path

from trading.risk.verdict import Hold, Mode

COMMANDS = ("halt", "resume", "flatten")


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
