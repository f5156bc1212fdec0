"""A disk cache of historical bars: one Parquet file per symbol, timeframe, feed and adjustment, and a manifest.

The manifest (manifest.json beside the files) records per file the span that was *asked for and fetched* (a
symbol with no bars in part of it, or none at all, is not fetched again), the bars' first and last times, the
row count, when it was fetched and the file's SHA-256. A file whose checksum or row count disagrees with its
manifest entry, or that Parquet cannot read, is reported and treated as absent: it is fetched again, never used.
Files and the manifest are written to a temporary name, flushed to disk and renamed, so an interrupted run
leaves the previous version, never half of a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

logger = logging.getLogger("trader.data")
COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class CacheKey:
    symbol: str
    timeframe: str  # "hour" or "day"
    feed: str
    adjustment: str

    @property
    def name(self) -> str:
        return f"{self.symbol}_{self.timeframe}_{self.feed}_{self.adjustment}.parquet"


@dataclass(frozen=True)
class Cached:
    bars: pd.DataFrame
    start: date  # the span fetched, inclusive
    end: date


class BarCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / "manifest.json"

    def manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            logger.warning("bar cache: %s is unreadable; every file is fetched again", self.manifest_path)
            return {}

    def read(self, key: CacheKey) -> Cached | None:
        """The cached bars and the span they cover, or None when absent, corrupt or truncated (said once)."""
        entry = self.manifest().get(key.name)
        path = self.root / key.name
        if entry is None or not path.is_file():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            logger.warning("bar cache: %s does not match its checksum (corrupt or truncated); fetching it again",
                           key.name)
            return None
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is refetched, whatever pyarrow raised
            logger.warning("bar cache: %s cannot be read (%s); fetching it again", key.name, exc)
            return None
        if len(df) != entry.get("rows") or list(df.columns) != COLUMNS:
            logger.warning("bar cache: %s has %d rows, its manifest says %s; fetching it again", key.name, len(df),
                           entry.get("rows"))
            return None
        return Cached(df, date.fromisoformat(entry["start"]), date.fromisoformat(entry["end"]))

    def write(self, items: list[tuple[CacheKey, pd.DataFrame, date, date]]) -> None:
        """Each (key, bars, first day fetched, last day covered) to its file, then the manifest once."""
        if not items:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        manifest = self.manifest()
        for key, bars, start, end in items:
            manifest[key.name] = self._write_file(key, bars[COLUMNS].astype(float), start, end)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        _sync(tmp)
        os.replace(tmp, self.manifest_path)

    def _write_file(self, key: CacheKey, bars: pd.DataFrame, start: date, end: date) -> dict:
        path = self.root / key.name
        tmp = path.with_suffix(".parquet.tmp")
        bars.to_parquet(tmp)
        _sync(tmp)
        os.replace(tmp, path)
        return {"symbol": key.symbol, "timeframe": key.timeframe, "feed": key.feed, "adjustment": key.adjustment,
                "start": str(start), "end": str(end), "rows": len(bars),
                "first_bar": bars.index[0].isoformat() if len(bars) else None,
                "last_bar": bars.index[-1].isoformat() if len(bars) else None,
                "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _sync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
