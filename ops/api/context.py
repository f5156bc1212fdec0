"""What the API serves from: the journal (its own connection), the settings the bot started with, the guard,
and, when the API runs inside the bot's process, the bot itself (for health)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ops.api.auth import Guard
from trading.records.journal import Journal
from trading.settings import Settings


@dataclass
class ApiContext:
    journal_path: Path
    settings: Settings  # as the bot started (run-time changes are applied on top, from the journal)
    guard: Guard
    bot: object | None = None  # the running strategy, when the API is started with it
    started: float = field(default_factory=time.time)
    requests: Counter = field(default_factory=Counter)
    _journal: Journal | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, journal_path: str | Path, settings: Settings, bot=None) -> ApiContext:
        return cls(Path(journal_path), settings, Guard(settings.api_token.reveal()), bot)

    @contextmanager
    def journal(self):
        """The API's own connection to the journal file, one request at a time (sqlite connections are not
        for concurrent use; requests are short reads)."""
        with self._lock:
            if self._journal is None:
                self._journal = Journal(self.journal_path)
            yield self._journal

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
