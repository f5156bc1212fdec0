"""The bot's side of the streams (strategies/streaming.py, broker/streams/hub.py) unit by unit: the strategy's
collaborators are stand-ins that record what the stream path asks of them; the planners are the real ones.
(Found by review: each test failed on the first version of the stream code.)"""

from __future__ import annotations

import collections
import threading
from types import SimpleNamespace as NS

import pandas as pd

from broker.fills import FillWatcher
from broker.streams import hub
from strategies.streaming import StreamingBot
from tests.builders import NOW, oco_legs, snapshot
from tests.test_between_bars import IDS, S, lot
from trading.intents import IntentKind
from trading.records.journal import Journal
from trading.records.ledger import Ledger
from trading.snapshot import OpenOrder
from trading.steps.between_bars import plan_between_bars, with_price

PRICES = {"AAPL": {"close": 100.0, "atr": 2.0, "high": 100.0}}
PROTECTED = snapshot(holdings=[("AAPL", 100, 100.0)], orders=oco_legs("AAPL", 100, 95.0, 115.0), prices=PRICES)
UNPROTECTED = snapshot(holdings=[("AAPL", 100, 100.0)], orders=(), prices=PRICES)


def bot(base, fresh) -> StreamingBot:
    """A StreamingBot whose broker reads answer `fresh`; what it executes and records is kept."""
    j = Journal(":memory:")
    ledger = Ledger(journal=j)
    ledger._lots["AAPL"] = collections.deque([lot()])
    b = StreamingBot()
    b.executed, b.reads, b.recorded = [], [], []
    b._iteration_lock, b._exec_lock = threading.RLock(), threading.Lock()
    b.settings, b.ledger, b.journal = S, ledger, j
    b.venue = NS(watcher=FillWatcher(j), after_orders=lambda s: (b.reads.append(1), fresh)[1])
    b.decision_log = NS(note=lambda *a, **k: None, record_iteration=lambda *a, **k: b.recorded.append(a[1]))
    b.alerts = NS(end_iteration=lambda now: None)
    b.executor = NS(strategy_id="combined", slot=None, unsettled={})
    b.execute = lambda intent, snap: b.executed.append(intent.kind)
    b.risk = NS(review=lambda d, s: d)
    b._write_status = lambda snap, now, acted: snap
    b.now = lambda: NOW
    b._last_move, b._last_warn, b._last_try = {}, {}, {}
    b._stream_base = base
    return b


def leg_update(oid: str, event: str):
    o = NS(id=oid, symbol="AAPL", side=NS(value="sell"), type=NS(value="stop" if oid.endswith("sl") else "limit"),
           status=NS(value=event), filled_qty=None, filled_avg_price=None, client_order_id=oid, legs=None, qty="100",
           filled_at=None)
    return NS(event=event, order=o, qty=None, position_qty=None)


def test_a_cancelled_stop_is_seen_by_the_next_price_and_the_software_stop_fires():
    b = bot(PROTECTED, UNPROTECTED)
    for leg in ("g1-sl", "g1-tp"):
        b.venue.watcher.track(leg, "AAPL", "sell", "stop")
        b.on_stream_update(leg_update(leg, "canceled"), 0.0)
    b.on_stream_price("AAPL", 90.0, NOW)  # -10%: past the 5% stop, and no stop rests any more
    assert b.reads and b.executed == [IntentKind.EXIT]


def test_a_refused_protection_is_not_resent_on_every_tick():
    b = bot(UNPROTECTED, UNPROTECTED)  # the OCO does not take: the broker still shows no stop
    for i in range(10):
        b.on_stream_price("AAPL", 100.0 + i * 0.01, NOW)
    assert b.executed == [IntentKind.PROTECT] and len(b.recorded) == 1


def test_nothing_starts_once_shutdown_began_and_an_old_print_acts_on_nothing():
    b = bot(UNPROTECTED, UNPROTECTED)
    b.stopping = True
    b.on_stream_price("AAPL", 90.0, NOW)
    b.stopping = False
    b.on_stream_price("AAPL", 90.0, pd.Timestamp(NOW) - pd.Timedelta(minutes=15))  # a delayed feed's print
    assert b.executed == [] and b.reads == []
    b.on_stream_price("AAPL", 90.0, NOW)
    assert b.executed == [IntentKind.EXIT]


def test_the_stream_leaves_a_working_exit_of_the_iteration_alone():
    sale = OpenOrder("x1", "AAPL", "sell", "limit", 100, limit_price=99.5,
                     client_order_id="combined-AAPL-time-exit-20240305T1600-abcdef0123")
    snap = snapshot(holdings=[("AAPL", 100, 100.0)], orders=[sale], prices=PRICES)
    assert plan_between_bars(with_price(snap, "AAPL", 94.0, NOW), S, {"AAPL": lot()}, IDS, "AAPL") == []


def test_the_price_stream_counts_its_outage_from_its_own_start():
    class Thread:
        def __init__(self):
            self.started = self.connected = False
            self.symbols: set[str] = set()

        def follow(self, symbols):
            wanted = set(symbols)
            added, removed, self.symbols = wanted - self.symbols, self.symbols - wanted, wanted
            self.started = self.started or bool(wanted)
            return added, removed

    t, states = [1000.0], []
    s = hub.Streams.__new__(hub.Streams)
    s.on_state, s.clock = (lambda *a: states.append(a)), (lambda: t[0])
    s.trades, s.prices = Thread(), Thread()
    s.silence_s, s._quiet_from = 0.0, None  # the mute watch is tests/test_live_streams.py's
    s.trades.started = s.trades.connected = True
    s._up, s._since, s._lock = {"trade updates": None, "prices": None}, {"trade updates": t[0], "prices": t[0]}, \
        threading.Lock()
    s._watch()
    t[0] += 30  # the first iteration took 30 s; then the symbols held are followed
    s.follow(["AAPL"])
    t[0] += 0.5
    s._watch()
    assert states == []  # not "never connected" half a second after it started
    t[0] += hub.DOWN_AFTER_S
    s._watch()
    assert states == [("prices", False, "never connected")]
