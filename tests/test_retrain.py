"""Scheduled retraining: a challenger judged against the champion on the same unseen candidates, promoted only
when better; never during market hours; a failure leaves the champion and says why."""

import fcntl
import json
import shutil
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from models import retrain as retrain_mod
from models.dataset import build_dataset
from models.exit_sim import ExitPolicy
from models.features import FeatureParams
from models.meta_model import load_meta_model
from models.model_files import write_model
from models.registry import ModelStore
from models.retrain import _placebo, retrain
from models.schedule import LOCK_NAME, read_state, run_once
from models.train import make_card, train
from tests.edge_market import END, START, edge_market
from trading.settings import Settings

CHAMPION_END = date(2022, 12, 30)
AFTER_CLOSE = datetime.fromisoformat("2023-07-05T21:00:00+00:00")  # a Wednesday, 17:00 New York


def settings_for(tmp_path, **env) -> Settings:
    return Settings.load(environ={"MODEL_PATH": str(tmp_path / "models" / "meta_model.joblib"), **env},
                         dotenv_path=None)


@pytest.fixture(scope="module")
def market():
    return edge_market(settings_for(Path("/nonexistent")))


@pytest.fixture(scope="module")
def champions(tmp_path_factory, market):
    """A champion trained on 2022 on the true labels ("real") and one on shuffled labels ("placebo")."""
    out = {}
    for kind in ("real", "placebo"):
        folder = tmp_path_factory.mktemp(kind)
        out[kind] = (folder, install(settings_for(folder), market, CHAMPION_END, placebo=kind == "placebo"))
    return out


def with_champion(champions, kind: str, tmp_path) -> str:
    folder, version = champions[kind]
    shutil.copytree(folder / "models", tmp_path / "models")
    return version


def install(settings, market, end: date, placebo: bool) -> str:
    """A champion trained on START..end, on the true labels or (placebo) on shuffled ones."""
    params = FeatureParams.from_settings(settings)
    policy = ExitPolicy.from_settings(settings, market.bar_period)
    ds = build_dataset(market.bars, settings.universe, params, settings.rsi_oversold, policy, START, end)
    ds = _placebo(ds) if placebo else ds
    gates = {"ensemble_agreement": settings.ensemble_agreement, "max_uncertainty": settings.max_uncertainty}
    result = train(ds, policy, gates, n_splits=3, progress=False)
    card = make_card(settings, 3, market, START, end, settings.universe, policy, params, ds, result, gates)
    write_model(settings.model_path, result["model"], card)
    return card["version"]


def champion(settings):
    return load_meta_model(settings.model_path, FeatureParams.from_settings(settings))


def test_a_better_challenger_replaces_a_placebo_champion(tmp_path, market, champions, monkeypatch):
    import models.train

    s = settings_for(tmp_path)
    old = with_champion(champions, "placebo", tmp_path)
    store = ModelStore(s.model_path)
    seen = []
    monkeypatch.setattr(models.train, "train", lambda ds, *a, **k: seen.append(ds) or train(ds, *a, **k))
    out = retrain(s, market, START, END, store, splits=3, say=lambda _: None)
    judged, kept = seen
    window = pd.Timestamp("2022-12-31", tz=judged.times.tz)
    # build_dataset reads no bar after its end, labels included (a trade that would need one is dropped)
    assert judged.timeline.max() < window and judged.times.max() < window, \
        "the challenger judged on the window learned nothing from it"
    assert kept.times.max() > pd.Timestamp("2023-06-01", tz=kept.times.tz), "the one kept learns the recent days"
    assert out.outcome == "promoted", out.why
    assert champion(s).version == out.version != old
    verdict = json.loads((store.versions / out.version / "verdict.json").read_text())
    first = verdict["duels"][0]
    assert first["champion"] == f"the champion {old}" and first["window"][0] == "2022-12-31", \
        "judged only on candidates after the champion's training window"
    assert first["gain"] >= s.promote_min_gain and first["gain_ci"][0] > 0
    assert all(d["n"] == first["n"] >= 50 for d in verdict["duels"]), "every rival scored on the same candidates"
    assert store.champion()["previous"] == old, "a rollback returns to the placebo"
    assert (store.versions / out.version / "validation.png").stat().st_size > 0, "its plot kept beside it"


def test_a_challenger_trained_on_shuffled_labels_is_never_promoted(tmp_path, market, champions):
    s = settings_for(tmp_path)
    old = with_champion(champions, "real", tmp_path)
    store = ModelStore(s.model_path)
    out = retrain(s, market, START, END, store, splits=3, shuffle_labels=True, say=lambda _: None)
    assert out.outcome == "kept" and "not promoted" in out.why
    assert champion(s).version == old, "the champion stays"
    assert out.version in [r["version"] for r in store.history()], "the challenger is kept beside it"
    verdict = json.loads((store.versions / out.version / "verdict.json").read_text())
    assert verdict["verdict"] == "kept" and verdict["duels"][0]["gain"] < 0


def test_without_a_champion_a_placebo_does_not_beat_the_trivial_gates(tmp_path, market):
    """A model that only learned the base rate (every candidate loses on average here: it takes none) must not
    be installed for skipping everything; the real one is."""
    s = settings_for(tmp_path)
    store = ModelStore(s.model_path)
    placebo = retrain(s, market, START, END, store, splits=3, shuffle_labels=True, say=lambda _: None)
    assert placebo.outcome == "kept" and store.champion() is None
    assert "taking" in placebo.why, placebo.why
    real = retrain(s, market, START, END, store, splits=3, say=lambda _: None)
    assert real.outcome == "promoted" and champion(s).version == real.version


def test_too_few_unseen_candidates_postpone_the_duel(tmp_path, market):
    s = settings_for(tmp_path)
    old = install(s, market, date(2023, 6, 20), placebo=False)
    out = retrain(s, market, START, END, ModelStore(s.model_path), splits=3, say=lambda _: None)
    assert out.outcome == "postponed" and "candidates since 2023-06-21" in out.why
    assert champion(s).version == old and not (ModelStore(s.model_path).history()[1:]), "nothing trained"


# ---------------------------------------------------------------------------------------------- the schedule
def test_never_during_market_hours(tmp_path, market):
    s = settings_for(tmp_path, RETRAIN_EVERY="1D")
    out = run_once(s, datetime.fromisoformat("2023-07-05T15:00:00+00:00"), force=True, market=market)  # 11:00 NY
    assert out.outcome == "skipped" and "the market is open" in out.why and "next after 2023-07-05 16:15" in out.why
    assert read_state(ModelStore(s.model_path)) == {} and not (tmp_path / "models" / "versions").exists()


def test_a_failed_retrain_leaves_the_champion_and_says_why(tmp_path, champions):
    s = settings_for(tmp_path, RETRAIN_EVERY="1D", RETRAIN_DATA=f"csv:{tmp_path / 'nowhere'}")
    old = with_champion(champions, "real", tmp_path)
    out = run_once(s, AFTER_CLOSE)
    assert out.outcome == "failed" and "no such folder" in out.why and f"the champion {old} stays" in out.why
    state = read_state(ModelStore(s.model_path))
    assert state["outcome"] == "failed" and state["id"] and champion(s).version == old
    assert run_once(s, AFTER_CLOSE).outcome == "skipped", "an attempt counts: not retried until due again"


def test_a_crash_leaves_the_champion_and_keeps_the_trace(tmp_path, market, champions, monkeypatch):
    s = settings_for(tmp_path, RETRAIN_EVERY="1D")
    old = with_champion(champions, "real", tmp_path)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(retrain_mod, "build_dataset", boom)
    out = run_once(s, AFTER_CLOSE, market=market)
    assert out.outcome == "failed" and "crashed (RuntimeError: disk on fire" in out.why
    assert "Traceback" in (tmp_path / "models" / "retrain-error.txt").read_text()
    assert champion(s).version == old


def test_one_retrain_at_a_time(tmp_path, market):
    s = settings_for(tmp_path, RETRAIN_EVERY="1D")
    folder = tmp_path / "models"
    folder.mkdir()
    with open(folder / LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        out = run_once(s, AFTER_CLOSE, market=market)
    assert out.outcome == "skipped" and "another retrain is running" in out.why
    assert read_state(ModelStore(s.model_path)) == {}




# ---------------------------------------------------------------------------------------------- the command
def test_the_schedule_command_says_what_it_did_and_refuses_bad_settings(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env_file = tmp_path / "retrain.env"
    env_file.write_text(f"MODEL_PATH={tmp_path / 'models' / 'meta_model.joblib'}\nRETRAIN_DATA=builtin\n")

    def run(*args):
        clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("RETRAIN", "MODEL"))}
        return subprocess.run([sys.executable, "-m", "models.train", *args, "--env-file", str(env_file)], cwd=root,
                              capture_output=True, text=True, timeout=120, env=clean)

    off = run("--schedule")
    assert off.returncode == 2 and "error: RETRAIN_EVERY is empty" in off.stderr and "Traceback" not in off.stderr
    env_file.write_text(env_file.read_text() + "RETRAIN_EVERY=1D\n")
    open_now = run("--schedule", "--once", "--force", "--at", "2023-07-05T15:00:00+00:00")
    assert open_now.returncode == 0 and "retrain skipped: the market is open" in open_now.stdout
    bad = run("--schedule", "--once", "--at", "2023-07-05T15:00:00")  # naive: read as UTC
    assert bad.returncode == 0 and "market is open" in bad.stdout
    typo = subprocess.run([sys.executable, "-m", "models.train", "--schedule", "--once", "--at", "yesterday"],
                          cwd=root, capture_output=True, text=True, timeout=60)
    assert typo.returncode == 2 and "--at" in typo.stderr and "Traceback" not in typo.stderr


def test_a_champion_replaced_while_the_challenger_was_judged_is_not_overwritten(tmp_path, market, champions,
                                                                                 monkeypatch):
    """A rollback or a hand-trained model lands during the retrain: the challenger beat a model that is no longer
    the champion, so it is kept, not promoted over one it never faced."""
    s = settings_for(tmp_path)
    with_champion(champions, "placebo", tmp_path)
    store = ModelStore(s.model_path)
    real, real_version = champions["real"][0] / "models", champions["real"][1]
    shutil.copytree(real / "versions" / real_version, store.versions / real_version)
    added = ModelStore.add

    def add_then_install_another(self, *a, **k):
        version = added(self, *a, **k)
        self.promote(real_version, "installed by hand meanwhile")
        return version

    monkeypatch.setattr(ModelStore, "add", add_then_install_another)
    out = retrain(s, market, START, END, store, splits=3, say=lambda _: None)
    assert out.outcome == "kept" and "the champion changed from" in out.why and f"to {real_version}" in out.why
    assert champion(s).version == real_version
