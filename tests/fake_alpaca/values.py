"""Parsing and formatting of the values Alpaca exchanges: numbers as strings, RFC3339 times, loose booleans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadValue(ValueError):
    """A request value that cannot be parsed."""


def to_decimal(value) -> Decimal | None:
    """A JSON number (int, float or Decimal) or numeric string as a Decimal; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadValue(value)
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | float | str):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation as e:
            raise BadValue(value) from e
    else:
        raise BadValue(value)
    if not d.is_finite():
        raise BadValue(value)
    return d


def to_bool(value, default: bool = False) -> bool:
    """true/True/TRUE/1 and false/False/0, as Alpaca's Go server reads them."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "t", "yes"):
        return True
    if text in ("false", "0", "f", "no"):
        return False
    raise BadValue(value)


def decimals_of(d: Decimal) -> int:
    """Decimal places that carry a value: 10.50 -> 1, 290.123 -> 3, 100 -> 0."""
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def is_whole(d: Decimal | float) -> bool:
    return Decimal(str(d)) % 1 == 0


def fmt_num(x, places: int = 9) -> str | None:
    """A number as Alpaca prints it: '10', '101.23', '0.5' (no exponent, no trailing zeros)."""
    if x is None:
        return None
    d = Decimal(str(round(float(x), places))) if not isinstance(x, Decimal) else x
    d = d.normalize()
    if d == 0:
        return "0"
    return format(d, "f")


def fmt_money(x) -> str:
    return fmt_num(round(float(x), 2)) or "0"


def as_ny(t) -> datetime:
    """datetime / pandas Timestamp / ISO string -> aware datetime in New York time (naive = New York)."""
    if isinstance(t, str):
        t = parse_time(t)
    if hasattr(t, "to_pydatetime"):
        t = t.to_pydatetime()
    if not isinstance(t, datetime):
        raise TypeError(f"not a datetime: {t!r}")
    if t.tzinfo is None:
        return t.replace(tzinfo=NY)
    return t.astimezone(NY)


def parse_time(text: str, *, end_of_day: bool = False) -> datetime:
    """RFC3339 (with Z or offset; naive = UTC) or YYYY-MM-DD (New York midnight, or the end of that day)."""
    text = str(text).strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            t = datetime(d.year, d.month, d.day, tzinfo=NY)
            return t + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else t
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+") if "T" in text else text)
    except ValueError as e:
        raise BadValue(text) from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


def to_ns(t: datetime) -> int:
    """Aware datetime -> integer nanoseconds since the epoch (exact to the microsecond)."""
    return ((t - EPOCH) // timedelta(microseconds=1)) * 1000


def from_ns(ns: int) -> datetime:
    return (EPOCH + timedelta(microseconds=int(ns) // 1000)).astimezone(NY)


def iso_utc(t: datetime | None) -> str | None:
    """RFC3339 in UTC with a Z, the way Alpaca stamps orders and bars."""
    if t is None:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_utc_bar(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ny(t: datetime) -> str:
    """RFC3339 with the New York offset, as /v2/clock prints it."""
    return t.astimezone(NY).isoformat()
