"""What the bot remembers: the SQLite journal, the ledger of open and closed trades, the decision log,
the performance tables and the positions view built from them."""
