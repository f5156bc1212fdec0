"""Who may use the API: a bearer token from .env, compared in constant time, never logged.

Scripts send `Authorization: Bearer <API_TOKEN>`. The dashboard, a page a browser opens, cannot set that header
on navigation, so its login form trades the token once for a session cookie (an HMAC of the token, not the
token; HttpOnly, SameSite=Strict). The cookie opens reads; a state-changing call with it must also carry the
`X-Dashboard` header, which another site's page cannot add without a CORS preflight this API never answers.
Failed attempts are logged (address, path, never the token) and rate-limited per address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import defaultdict, deque

from fastapi import HTTPException, Request

logger = logging.getLogger("trader.api")
COOKIE = "trader_session"
MAX_FAILURES, WINDOW_S = 10, 60.0  # failures per address per window before 429s until the window passes
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class Guard:
    def __init__(self, token: str, clock=time.monotonic) -> None:
        if not token:
            raise ValueError("an empty token would open the API to anyone")
        self._token = token.encode()
        self.session = hmac.new(self._token, b"dashboard-session-v1", hashlib.sha256).hexdigest()
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.refused = 0  # for /api/health and /metrics
        self.max_failures = MAX_FAILURES

    def token_ok(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token)

    def _blocked(self, address: str) -> float:
        """Seconds until this address may try again (0: it may)."""
        now = self._clock()
        with self._lock:
            q = self._failures.get(address)
            while q and now - q[0] > WINDOW_S:
                q.popleft()
            if q is not None and not q:
                del self._failures[address]  # an address that stopped failing is forgotten
                return 0.0
            return WINDOW_S - (now - q[0]) if q and len(q) >= self.max_failures else 0.0

    def _fail(self, address: str, request: Request, why: str) -> None:
        with self._lock:
            q = self._failures[address]
            q.append(self._clock())
            self.refused += 1
            n = len(q)
        lockout = f" ({n} failures in {WINDOW_S:.0f} s: further attempts get 429)" if n == self.max_failures else ""
        logger.warning("API: refused %s %s from %s: %s%s", request.method, request.url.path, address, why, lockout)

    def check(self, request: Request) -> None:
        """FastAPI dependency: return when the caller is authorised, else raise 401 (or 429)."""
        address = request.client.host if request.client else "?"
        wait = self._blocked(address)
        if wait > 0:
            raise HTTPException(429, "too many failed attempts from this address; try again later",
                                headers={"Retry-After": str(int(wait) + 1)})
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":  # another scheme (a proxy's Basic auth) is not an attempt at ours
            if self.token_ok(value.strip()):
                return
            self._fail(address, request, "wrong token")
            raise HTTPException(401, "wrong token", headers={"WWW-Authenticate": "Bearer"})
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), self.session.encode()):
            if request.method in UNSAFE and request.headers.get("x-dashboard") != "1":
                self._fail(address, request, "session cookie without the dashboard header")
                raise HTTPException(403, "a state-changing call with the session cookie needs the X-Dashboard header")
            return
        self._fail(address, request, "no token")
        raise HTTPException(401, "send Authorization: Bearer <API_TOKEN> (the token is in the bot's .env)",
                            headers={"WWW-Authenticate": "Bearer"})

    def login(self, request: Request, token: str) -> bool:
        """The login form: True when the token is right (the caller then sets the cookie)."""
        address = request.client.host if request.client else "?"
        if self._blocked(address) > 0:
            raise HTTPException(429, "too many failed attempts from this address; try again later")
        if self.token_ok(token.strip()):
            return True
        self._fail(address, request, "wrong token at the login form")
        return False
