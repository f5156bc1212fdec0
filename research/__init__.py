"""Research on real data: parameter sweeps with walk-forward validation (`python -m research.sweep`)."""
