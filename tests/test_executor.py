"""trading/executor.Executor: what reaches the broker, in which order, what is journalled and logged.

The broker is a recording venue written here (the edge of the system, like NautilusTrader's recording
mock execution client): it keeps every cancel, position read, submit and stop move in order and answers
from a script. Everything behind the executor is real: a journal in memory, the ledger, the decision
log, the default settings.
"""

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.builders import NOW, snapshot
from trading.execution.executor import MAX_ID_RETRIES, Executor, next_client_id
from trading.execution.resize import BrokerPosition
from trading.execution.venue import Submitted
from trading.intents import Intent, IntentKind
from trading.order_ids import client_order_id, role_from_client_id
from trading.orders import BracketOrder, LimitOrder, MarketOrder, OcoOrder, StopUpdate
from trading.records.decision_log import DecisionLog
from trading.records.journal import Journal
from trading.records.ledger import Ledger
from trading.settings import Settings

SYM = "AAPL"
STRATEGY = "combined"
LEGS = ("g1-sl", "g1-tp")
SLOT = NOW.replace(minute=0)


def cid(intent: str, sym: str = SYM) -> str:
    return client_order_id(STRATEGY, sym, intent, NOW)


def reprotect_id(at=NOW) -> str:
    return client_order_id(STRATEGY, SYM, "reprotect", at)


def sell(qty, intent="exit") -> MarketOrder:
    return MarketOrder(SYM, qty, "sell", cid(intent))


def oco(qty: int, intent="trim-oco", stop="95.00", target="115.00") -> OcoOrder:
    return OcoOrder(SYM, qty, Decimal(target), Decimal(stop), cid(intent))


def bracket(qty=10) -> BracketOrder:
    return BracketOrder(SYM, qty, Decimal("105.00"), Decimal("120.75"), Decimal("99.75"), cid("enter"))


def ok(broker_id="b-1", status="accepted", note="") -> Submitted:
    return Submitted(True, broker_id, status, note=note, response={"id": broker_id, "status": status})


def refused(note="rejected by Alpaca (403: insufficient qty available for order)", status="rejected") -> Submitted:
    return Submitted(False, status=status, note=note, response={"http_status": 403})


def dead(broker_id="dead-1") -> Submitted:
    return Submitted(False, broker_id, "dead-duplicate", note="id already used by an order now canceled: sending "
                     "under the next derived id", response={"id": broker_id, "status": "canceled"})


DRY = Submitted(False, status="dry-run", note="dry run: not sent")


class RecordingVenue:
    """Records cancels, position reads, submits and stop moves in order; answers from a script.

    positions: per symbol, the answers to successive reads (the last one repeats; flat when none).
    cancels: the answers to successive cancels (True once the script runs out).
    answer: Submitted answers in turn, or a function of the order (accepted once the script runs out).
    """

    def __init__(self, journal: Journal, ledger: Ledger):
        self.journal, self.ledger = journal, ledger
        self.calls: list[tuple] = []
        self.positions: dict[str, list[BrokerPosition]] = {}
        self.cancels: list[bool] = []
        self.answers: list[Submitted] = []
        self.answer: Callable | None = None
        self.at_send: dict[str, dict | None] = {}  # the journal's row for an order when it reached the broker
        self.pending_at_send: dict[str, tuple] = {}  # the ledger's pending bracket levels then

    def hold(self, symbol: str, *reads: BrokerPosition) -> None:
        self.positions[symbol] = list(reads)

    # the venue interface
    def cancel(self, order_ids: tuple[str, ...]) -> bool:
        self.calls.append(("cancel", tuple(order_ids)))
        return self.cancels.pop(0) if self.cancels else True

    def position(self, symbol: str) -> BrokerPosition:
        self.calls.append(("position", symbol))
        reads = self.positions.get(symbol)
        if not reads:
            return BrokerPosition.flat()
        return reads.pop(0) if len(reads) > 1 else reads[0]

    def submit(self, order, role: str) -> Submitted:
        self.calls.append(("submit", order, role))
        return self._answer(order)

    def move_stop(self, update: StopUpdate) -> Submitted:
        self.calls.append(("move_stop", update))
        return self._answer(update)

    def _answer(self, order) -> Submitted:
        self.at_send[order.client_order_id] = self.journal.order_by_client_id(order.client_order_id)
        self.pending_at_send[order.client_order_id] = self.ledger.pending_levels.get(order.symbol)
        if self.answers:
            return self.answers.pop(0)
        if self.answer is not None:
            return self.answer(order)
        n = sum(1 for c in self.calls if c[0] in ("submit", "move_stop"))
        return ok(f"b-{n}")

    # what happened
    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def sent(self) -> list:
        return [c[1] for c in self.calls if c[0] in ("submit", "move_stop")]

    def roles(self) -> list[str]:
        return [c[2] for c in self.calls if c[0] == "submit"]


class World:
    def __init__(self, clock=lambda: NOW, slot=None):
        self.journal = Journal(":memory:")
        self.ledger = Ledger(journal=self.journal)
        self.log = DecisionLog(self.journal)
        self.venue = RecordingVenue(self.journal, self.ledger)
        self.executor = Executor(self.venue, self.journal, self.ledger, self.log, Settings.defaults(), STRATEGY,
                                 clock)
        self.executor.slot = slot

    def run(self, intent: Intent, snap=None) -> None:
        self.executor.execute(intent, snap or held())

    def warnings(self) -> list[str]:
        return [r["reason"] for r in self.log.records if r["level"] == "warning"]

    def infos(self) -> list[str]:
        return [r["reason"] for r in self.log.records if r["level"] == "info"]

    def row(self, client_id: str) -> dict | None:
        return self.journal.order_by_client_id(client_id)

    def orders(self) -> list[dict]:
        return self.journal.frame("orders").to_dict("records")


def held(qty=10, entry: float | None = 100.0, price=105.0, now=NOW):
    return snapshot(holdings=[(SYM, qty, entry)], prices={SYM: price}, now=now)


def only_oco(sent) -> OcoOrder:
    assert len(sent) == 1 and isinstance(sent[0], OcoOrder), sent
    return sent[0]


# ---------------------------------------------------------------------------------------------- 1. cancel first
def test_an_unconfirmed_cancel_sends_nothing_and_protects_only_the_free_shares():
    w = World()
    w.venue.cancels = [False]
    w.venue.hold(SYM, BrokerPosition(10, 4))  # the legs still hold 6 of the 10 shares
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    assert w.executor.unsettled == {SYM: LEGS}
    assert w.venue.kinds() == ["cancel", "position", "submit"]
    assert w.venue.calls[0] == ("cancel", LEGS)
    o = only_oco(w.venue.sent())  # the sale is not sent: only protection for the 4 free shares
    assert (o.qty, o.stop_loss, o.take_profit, o.client_order_id) == (4, Decimal("95.00"), Decimal("115.00"),
                                                                       reprotect_id())
    assert w.venue.roles() == ["protect"]
    assert w.row(cid("exit")) is None  # never journalled: never sent
    assert any("AAPL: its orders are not confirmed cancelled; the rest of this intent is not sent" in r
               for r in w.warnings())
    protect = [r for r in w.log.records if r["action"] == "protect"]
    assert len(protect) == 1 and protect[0]["level"] == "warning" and protect[0]["order_ids"] == reprotect_id()
    assert "re-protect after an unconfirmed cancel: 4 sh held with no order on them: OCO stop 95.00, target " \
           "115.00" in protect[0]["reason"]


def test_an_unconfirmed_cancel_with_every_share_still_held_sends_nothing_at_all():
    w = World()
    w.venue.cancels = [False]
    w.venue.hold(SYM, BrokerPosition(10, 0))
    w.run(Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS))
    assert w.venue.kinds() == ["cancel", "position"]  # protection was checked, and nothing was free
    assert w.venue.sent() == [] and w.orders() == []
    assert w.executor.unsettled == {SYM: LEGS}


def test_settle_waits_for_the_cancel_again_and_protects_what_it_freed():
    w = World()
    w.venue.cancels = [False, True]
    w.venue.hold(SYM, BrokerPosition(10, 0), BrokerPosition(10, 10))
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    assert w.venue.sent() == []
    w.executor.settle(held())
    assert w.executor.unsettled == {}
    assert w.venue.kinds() == ["cancel", "position", "cancel", "position", "submit"]
    assert w.venue.calls[2] == ("cancel", LEGS)  # the same orders, asked again
    o = only_oco(w.venue.sent())
    assert (o.qty, o.stop_loss, o.take_profit) == (10, Decimal("95.00"), Decimal("115.00"))
    assert w.row(reprotect_id())["status"] == "accepted"
    assert any("re-protect once its cancel was confirmed: 10 sh" in r for r in w.warnings())


def test_settle_leaves_a_still_unconfirmed_cancel_to_the_next_iteration():
    w = World()
    w.venue.cancels = [False, False]
    w.venue.hold(SYM, BrokerPosition(10, 0), BrokerPosition(10, 10))
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    w.executor.settle(held())
    assert w.venue.kinds() == ["cancel", "position", "cancel"]  # no read, no OCO on shares still held
    assert w.venue.sent() == []
    assert w.executor.unsettled == {}  # step 1 of the next iteration owns it now
    assert w.warnings()[-1] == ("AAPL: cancel still not confirmed at the end of the iteration; step 1 checks its "
                                "protection again at the next one")


def test_settle_with_nothing_unsettled_touches_nothing():
    w = World()
    w.executor.settle(held())
    assert w.venue.calls == [] and w.log.records == []


# ---------------------------------------------------------------------------------------------- 2. refit
def test_a_leg_filled_before_the_cancel_so_nothing_is_sold():
    w = World()
    w.venue.hold(SYM, BrokerPosition.flat())  # the stop filled between the snapshot and the cancel
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    assert w.venue.kinds() == ["cancel", "position", "position"]  # refit, then the protection check
    assert w.venue.sent() == [] and w.orders() == []
    assert "AAPL: nothing left to sell: the position is flat" in w.warnings()


def test_a_sale_is_refitted_to_the_position_read_after_the_cancel():
    w = World()
    w.venue.hold(SYM, BrokerPosition(4, 4), BrokerPosition(4, 0))  # 6 sh went at the take-profit
    w.run(Intent(IntentKind.TIME_EXIT, SYM, (sell(10, "time-exit"),), LEGS))
    assert w.venue.kinds() == ["cancel", "position", "submit", "position"]
    [sale] = w.venue.sent()
    assert isinstance(sale, MarketOrder) and sale.side == "sell" and sale.qty == 4
    assert sale.client_order_id == cid("time-exit")
    assert w.row(cid("time-exit"))["qty"] == 4
    assert "AAPL: sell 4 sh, not the planned 10 (the broker's position)" in w.warnings()


def test_a_trim_is_refitted_and_its_remainder_reprotected():
    w = World()
    w.venue.hold(SYM, BrokerPosition(8, 8), BrokerPosition(8, 0))  # the sale and the OCO hold all 8 after
    w.run(Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS))
    sale, protect = w.venue.sent()
    assert (sale.qty, protect.qty) == (3, 5)
    assert w.venue.roles() == ["trim", "protect"]
    assert "AAPL: re-protect 5 sh (planned 7)" in w.warnings()
    assert w.venue.kinds()[-1] == "position"  # the changed plan is checked once more: nothing left unprotected


def test_an_unchanged_plan_goes_out_as_planned_with_no_extra_reads():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    planned = (sell(3, "trim"), oco(7))
    w.run(Intent(IntentKind.TRIM, SYM, planned, LEGS))
    assert w.venue.kinds() == ["cancel", "position", "submit", "submit"]
    assert tuple(w.venue.sent()) == planned
    assert w.warnings() == []


def test_an_entry_is_not_refitted_to_the_position():
    w = World()
    w.run(Intent(IntentKind.ENTER, SYM, (bracket(),)), snapshot(prices={SYM: 105.0}))
    assert w.venue.kinds() == ["submit"]
    assert w.venue.sent() == [bracket()]


# ---------------------------------------------------------------------------------------------- 3. session close
CLOSE = NOW


@pytest.mark.parametrize("late", [timedelta(0), timedelta(minutes=3)])
def test_after_the_close_a_market_exit_is_not_sent_and_the_shares_are_protected(late):
    w = World(clock=lambda: CLOSE + late)
    w.executor.session_ends = CLOSE
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    o = only_oco(w.venue.sent())
    assert o.qty == 10 and o.client_order_id == reprotect_id()
    assert w.row(cid("exit")) is None
    assert "AAPL: the session closed at 10:30 while this iteration ran: 1 session order(s) not sent" in w.warnings()


def test_after_the_close_a_trim_sends_its_oco_but_not_its_sale():
    w = World(clock=lambda: CLOSE)
    w.executor.session_ends = CLOSE
    w.venue.hold(SYM, BrokerPosition(10, 10), BrokerPosition(10, 3))  # the trim's OCO holds 7
    w.run(Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS))
    sent = w.venue.sent()
    assert [type(o) for o in sent] == [OcoOrder, OcoOrder]
    assert [o.qty for o in sent] == [7, 3]  # the planned OCO, then the 3 sh the unsent sale left bare
    assert [o.client_order_id for o in sent] == [cid("trim-oco"), reprotect_id()]


def test_after_the_close_an_entry_bracket_is_not_sent_and_nothing_is_protected():
    w = World(clock=lambda: CLOSE + timedelta(seconds=1))
    w.executor.session_ends = CLOSE
    w.run(Intent(IntentKind.ENTER, SYM, (bracket(),)), snapshot(prices={SYM: 105.0}))
    assert w.venue.calls == []  # no submit, and no protection read for an entry
    assert w.ledger.pending_levels == {}
    assert any("1 session order(s) not sent" in r for r in w.warnings())


def test_after_the_close_protection_stop_moves_and_extended_hours_limits_still_go_out():
    w = World(clock=lambda: CLOSE + timedelta(minutes=1))
    w.executor.session_ends = CLOSE
    w.venue.hold(SYM, BrokerPosition(10, 10))
    move = StopUpdate(SYM, "g1-sl", Decimal("101.00"), cid("move-stop-g1-sl"))
    w.run(Intent(IntentKind.MOVE_STOP, SYM, (move,), (), {"stop": 101.0}))
    w.run(Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),)))
    ext = LimitOrder(SYM, 10, "sell", Decimal("104.47"), cid("exit"), extended_hours=True)
    w.run(Intent(IntentKind.EXIT, SYM, (ext,), LEGS))
    assert w.venue.sent() == [move, oco(10, "protect"), ext]
    assert w.venue.calls[0] == ("move_stop", move)
    assert not any("session" in r for r in w.warnings())


@pytest.mark.parametrize(("ends", "now"), [(CLOSE, CLOSE - timedelta(seconds=1)), (None, CLOSE + timedelta(hours=3))])
def test_before_the_close_or_with_no_close_known_the_sale_goes_out(ends, now):
    w = World(clock=lambda: now)
    w.executor.session_ends = ends
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    assert w.venue.sent() == [sell(10)]
    assert w.warnings() == []


def test_after_the_close_a_partial_whose_sale_was_not_sent_is_not_marked_taken():
    w = World(clock=lambda: CLOSE)
    w.executor.session_ends = CLOSE
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=95.0, target=115.0)
    w.venue.hold(SYM, BrokerPosition(10, 10), BrokerPosition(10, 5))
    update = {"partial_done": True, "breakeven_done": True, "stop": 100.05, "stop_reason": "breakeven"}
    w.run(Intent(IntentKind.PARTIAL, SYM, (sell(5, "partial"), oco(5, "partial-oco", stop="100.05")), LEGS, update))
    assert not any(isinstance(o, MarketOrder) for o in w.venue.sent())
    assert w.ledger.open_trades()[SYM].partial_done is False


# ---------------------------------------------------------------------------------------------- 4. submit
def test_an_order_is_journalled_as_sending_before_it_reaches_the_broker_then_its_answer():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [ok("broker-77", "accepted")]
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    before = w.venue.at_send[cid("exit")]
    assert before is not None and before["status"] == "sending" and before["broker_order_id"] is None
    assert (before["symbol"], before["side"], before["order_type"], before["order_class"], before["qty"],
            before["intent"], before["role"]) == (SYM, "sell", "market", "simple", 10, "exit", "exit")
    assert json.loads(before["request"]) == {"symbol": SYM, "qty": 10, "time_in_force": "day",
                                             "client_order_id": cid("exit"), "side": "sell", "type": "market",
                                             "order_class": "simple"}
    after = w.row(cid("exit"))
    assert (after["status"], after["broker_order_id"]) == ("accepted", "broker-77")
    assert json.loads(after["response"]) == {"id": "broker-77", "status": "accepted"}
    assert w.venue.roles() == ["exit"]


def test_a_refused_order_is_journalled_and_logged_as_a_warning():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10), BrokerPosition(10, 0))
    w.venue.answers = [refused()]
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    row = w.row(cid("exit"))
    assert row["status"] == "rejected" and row["broker_order_id"] is None
    assert json.loads(row["response"]) == {"http_status": 403, "note": refused().note}
    assert f"AAPL: {cid('exit')} {refused().note}" in w.warnings()


@pytest.mark.parametrize(("answer", "status"), [(Submitted(True, "b-9"), "submitted"), (Submitted(False), "failed")])
def test_an_answer_without_a_status_is_journalled_by_its_outcome(answer, status):
    w = World()
    w.venue.answers = [answer]
    w.run(Intent(IntentKind.ENTER, SYM, (bracket(),)), snapshot(prices={SYM: 105.0}))
    assert w.row(cid("enter"))["status"] == status
    assert w.row(cid("enter"))["response"] is None


def test_an_order_found_after_a_lost_response_is_logged_as_information():
    w = World()
    w.venue.answers = [ok("b-3", "new", note="already sent earlier; found by client order id")]
    w.run(Intent(IntentKind.ENTER, SYM, (bracket(),)), snapshot(prices={SYM: 105.0}))
    assert "AAPL: already sent earlier; found by client order id" in w.infos()
    assert w.warnings() == []
    assert json.loads(w.row(cid("enter"))["response"])["note"] == "already sent earlier; found by client order id"


def test_a_bracket_leaves_its_levels_for_the_fill_before_it_is_sent():
    w = World()
    w.run(Intent(IntentKind.ENTER, SYM, (bracket(),)), snapshot(prices={SYM: 105.0}))
    assert w.venue.pending_at_send[cid("enter")] == (99.75, 120.75)  # (stop, target) for the entry fill
    row = w.row(cid("enter"))
    assert (row["side"], row["order_type"], row["order_class"], row["role"], row["intent"]) == (
        "buy", "market", "bracket", "entry", "enter")


def test_a_stop_move_is_a_replace_in_place_journalled_as_such():
    w = World()
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=95.0, target=115.0)
    move = StopUpdate(SYM, "g1-sl", Decimal("100.05"), cid("move-stop-g1-sl"))
    w.run(Intent(IntentKind.MOVE_STOP, SYM, (move,), (), {"stop": 100.05, "breakeven_done": True}))
    assert w.venue.calls == [("move_stop", move)]  # no cancel, no position read
    row = w.row(cid("move-stop-g1-sl"))
    assert (row["order_type"], row["order_class"], row["qty"], row["status"]) == ("replace", "replace", 0, "accepted")
    assert json.loads(row["request"])["replace"] == "g1-sl"
    lot = w.ledger.open_trades()[SYM]
    assert (lot.stop, lot.breakeven_done) == (100.05, True)


def test_a_dry_run_logs_what_it_would_send_and_raises_no_alarm():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answer = lambda order: DRY
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    assert w.venue.kinds() == ["cancel", "position", "submit"]  # no protection check after a dry run
    assert w.row(cid("exit"))["status"] == "dry-run"
    assert any(r.startswith("DRY RUN would send {") and cid("exit") in r for r in w.infos())
    assert w.warnings() == []


def test_a_dry_run_journals_every_order_of_an_intent_and_changes_no_trade_state():
    w = World()
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=95.0, target=115.0)
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answer = lambda order: DRY
    update = {"partial_done": True, "breakeven_done": True, "stop": 100.05, "stop_reason": "breakeven"}
    w.run(Intent(IntentKind.PARTIAL, SYM, (sell(5, "partial"), oco(5, "partial-oco", stop="100.05")), LEGS, update))
    assert [r["client_order_id"] for r in w.orders()] == [cid("partial"), cid("partial-oco")]
    assert {r["status"] for r in w.orders()} == {"dry-run"}
    assert w.venue.kinds() == ["cancel", "position", "submit", "submit"]  # and no protection check
    lot = w.ledger.open_trades()[SYM]
    assert (lot.partial_done, lot.stop) == (False, 95.0)
    assert sum(r.startswith("DRY RUN would send") for r in w.infos()) == 2
    assert w.warnings() == []


# ---------------------------------------------------------------------------------------------- dead client ids
def test_the_next_client_id_keeps_the_role_and_is_the_same_on_every_restart():
    for intent, role in [("partial-oco", "protect"), ("exit", "exit"), ("time-exit", "time-exit"),
                         ("reprotect", "protect"), ("enter", "entry")]:
        first = cid(intent)
        second = next_client_id(first)
        assert second == next_client_id(first)  # deterministic
        assert second != first and next_client_id(second) not in (first, second)
        head, _, tail = first.rpartition("-")
        new_head, _, new_tail = second.rpartition("-")
        assert new_head == head and len(new_tail) == len(tail) == 10 and new_tail != tail
        assert int(new_tail, 16) >= 0  # still a hex digest
        assert role_from_client_id(second) == role_from_client_id(first) == role


def test_a_dead_duplicate_is_sent_again_under_the_next_derived_id():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [dead(), ok("b-2")]
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    first, second = w.venue.sent()
    assert first.client_order_id == cid("exit") and second.client_order_id == next_client_id(cid("exit"))
    assert (second.qty, second.side) == (10, "sell")
    assert w.venue.roles() == ["exit", "exit"]
    assert (w.row(cid("exit"))["status"], w.row(cid("exit"))["broker_order_id"]) == ("dead-duplicate", "dead-1")
    assert (w.row(second.client_order_id)["status"], w.row(second.client_order_id)["broker_order_id"]) == (
        "accepted", "b-2")
    assert w.warnings() == []  # an id reused after a restart is routine, not an alarm
    assert any("sending under the next derived id" in r for r in w.infos())
    assert w.venue.kinds() == ["cancel", "position", "submit", "submit"]  # sent, so no re-protection needed


def test_dead_duplicates_are_retried_at_most_max_id_retries_times_then_the_shares_are_protected():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10), BrokerPosition(10, 10))
    w.venue.answer = lambda order: dead() if isinstance(order, MarketOrder) else ok("b-oco")
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    sales = [o for o in w.venue.sent() if isinstance(o, MarketOrder)]
    assert len(sales) == MAX_ID_RETRIES + 1
    expected, ids = cid("exit"), []
    for _ in sales:
        ids.append(expected)
        expected = next_client_id(expected)
    assert [o.client_order_id for o in sales] == ids
    assert len(set(ids)) == len(ids)
    assert all(role_from_client_id(i) == "exit" for i in ids)
    assert f"AAPL: {MAX_ID_RETRIES} dead orders under derived ids; not sent" in w.warnings()
    o = only_oco(w.venue.sent()[len(sales):])  # the sale never went out: the shares get their OCO back
    assert o.qty == 10 and o.client_order_id == reprotect_id()


# ---------------------------------------------------------------------------------------------- trade state
PARTIAL_UPDATE = {"partial_done": True, "breakeven_done": True, "stop": 100.05, "stop_reason": "breakeven"}


def _partial_world(*answers):
    w = World()
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=95.0, target=115.0)
    w.venue.hold(SYM, BrokerPosition(10, 10), BrokerPosition(10, 5))  # after the sale, 5 sh are free
    w.venue.answers = list(answers)
    intent = Intent(IntentKind.PARTIAL, SYM, (sell(5, "partial"), oco(5, "partial-oco", stop="100.05")), LEGS,
                    PARTIAL_UPDATE)
    return w, intent


def test_a_partial_whose_sale_went_out_is_done_even_if_its_oco_failed():
    w, intent = _partial_world(ok("b-1"), refused("rejected by Alpaca (422: stop too close)"))
    w.run(intent)
    lot = w.ledger.open_trades()[SYM]
    assert (lot.partial_done, lot.breakeven_done, lot.stop, lot.stop_reason) == (True, True, 100.05, "breakeven")
    assert w.journal.open_trades()[SYM]["partial_done"] is True  # persisted, survives a restart
    sale, failed_oco, reprotect = w.venue.sent()
    assert (sale.qty, failed_oco.client_order_id) == (5, cid("partial-oco"))
    # the refused OCO leaves 5 sh bare: re-protected at once, at the trade's new (breakeven) stop
    assert (reprotect.qty, reprotect.stop_loss, reprotect.take_profit, reprotect.client_order_id) == (
        5, Decimal("100.05"), Decimal("115.00"), reprotect_id())


def test_a_partial_whose_sale_failed_is_not_done_and_its_oco_is_not_sent():
    w, intent = _partial_world(refused())
    w.venue.hold(SYM, BrokerPosition(10, 10), BrokerPosition(10, 10))
    w.run(intent)
    lot = w.ledger.open_trades()[SYM]
    assert (lot.partial_done, lot.breakeven_done, lot.stop) == (False, False, 95.0)
    sale, reprotect = w.venue.sent()
    assert sale.client_order_id == cid("partial")
    assert w.row(cid("partial-oco")) is None
    assert (reprotect.qty, reprotect.stop_loss, reprotect.take_profit) == (10, Decimal("95.00"), Decimal("115.00"))


def test_the_trade_ends_with_the_levels_of_the_oco_that_rests():
    """The state change is applied once, when the first order is accepted; the OCO accepted after it then
    records its own levels, which a second application must not overwrite."""
    w, intent = _partial_world()
    intent = Intent(IntentKind.PARTIAL, SYM, (sell(5, "partial"), oco(5, "partial-oco", stop="101.00")), LEGS,
                    PARTIAL_UPDATE)
    w.run(intent)
    lot = w.ledger.open_trades()[SYM]
    assert (lot.stop, lot.target, lot.partial_done) == (101.0, 115.0, True)


def test_an_accepted_oco_adopts_a_position_the_bot_did_not_open():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.run(Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),)), held(entry=98.5))
    lot = w.ledger.open_trades()[SYM]
    assert (lot.kind, lot.qty, lot.price, lot.stop, lot.target) == ("legacy", 10, 98.5, 95.0, 115.0)
    assert w.journal.open_trades()[SYM]["stop"] == 95.0


def test_a_refused_oco_leaves_the_trade_as_it_was():
    w = World()
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=94.0, target=116.0)
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answer = lambda order: refused()
    w.run(Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),)))
    lot = w.ledger.open_trades()[SYM]
    assert (lot.stop, lot.target) == (94.0, 116.0)


# ---------------------------------------------------------------------------------------------- ensure_protected
def test_protection_uses_the_trades_levels_on_the_free_whole_shares():
    w = World(slot=SLOT)
    w.ledger.open_lot(SYM, 8, 100.0, NOW, "entry", stop=96.123, target=112.0)
    w.venue.hold(SYM, BrokerPosition(7.6, 5.3))
    w.executor.ensure_protected(SYM, held(qty=7.6), "after a test")
    o = only_oco(w.venue.sent())
    assert (o.qty, o.stop_loss, o.take_profit) == (5, Decimal("96.12"), Decimal("112.00"))
    assert o.client_order_id == reprotect_id(SLOT)  # the iteration's slot: the same id after a restart
    assert w.venue.roles() == ["protect"]
    row = w.row(o.client_order_id)
    assert (row["qty"], row["intent"], row["role"], row["status"]) == (5, "protect", "protect", "accepted")
    lot = w.ledger.open_trades()[SYM]
    assert (lot.stop, lot.target) == (96.12, 112.0)
    assert any("re-protect after a test: 5 sh held with no order on them: OCO stop 96.12, target 112.00" in r
               for r in w.warnings())


@pytest.mark.parametrize(("entry", "price", "lot_price", "stop", "target"), [
    (100.0, 105.0, None, "95.00", "115.00"),  # from the holding's entry
    (100.0, 120.0, None, "114.00", "138.00"),  # past the target: re-anchored on the price
    (None, 105.0, None, "99.75", "120.75"),  # no cost basis: anchored on the price
    (100.0, 105.0, 98.0, "93.10", "112.70"),  # a trade with no levels yet: its own entry
])
def test_protection_without_trade_levels_uses_the_default_levels(entry, price, lot_price, stop, target):
    w = World()
    if lot_price is not None:
        w.ledger.open_lot(SYM, 10, lot_price, NOW, "entry")
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.executor.ensure_protected(SYM, held(entry=entry, price=price), "after a test")
    o = only_oco(w.venue.sent())
    assert (o.qty, o.stop_loss, o.take_profit) == (10, Decimal(stop), Decimal(target))
    lot = w.ledger.open_trades()[SYM]
    assert (lot.stop, lot.target) == (float(stop), float(target))
    if lot_price is None:  # adopted, with the broker's cost basis (or the price when it has none)
        assert (lot.kind, lot.price) == ("legacy", entry or price)


@pytest.mark.parametrize("position", [BrokerPosition(10, 0), BrokerPosition(10, 0.99), BrokerPosition(0.7, 0.7),
                                      BrokerPosition(10, -1), BrokerPosition.flat()])
def test_no_protection_is_sent_without_a_free_whole_share(position):
    w = World()
    w.venue.hold(SYM, position)
    w.executor.ensure_protected(SYM, held(), "after a test")
    assert w.venue.kinds() == ["position"]
    assert w.log.records == [] and w.orders() == []


@pytest.mark.parametrize(("position", "whole"), [(BrokerPosition(1, 1), 1), (BrokerPosition(5 - 1e-11, 5 - 1e-11), 5),
                                               (BrokerPosition(3.5, 9), 3)])
def test_protection_counts_every_free_whole_share(position, whole):
    w = World()
    w.venue.hold(SYM, position)
    w.executor.ensure_protected(SYM, held(qty=position.qty), "after a test")
    assert only_oco(w.venue.sent()).qty == whole


def test_a_short_is_not_protected_and_is_reported():
    w = World()
    w.venue.hold(SYM, BrokerPosition(-3, -3))
    w.executor.ensure_protected(SYM, held(qty=-3), "after a test")
    assert w.venue.kinds() == ["position"]
    assert w.warnings() == ["AAPL: short -3 sh at the broker; step 1 buys it back at the next iteration"]
    assert w.orders() == []


def test_no_protection_is_sent_when_no_oco_is_possible():
    w = World()
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=110.0, target=125.0)  # the price fell through the stop
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.executor.ensure_protected(SYM, held(), "after a test")
    assert w.venue.kinds() == ["position"]
    [why] = w.warnings()
    assert why.startswith("AAPL: 10 sh without a stop after a test, and no OCO is possible (stop 110.00 is not "
                          "below the price 105.00)")
    assert w.orders() == []
    assert w.ledger.open_trades()[SYM].stop == 110.0


def test_protection_without_a_price_is_reported_not_raised():
    w = World()
    w.venue.cancels = [False]
    w.venue.hold(SYM, BrokerPosition(10, 10))
    snap = snapshot(holdings=[(SYM, 10, 100.0)], prices={"MSFT": 300.0})  # no price for AAPL
    w.run(Intent(IntentKind.FLATTEN, SYM, (sell(10, "flatten"),), LEGS), snap)
    assert w.venue.sent() == []
    assert w.executor.unsettled == {SYM: LEGS}
    assert any("no price to set one from" in r for r in w.warnings())


@pytest.mark.parametrize("price", [0.0, -1.0, float("inf")])
def test_a_price_of_zero_or_worse_is_no_price_to_protect_from(price):
    """A bad quote (0, negative, infinite) must not become the base of an OCO: reported, nothing sent."""
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.executor.ensure_protected(SYM, held(price=price), "after a test")
    assert w.venue.kinds() == ["position"] and w.orders() == []
    assert w.warnings() == ["AAPL: 10 sh without a stop after a test, and no price to set one from; step 1 retries "
                            "at the next iteration"]
    assert [r["step"] for r in w.log.records] == ["protect"]


def test_a_position_the_snapshot_and_the_ledger_never_saw_is_protected_around_its_price():
    """An entry that filled after the snapshot was taken (a cancelled bracket filled in part): no holding in the
    snapshot, no trade in the ledger; its shares still get an OCO, its levels from the price."""
    w = World()
    w.venue.hold(SYM, BrokerPosition(4, 4))
    w.executor.ensure_protected(SYM, snapshot(prices={SYM: 105.0}), "after a test")
    o = only_oco(w.venue.sent())
    assert o.qty == 4 and o.stop_loss == Decimal("99.75") and o.take_profit == Decimal("120.75")


def test_a_sub_dollar_position_is_protected_from_its_entry():
    """Below $1 prices have four decimals and a stock is still a stock: the OCO is set from the entry (80 cents:
    stop 5% below, target 15% above), not from the price, and not skipped for want of a price."""
    w = World()
    w.venue.hold(SYM, BrokerPosition(1000, 1000))
    w.executor.ensure_protected(SYM, held(qty=1000, entry=0.80, price=0.82), "after a test")
    o = only_oco(w.venue.sent())
    assert (o.qty, o.stop_loss, o.take_profit) == (1000, Decimal("0.7600"), Decimal("0.9200"))


def test_protection_lines_carry_their_step_and_symbol():
    """The dashboard, the journal and the alerts read a line's step and symbol, never its text."""
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.executor.ensure_protected(SYM, held(), "after a test")
    (row,) = [r for r in w.log.records if r["action"] == "protect"]
    assert (row["step"], row["symbol"]) == ("protect", SYM)
    assert w.row(reprotect_id())["symbol"] == SYM and w.row(reprotect_id())["intent"] == "protect"
    w = World()
    w.venue.hold(SYM, BrokerPosition(-3, -3))
    w.executor.ensure_protected(SYM, held(qty=-3), "after a test")  # a short
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=110.0, target=125.0)
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.executor.ensure_protected(SYM, held(), "after a test")  # no OCO possible
    w.venue.cancels = [False, False]
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    w.executor.settle(held())  # still not confirmed at the end
    steps = {r["reason"].split(";")[0].split(" (")[0]: r["step"] for r in w.log.records if r["level"] == "warning"}
    assert steps == {"AAPL: short -3 sh at the broker": "protect",
                     "AAPL: 10 sh without a stop after a test, and no OCO is possible": "protect",
                     "AAPL: its orders are not confirmed cancelled": "exit",
                     "AAPL: 10 sh without a stop after an unconfirmed cancel, and no OCO is possible": "protect",
                     "AAPL: cancel still not confirmed at the end of the iteration": "protect"}


# ---------------------------------------------------------------------------------------------- when to re-protect
def test_a_refused_sale_after_its_legs_were_cancelled_puts_the_protection_back():
    w = World()
    w.ledger.open_lot(SYM, 10, 100.0, NOW, "entry", stop=96.0, target=118.0)
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [refused()]
    w.run(Intent(IntentKind.UNHEDGE, SYM, (sell(10, "unhedge"),), LEGS))
    assert w.venue.kinds() == ["cancel", "position", "submit", "position", "submit"]
    o = w.venue.sent()[1]
    assert isinstance(o, OcoOrder) and (o.qty, o.stop_loss, o.take_profit) == (10, Decimal("96.00"),
                                                                                Decimal("118.00"))
    assert any("re-protect after a failed or changed order: 10 sh" in r for r in w.warnings())


@pytest.mark.parametrize("intent", [
    Intent(IntentKind.ENTER, SYM, (bracket(),)),
    Intent(IntentKind.HEDGE, SYM, (bracket(),)),
])
def test_a_refused_entry_does_not_trigger_protection(intent):
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [refused()]
    w.run(intent)
    assert w.venue.kinds() == ["submit"]  # nothing was held by it, so nothing to re-check
    assert w.row(cid("enter"))["status"] == "rejected"


def test_a_refused_software_stop_on_a_bare_position_gets_an_oco_at_once():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [refused()]
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),)))  # no orders to cancel: the position had none
    assert w.venue.kinds() == ["position", "submit", "position", "submit"]
    o = w.venue.sent()[1]
    assert isinstance(o, OcoOrder) and (o.qty, o.client_order_id) == (10, reprotect_id())


LOST = Submitted(False, status="unknown", note="no answer (504: gateway timeout) and not found by client order id yet",
                 response={"http_status": 504, "error": "gateway timeout"})


def test_the_shares_of_a_sale_whose_answer_was_lost_are_left_free_for_it():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))  # Alpaca has not (yet) shown the sale holding its shares
    w.venue.answers = [LOST]
    w.run(Intent(IntentKind.EXIT, SYM, (sell(10),), LEGS))
    assert w.venue.kinds() == ["cancel", "position", "submit", "position"]  # checked: no OCO that would refuse it
    assert w.row(cid("exit"))["status"] == "unknown"
    assert any(LOST.note in r for r in w.warnings())


def test_a_trim_whose_sale_answer_was_lost_protects_only_what_it_keeps():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [LOST]
    w.run(Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS))
    sale, protect = w.venue.sent()
    assert sale.client_order_id == cid("trim") and w.row(cid("trim-oco")) is None
    assert (protect.qty, protect.client_order_id) == (7, reprotect_id())  # 3 sh stay free for the sale in doubt


def test_a_refused_sale_reserves_nothing():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [refused()]
    w.run(Intent(IntentKind.TRIM, SYM, (sell(3, "trim"), oco(7)), LEGS))
    assert only_oco(w.venue.sent()[1:]).qty == 10  # a refusal is final: every share is protected again


def test_a_refused_protect_is_retried_from_the_brokers_position():
    w = World()
    w.venue.hold(SYM, BrokerPosition(10, 10))
    w.venue.answers = [refused("rejected by Alpaca (403: orphan leg still open)")]
    w.run(Intent(IntentKind.PROTECT, SYM, (oco(10, "protect"),)))
    first, second = w.venue.sent()
    assert (first.client_order_id, second.client_order_id) == (cid("protect"), reprotect_id())
    assert second.qty == 10


def test_a_cancelled_entry_that_filled_in_part_is_protected():
    w = World()
    w.venue.hold(SYM, BrokerPosition(3, 3))
    w.run(Intent(IntentKind.CANCEL, SYM, (), ("entry-1",)), held(qty=3))
    assert w.venue.kinds() == ["cancel", "position", "submit"]
    o = only_oco(w.venue.sent())
    assert (o.qty, o.stop_loss, o.take_profit) == (3, Decimal("95.00"), Decimal("115.00"))


def test_a_cancelled_entry_that_never_filled_sends_nothing():
    w = World()
    w.run(Intent(IntentKind.CANCEL, SYM, (), ("entry-1",)), snapshot(prices={SYM: 105.0}))
    assert w.venue.kinds() == ["cancel", "position"]
    assert w.venue.sent() == [] and w.log.records == []
