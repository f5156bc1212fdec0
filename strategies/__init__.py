"""Strategy registry: `--strategy NAME` looks the class up here. A new strategy is one line."""

from strategies.combined_strategy import CombinedStrategy

STRATEGIES = {
    "combined": CombinedStrategy,
}
