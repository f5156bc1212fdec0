"""Live trading on Alpaca: clients, reads with retries, snapshots, reconciliation, the launcher."""
