"""The one order path: intents carried out through a venue (Lumibot's backtester or Alpaca), sales
sized from the broker's position, protection restored after trouble."""
