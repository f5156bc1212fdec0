"""What a broker failure means: retry later (transient) or never (permanent), and logging it once.

Transient: 429, 5xx, timeouts, connection resets. Permanent: 4xx rejections such as 403 (buying
power, qty held, wash trade) and 422 (invalid order), with Alpaca's message. An incident is logged
when it starts and when it ends, not once per retry.
"""

import json
import logging

import requests

logger = logging.getLogger("trader.broker")
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class BrokerUnavailable(RuntimeError):
    """Alpaca did not answer usefully after the retries; skip the rest of this iteration."""


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, TimeoutError, ConnectionError)):
        return True
    status = status_of(exc)
    return status in TRANSIENT_STATUS


def body_of(exc: BaseException) -> dict | str:
    """Alpaca's answer: its JSON body (code, message, and fields such as available or base_price), else the
    exception text."""
    text = str(exc)
    try:
        body = json.loads(text)
    except (ValueError, TypeError):
        return text[:500]
    return body if isinstance(body, dict) else text[:500]


def message_of(exc: BaseException) -> str:
    """Alpaca's own message when there is one (the body is JSON), else the exception text."""
    body = body_of(exc)
    return str(body["message"]) if isinstance(body, dict) and "message" in body else str(exc)[:300]


class Incident:
    """Logs a broker outage once when it starts and once when it ends. The outage ends when the call
    that failed first answers again: another endpoint answering in between (the clock, say) does not
    end it, so a flapping API is one incident, not a start and an end every iteration."""

    def __init__(self) -> None:
        self.failures = 0
        self.first_error = ""
        self.first_call = ""

    def failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:
            self.first_call = what
            self.first_error = f"{what}: {type(exc).__name__} {status_of(exc) or ''} {message_of(exc)}".strip()
            logger.warning("broker unreachable (%s); retrying with backoff, skipping iterations until it answers",
                           self.first_error)

    def recovered(self, what: str) -> None:
        if self.failures and what == self.first_call:
            logger.warning("broker reachable again after %d failed call(s) (first: %s)", self.failures,
                           self.first_error)
            self.failures = 0
