"""Which session the live bot is in: Alpaca's clock for the regular session, the real NYSE calendar for the
extended-hours windows (defect 7: early closes and holidays)."""

from types import SimpleNamespace

import pandas as pd
import pytest

from broker.snapshot import session_now
from marketdata.sessions import nyse_sessions

CLOSED = SimpleNamespace(is_open=False)
OPEN = SimpleNamespace(is_open=True)


@pytest.mark.parametrize(("when", "expected"), [
    ("2024-03-05 03:59", None),  # an ordinary Tuesday: before the pre-market
    ("2024-03-05 04:00", "extended"),
    ("2024-03-05 09:29", "extended"),
    ("2024-03-05 16:00", "extended"),
    ("2024-03-05 19:59", "extended"),
    ("2024-03-05 20:00", None),
    ("2024-11-29 13:00", "extended"),  # day after Thanksgiving closes at 13:00: after-hours 13:00-17:00
    ("2024-11-29 15:30", "extended"),
    ("2024-11-29 16:59", "extended"),
    ("2024-11-29 17:00", None),
    ("2024-11-29 18:00", None),
    ("2024-07-04 17:00", None),  # Independence Day (a Thursday): a holiday evening is not extended hours
    ("2024-07-04 08:00", None),  # nor its morning
    ("2024-03-09 10:00", None),  # a Saturday
])
def test_extended_hours_follow_the_real_calendar(when, expected):
    t = pd.Timestamp(when, tz="America/New_York")
    opens = nyse_sessions(t.date(), t.date() + pd.Timedelta(days=10))["market_open"]
    clock = SimpleNamespace(is_open=False, next_open=opens[opens > t].iloc[0])  # as Alpaca's clock answers
    assert session_now(clock, t, extended_enabled=True) == expected


def test_alpacas_clock_decides_the_regular_session_and_the_switch_the_rest():
    t = pd.Timestamp("2024-03-05 17:00", tz="America/New_York")
    assert session_now(OPEN, t, extended_enabled=False) == "regular"
    assert session_now(CLOSED, t, extended_enabled=False) is None
