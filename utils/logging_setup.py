"""Logging for the command-line tools: readable lines on the console, everything in a file."""

import logging
import sys
from logging.handlers import MemoryHandler
from pathlib import Path

TRADER = "trader"


class LevelPerLine(logging.Formatter):
    """`LEVEL   message` on every line of a record (the decision log writes an iteration's lines as one)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return "\n".join(f"{record.levelname:<7} {line}" for line in text.splitlines())


def configure(level: str = "INFO", console: bool = True, logfile: Path | None = None,
              buffered: bool = False) -> None:
    """Console lines at `level`, and every line in `logfile`. `buffered` (backtests) writes the file in
    blocks rather than line by line (warnings and errors go out at once; close() flushes the rest)."""
    root = logging.getLogger(TRADER)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.addHandler(logging.NullHandler())  # without any handler Python would print warnings to stderr
    levels = []
    if console:
        h = logging.StreamHandler(sys.stdout)
        h.setLevel(level)
        h.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(h)
        levels.append(h.level)
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        f = logging.FileHandler(logfile, encoding="utf-8")
        f.setLevel(logging.DEBUG)
        f.setFormatter(LevelPerLine())
        root.addHandler(MemoryHandler(2000, logging.WARNING, f) if buffered else f)
        levels.append(logging.DEBUG)
    # nothing below the lowest level any handler writes is even formatted (decision lines are built lazily)
    root.setLevel(min(levels) if levels else logging.CRITICAL)


def close() -> None:
    root = logging.getLogger(TRADER)
    for h in list(root.handlers):
        h.flush()
        if isinstance(h, (logging.FileHandler, MemoryHandler)):
            root.removeHandler(h)
            h.close()
            if isinstance(h, MemoryHandler) and h.target is not None:
                h.target.close()
