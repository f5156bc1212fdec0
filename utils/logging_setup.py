"""Logging for the command-line tools: readable lines on the console, everything in a file."""

import logging
import sys
from pathlib import Path

TRADER = "trader"


def configure(level: str = "INFO", console: bool = True, logfile: Path | None = None) -> None:
    root = logging.getLogger(TRADER)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.addHandler(logging.NullHandler())  # without any handler Python would print warnings to stderr
    if console:
        h = logging.StreamHandler(sys.stdout)
        h.setLevel(level)
        h.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(h)
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        f = logging.FileHandler(logfile, encoding="utf-8")
        f.setLevel(logging.DEBUG)
        f.setFormatter(logging.Formatter("%(levelname)-7s %(message)s"))
        root.addHandler(f)


def close() -> None:
    root = logging.getLogger(TRADER)
    for h in list(root.handlers):
        h.flush()
        if isinstance(h, logging.FileHandler):
            root.removeHandler(h)
            h.close()
