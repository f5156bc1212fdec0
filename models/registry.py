"""Where trained models live, which one is the champion, and how it changes hands.

    <folder of MODEL_PATH>/
        meta_model.json             the champion's card: the pointer the bot reads (model_file names the file)
        versions/<version>/         one trained model each: meta_model.joblib, meta_model.json (its own card),
                                    validation.png, verdict.json (promoted or kept, and why)

Promotion writes the champion's card to a temporary file, fsyncs it and renames it over the old one: a
rename is atomic, so whenever the process dies the card on disk is the old champion's or the new one's,
never half of each, and the model file it names was complete (and fsynced) before the card pointed at
it. A model file written in place beside its card (the layout before versions) stays loadable; the first
promotion copies it into versions/ so a rollback can return to it.
"""

import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from models.meta_model import card_path, sha256_file

MODEL_NAME, CARD_NAME, VERDICT_NAME = "meta_model.joblib", "meta_model.json", "verdict.json"
PROMOTE_LOCK = ".promote.lock"


class RegistryError(ValueError):
    """A registry operation that cannot be done; the message says why and what to do."""


def fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json(obj: dict) -> bytes:
    return json.dumps(obj, indent=2).encode()


class ModelStore:
    """The champion pointer and the versions beside MODEL_PATH."""

    def __init__(self, model_path: str | Path, keep: int = 5) -> None:
        self.model_path = Path(model_path)
        self.folder = self.model_path.parent
        self.card_file = card_path(self.model_path)
        self.versions = self.folder / "versions"
        self.keep = keep

    # ---------------------------------------------------------------- reading
    def champion(self) -> dict | None:
        """The champion's card, or None when there is none (or it cannot be read)."""
        try:
            card = json.loads(self.card_file.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return card if isinstance(card, dict) else None

    def champion_version(self) -> str | None:
        card = self.champion()
        return None if card is None else str(card.get("version") or f"unversioned ({card.get('created', '?')})")

    def card(self, version: str) -> dict:
        path = self.versions / version / CARD_NAME
        if not path.is_file():
            raise RegistryError(f"no model version {version!r} in {self.versions} (python -m models.train history "
                                "lists them)")
        return json.loads(path.read_text())

    def history(self) -> list[dict]:
        """Every kept version, oldest first: its card's essentials and its verdict."""
        rows = []
        for d in self._kept():
            try:
                card = json.loads((d / CARD_NAME).read_text())
                verdict = json.loads((d / VERDICT_NAME).read_text()) if (d / VERDICT_NAME).is_file() else {}
            except (OSError, json.JSONDecodeError):
                continue  # a version damaged outside the registry: not listed, never loaded
            rows.append({"version": d.name, "created": card.get("created"), "window": card.get("training_window"),
                         "verdict": verdict})
        return rows

    # ---------------------------------------------------------------- writing
    def add(self, model, card: dict, plot: Path | None = None) -> str:
        """Write a trained model and its card as a new version (complete and fsynced before it appears under
        its name) and return the version; it is not the champion until promoted."""
        import joblib

        return self._add(lambda path: joblib.dump(model, path), card, plot)

    def record(self, version: str, verdict: dict) -> None:
        """Why a version was promoted or kept beside the champion (merged into its verdict.json)."""
        path = self.versions / version / VERDICT_NAME
        old = json.loads(path.read_text()) if path.is_file() else {}
        tmp = path.with_suffix(".tmp")
        fsync_write(tmp, _json({**old, **verdict}))
        os.replace(tmp, path)

    def promote(self, version: str, reason: str, over: str | bool | None = True,
                expect: str | bool | None = False) -> tuple[str | None, str]:
        """Make `version` the champion: one atomic rename of the champion's card. Returns (old, new). `over`: the
        champion a rollback would return to (default: the one being replaced). `expect`: the champion the caller
        judged against (None: none); if another took its place meanwhile (a rollback, a hand-trained model),
        RegistryError and nothing changes. Promotions are serialised by a lock beside the card."""
        with self._lock():
            if expect is not False and self.champion_version() != expect:
                raise RegistryError(f"the champion changed from {expect or '(none)'} to {self.champion_version()} "
                                    "while the challenger was judged; it is judged again at the next retrain")
            return self._promote(version, reason, over)

    def _promote(self, version: str, reason: str, over: str | bool | None) -> tuple[str | None, str]:
        card = self.card(version)
        old = self.champion()
        replaced = self._archive(old) if old is not None else None
        previous = replaced if over is True else over
        if previous == version:  # the champion promoted again: a rollback still goes to the one before it
            previous = old.get("previous")
        pointer = {**card, "model_file": f"versions/{version}/{MODEL_NAME}", "previous": previous,
                   "promoted": {"reason": reason, "over": replaced}}
        for stale in self.folder.glob(f".{CARD_NAME}.*.tmp"):  # left by a promotion killed mid-way (we hold the lock)
            stale.unlink(missing_ok=True)
        tmp = self.folder / f".{CARD_NAME}.{os.getpid()}.tmp"
        fsync_write(tmp, _json(pointer))
        os.replace(tmp, self.card_file)  # the one step that changes the champion
        fsync_dir(self.folder)
        self.record(version, {"champion_since": datetime.now(UTC).isoformat(timespec="seconds"), "over": previous,
                              "promotion": reason})
        self.prune()
        return replaced, version

    def rollback(self) -> tuple[str, str]:
        """The champion before this one becomes the champion again. Returns (old, new)."""
        card = self.champion()
        if card is None:
            raise RegistryError(f"there is no champion at {self.card_file}; nothing to roll back")
        previous = card.get("previous")
        if not previous or not (self.versions / previous / CARD_NAME).is_file():
            raise RegistryError(f"the champion {card.get('version') or '(unversioned)'} records no earlier champion "
                                f"still kept in {self.versions}; nothing to roll back to")
        verdict = self.versions / previous / VERDICT_NAME
        before = json.loads(verdict.read_text()).get("over") if verdict.is_file() else None
        current = str(card.get("version"))
        self.promote(previous, f"rollback from {current} (python -m models.train rollback)", over=before,
                     expect=card.get("version"))
        return current, previous

    def prune(self) -> list[str]:
        """Remove the oldest versions beyond MODELS_KEPT; never the champion or the one before it."""
        card = self.champion() or {}
        protected = {card.get("version"), card.get("previous")}
        kept = [p.name for p in self._kept()]
        removed = []
        for name in kept[:max(len(kept) - self.keep, 0)]:
            if name not in protected:
                shutil.rmtree(self.versions / name)
                removed.append(name)
        return removed

    # ---------------------------------------------------------------- internals
    @contextmanager
    def _lock(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / PROMOTE_LOCK, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # held for milliseconds: a second promotion waits its turn
            yield

    def _kept(self) -> list[Path]:
        """Complete versions, oldest first: a folder left by a crash inside add() (.X.tmp) or without a card is
        not one."""
        return sorted(p for p in self.versions.glob("*") if not p.name.startswith(".") and (p / CARD_NAME).is_file())

    def _add(self, write, card: dict, plot: Path | None, stamp: str | None = None) -> str:
        self.versions.mkdir(parents=True, exist_ok=True)
        version = self._new_version(stamp)
        tmp = self.versions / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp / MODEL_NAME)
        with open(tmp / MODEL_NAME, "rb+") as f:
            os.fsync(f.fileno())
        card = {k: v for k, v in card.items() if k not in ("previous", "promoted")}
        card.update(sha256=sha256_file(tmp / MODEL_NAME), model_file=MODEL_NAME, version=version)
        fsync_write(tmp / CARD_NAME, _json(card))
        if plot is not None and plot.is_file():
            shutil.copyfile(plot, tmp / plot.name)
        fsync_dir(tmp)
        os.replace(tmp, self.versions / version)  # the version appears whole or not at all
        fsync_dir(self.versions)
        return version

    def _archive(self, card: dict) -> str | None:
        """The champion's version; a champion written in place (no version) is first copied into versions/ (its
        bytes, never unpickled here), so a rollback can return to it."""
        if card.get("version") and (self.versions / str(card["version"]) / CARD_NAME).is_file():
            return str(card["version"])
        if not self.model_path.is_file() or sha256_file(self.model_path) != card.get("sha256"):
            return None  # a file the card no longer vouches for is not archived (a rollback would trust it)
        created = str(card.get("created", ""))[:19].replace("-", "").replace(":", "")
        return self._add(lambda path: shutil.copyfile(self.model_path, path), card, None,
                         stamp=f"{created}Z" if len(created) == 15 else None)

    def _new_version(self, stamp: str | None = None) -> str:
        """A UTC time stamp (the legacy champion's: its training time, so versions sort by age)."""
        stamp = stamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        version, n = stamp, 1
        while (self.versions / version).exists() or (self.versions / f".{version}.tmp").exists():
            n += 1
            version = f"{stamp}-{n:02d}"
        return version
