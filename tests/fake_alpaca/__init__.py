"""A local fake of Alpaca's Trading API v2 and stock Market Data API v2 for offline tests.

    from tests.fake_alpaca import FakeAlpaca
    with FakeAlpaca({"AAPL": hourly_df}) as srv:           # bars: tz-aware index = bar START, OHLCV columns
        client = TradingClient("PKFAKE", "fake-secret", paper=True, url_override=srv.url)
        client._retry = 0                                  # no 3-second retries on 429/504 in tests
        srv.set_now(...) / srv.advance(timedelta(hours=1)) # the matching engine runs every bar in between

FakeAlpaca(bars, *, key="PKFAKE", secret="fake-secret", cash=100_000.0, now=None, bar_size=None,
           rate_limit=200, data_rate_limit=200)
  now: default the START of the last scripted bar (earlier bars are history; advancing one bar length plays the
       last one). bar_size: default the smallest gap between two bar starts; a bar that starts inside a regular
       session ends at the latest at the session close (the 15:30 hourly bar ends at 16:00).
  start() -> self / stop() / with-statement; url ("http://127.0.0.1:<port>")
  now; set_now(t) (naive = New York); advance(delta)      moving back processes nothing
  price(symbol) -> float   close of the last bar that has ended, else the open of the current bar
  market_is_open           None = NYSE calendar (pandas_market_calendars); True/False forces it
  requests                 [{method, path, query, body, status, time (simulated), wall (epoch s)}]
  rejections               [{method, path, query, body, status, response}] for 4xx on /v2/orders*, /v2/positions*
  connections_accepted; errors (tracebacks behind any 500 the fake produced by a bug)
  orders -> {id: order JSON}; positions() -> {symbol: position JSON}; account() -> account JSON
  count(path_prefix, method=None); clear_log(); add_position(symbol, qty, avg_entry_price) (cash untouched)
  set_asset(symbol, **flags); settings (engine.Settings: shorting_enabled, wash_trade_counts_complex_legs, ...)
  faults.add(kind, *, method=None, path=None, times=1, **params) -> Fault; faults.remove(f); faults.clear()
  marketdata.max_page_size (smaller pages force next_page_token paging); marketdata.enforce_sip_delay
  step (Trading API requests so far); settle() (resolve every pending fill/cancel/replace now)
Websockets (stream_api.py, streams.py, stream_events.py; started by the first use of stream_url):
  stream_url ("ws://127.0.0.1:<port>": /stream trade_updates, /v2/iex or /v2/sip market data); push_trade(symbol,
  price, size=100) (a trade now: the mark until the clock moves, fills/stops, REST latest trade, subscribers)
  stream_connections() / stream_connects() -> {"trading": n, "data": n} (open now / since start);
  data_subscriptions(channel="trades") -> set; drop_streams() (abort every socket); trade_updates_sent (messages)
  settings.stream_pending_events, refuse_stream_auth, stream_symbol_limit (30), stream_auth_timeout (10 s)
Timing is that of a real paper account: a POSTed order is `new`/`accepted` and first fills one step later (a step
is one Trading API request; Settings.fill_delay_steps), in slices of at most Settings.max_volume_fraction of the bar's
volume per step; DELETE answers 204 and the order is `pending_cancel` for Settings.cancel_delay_steps steps; PATCH
answers the `pending_new` replacement while the old order is `pending_replace` for as long. A clock advance settles
everything pending first. Tests that need gentler timing say so: `srv.settings.fill_delay_steps = 0` etc.
Modules: fake (this object), server (HTTP, auth, rate limits, faults), engine (account, orders), accounting (what
orders hold, what the account is worth), amend (DELETE/PATCH), pending (work resolved on later steps), matching
(fills on the clock), rules + parsing + rulebase + position_rules + replace_rules (Alpaca's order rules), orders
(order JSON), views (account/position/clock JSON), marketdata + series (bars), sessions (NYSE calendar), faults,
settings, values (number/time parsing and formatting), stream_api + streams + stream_events (websockets).
"""

from .engine import Settings
from .fake import FakeAlpaca
from .faults import Fault, Faults

__all__ = ["FakeAlpaca", "Fault", "Faults", "Settings"]
