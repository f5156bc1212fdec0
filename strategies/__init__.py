"""Strategy registry: `--strategy NAME` looks the class up here. A new strategy is one line.

Classes are named as "module:Class" and imported on first use, so listing the names (the command line's
help and its error for an unknown name) does not import Lumibot.
"""

from importlib import import_module

STRATEGIES = {
    "combined": "strategies.combined_strategy:CombinedStrategy",
}


def strategy_class(name: str):
    """The Strategy subclass registered as `name` (KeyError for an unknown name)."""
    module, cls = STRATEGIES[name].split(":")
    return getattr(import_module(module), cls)


def strategy_name(name: str) -> str:
    """The class name of the strategy registered as `name`, without importing it (Lumibot's strategy name)."""
    return STRATEGIES[name].split(":")[1]
