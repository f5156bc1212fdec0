"""engine.Settings: the switches of the fake account (rules, account flags, timing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    """Switches for rules the reference marks as unverified or configurable, and for timing.

    The defaults are those of a real paper account (margin, shorting, asynchronous fills and cancels); a test
    that needs something gentler turns it on by name, e.g. `srv.settings.fill_delay_steps = 0`.
    Timing is counted in server steps (one step = one Trading API request; see pending.py).
    """
    shorting_enabled: bool = True          # a paper account above $2,000 is a margin account that may short
    allow_extended_gtc: bool = False
    wash_trade_counts_complex_legs: bool = False
    short_reject_status: int = 422
    trading_blocked: bool = False
    account_blocked: bool = False
    trade_suspended_by_user: bool = False
    transfers_blocked: bool = False
    multiplier: int | None = None          # None: 2 at equity >= $2,000, else 1
    legacy_pdt_fields: bool = False        # pattern_day_trader/daytrade_count/daytrading_buying_power (pre-2026-07)
    clamp_order_limit: bool = True         # GET /v2/orders limit > 500: clamp (True) or 422 (False)
    fill_delay_steps: int = 1              # a new order is first matched this many steps after it was accepted
    cancel_delay_steps: int = 2            # pending_cancel / pending_replace resolve this many steps later
    max_volume_fraction: float | None = 0.1  # per step, of the current bar's volume (None: no cap)
    # websocket streams (streams.py)
    stream_pending_events: bool = True     # trade_updates also for pending_new / pending_cancel / pending_replace
    refuse_stream_auth: bool = False       # both streams answer every auth with unauthorized / 402
    stream_symbol_limit: int | None = 30   # data stream: max symbols of trades + quotes per connection (405 above)
    stream_auth_timeout: float = 10.0      # data stream: seconds to authenticate before 404 auth timeout
