"""The two alpaca-py clients (trading, market data), built once and shared by everything.

One client per API means one HTTP session per API, so connections are reused. alpaca-py re-sends
any request that gets 429 or 504, POSTs included: an order whose response was lost would be sent
again, so its retry is switched off here and reads are retried by the gateway instead (tenacity),
while a failed submit is looked up by client order id, never re-sent. alpaca-py also sets no
request timeout; one is added, so a hung connection cannot hang the bot.
"""

from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from trading.settings import Settings


def _with_timeout(client, seconds: float):
    session = client._session
    plain = session.request

    def request(method, url, **kwargs):
        kwargs.setdefault("timeout", seconds)
        return plain(method, url, **kwargs)

    session.request = request
    client._retry = 0  # never let the SDK re-send (see the module docstring)
    return client


def make_clients(settings: Settings) -> tuple[TradingClient, StockHistoricalDataClient]:
    key, secret = settings.alpaca_api_key.reveal(), settings.alpaca_api_secret.reveal()
    trading = TradingClient(key, secret, paper=settings.alpaca_paper, url_override=settings.alpaca_api_url or None)
    data = StockHistoricalDataClient(key, secret, url_override=settings.alpaca_data_url or None)
    return (_with_timeout(trading, settings.broker_timeout_seconds),
            _with_timeout(data, settings.broker_timeout_seconds))
