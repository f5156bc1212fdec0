"""The human's controls: the kill-switch file and the halt / resume / flatten commands."""

from datetime import datetime, timedelta

from tests.builders import snapshot
from tests.risk.helpers import T0, entry_decision, protect_decision, s, snap_at
from trading.records.journal import Journal
from trading.risk.controller import COMMAND_KEY, RiskController
from trading.risk.kill_switch import kill_switch_file
from trading.risk.verdict import Mode


def test_kill_switch_file_halts_and_flatten_command_flags_a_flatten(tmp_path):
    halt_file = tmp_path / "HALT"
    rc = RiskController(s(kill_switch_file=str(halt_file)), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    assert rc.mode == Mode.ACTIVE and kill_switch_file(str(halt_file)) is None
    halt_file.write_text("stop")
    rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), [])
    assert rc.mode == Mode.HALTED
    rc.journal.set_state(COMMAND_KEY, {"command": "flatten", "id": "f1"})
    rc.observe(snap_at(T0 + timedelta(hours=2), 100_000), [])
    assert rc.flatten_pending
    rc.flatten_done(datetime(2024, 1, 2, 10, 30))
    assert not rc.flatten_pending and rc.mode == Mode.HALTED


def test_halted_state_survives_a_restart_and_only_the_resume_command_lifts_it(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    journal.set_state(COMMAND_KEY, {"command": "halt", "id": "1"})
    rc = RiskController(s(), journal)
    rc.observe(snap_at(T0, 100_000), [])
    assert rc.mode == Mode.HALTED
    journal.close()
    restarted = RiskController(s(), Journal(tmp_path / "j.sqlite"))  # a new process, same journal
    assert restarted.mode == Mode.HALTED
    restarted.observe(snap_at(T0 + timedelta(days=30), 100_000), [])
    assert restarted.mode == Mode.HALTED, "time never resumes a human halt"
    out = restarted.review([entry_decision(), protect_decision()], snap_at(T0, 100_000))
    assert [d.intent is None for d in out] == [True, False]
    restarted.journal.set_state(COMMAND_KEY, {"command": "resume", "id": "2"})
    restarted.observe(snap_at(T0 + timedelta(days=30, hours=1), 100_000), [])
    assert restarted.mode == Mode.ACTIVE


def test_removing_the_kill_switch_file_does_not_resume_only_the_resume_command_does(tmp_path):
    halt_file = tmp_path / "HALT"
    halt_file.write_text("stop")
    rc = RiskController(s(kill_switch_file=str(halt_file)), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    assert rc.mode == Mode.HALTED
    halt_file.unlink()
    rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), [])
    assert rc.mode == Mode.HALTED, "taking the file away is not a human resume"
    halt_file.write_text("stop")
    rc.journal.set_state(COMMAND_KEY, {"command": "resume", "id": "r1"})
    notes = rc.observe(snap_at(T0 + timedelta(hours=2), 100_000), [])
    assert rc.mode == Mode.HALTED and any("the kill-switch file still exists" in n.reason for n in notes)
    halt_file.unlink()
    rc.journal.set_state(COMMAND_KEY, {"command": "resume", "id": "r2"})
    rc.observe(snap_at(T0 + timedelta(hours=3), 100_000), [])
    assert rc.mode == Mode.ACTIVE


def test_halt_cancels_open_entry_orders_only_and_flatten_cancels_and_sells_everything():
    from tests.builders import oco_legs
    from trading.order_ids import OrderIds
    from trading.orders import MarketOrder
    from trading.snapshot import OpenOrder
    from trading.steps.halt import plan_cancel_entries, plan_flatten

    entry = OpenOrder("e1", "NVDA", "buy", "market", 10, order_class="bracket")
    legs = oco_legs("AAPL", 20, 95.0, 115.0)
    snap = snapshot(cash=50_000, holdings=[("AAPL", 20, 100.0), ("MSFT", 2.5, 300.0)], orders=(entry, *legs),
                    prices={"AAPL": 101.0, "MSFT": 310.0, "NVDA": 500.0}, now=T0)
    (cancel,) = plan_cancel_entries(snap)
    assert cancel.symbol == "NVDA" and cancel.intent.cancel_order_ids == ("e1",) and cancel.intent.orders == ()
    assert cancel.intent.protective, "a halt may still cancel entries"
    out = {d.symbol: d.intent for d in plan_flatten(snap, OrderIds("combined", T0))}
    assert set(out) == {"AAPL", "MSFT", "NVDA"}
    assert set(out["AAPL"].cancel_order_ids) == {"g1-tp", "g1-sl", "g1"}
    assert [(o.qty, o.side) for o in out["AAPL"].orders] == [(20, "sell")]
    assert isinstance(out["MSFT"].orders[0], MarketOrder) and out["MSFT"].orders[0].qty == 2.5  # fractions too
    assert out["NVDA"].orders == () and out["NVDA"].cancel_order_ids == ("e1",)


def test_flatten_buys_back_a_short_after_cancelling_its_orders():
    """Defect 2: with a short present, flatten only ever sold longs, so it never completed."""
    from trading.order_ids import OrderIds
    from trading.snapshot import OpenOrder
    from trading.steps.halt import plan_flatten

    stray = OpenOrder("s1", "TSLA", "sell", "limit", 3, limit_price=250.0)
    snap = snapshot(cash=50_000, holdings=[("TSLA", -146, 200.0), ("AAPL", 10, 100.0)], orders=(stray,),
                    prices={"TSLA": 201.0, "AAPL": 101.0}, now=T0)
    out = {d.symbol: d for d in plan_flatten(snap, OrderIds("combined", T0))}
    tsla = out["TSLA"].intent
    assert [(o.side, o.qty) for o in tsla.orders] == [("buy", 146)] and tsla.cancel_order_ids == ("s1",)
    assert "buy back the short of 146" in out["TSLA"].reason
    assert [(o.side, o.qty) for o in out["AAPL"].intent.orders] == [("sell", 10)]
