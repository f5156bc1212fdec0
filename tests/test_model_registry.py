"""The model registry: versions beside MODEL_PATH, the champion's card, promotion, rollback and pruning.

Every model here is a ConstantEnsemble (tests/test_meta_model.py): LOW predicts expected R 0.1, HIGH 0.9, MID 0.5,
so a prediction says which model was loaded, not only which card."""

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import pandas as pd
import pytest

from models import registry
from models.features import FEATURE_NAMES
from models.meta_model import ModelError, load_meta_model, sha256_file
from models.registry import ModelStore, RegistryError
from tests.conftest import ROOT
from tests.test_meta_model import PARAMS, ConstantEnsemble, card_for
from trading.settings_specs import SPECS

LOW, HIGH, MID = (0.1, 0.1, 0.1), (0.9, 0.9, 0.9), (0.5, 0.5, 0.5)
ROWS = pd.DataFrame([[0.0] * len(FEATURE_NAMES)] * 3, columns=list(FEATURE_NAMES))


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "models" / "meta_model.joblib")


def add(store: ModelStore, members) -> str:
    return store.add(ConstantEnsemble(members), card_for())


def loaded(store: ModelStore):
    model = load_meta_model(store.model_path, PARAMS)
    assert model is not None, "no champion loaded"
    return model


def expected_r(model) -> float:
    out = model.assess(ROWS, record=False)["expected_r"]
    assert out.nunique() == 1
    return float(out.iloc[0])


def assert_champion(store: ModelStore, version: str, members) -> None:
    model = loaded(store)
    assert model.version == version
    assert expected_r(model) == pytest.approx(sum(members) / len(members))


def version_dirs(store: ModelStore) -> list[str]:
    return sorted(p.name for p in store.versions.iterdir() if p.is_dir() and not p.name.startswith("."))


def tmp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------- add and promote
def test_added_versions_wait_until_promoted_and_the_promoted_one_is_loaded(store):
    a, b = add(store, LOW), add(store, HIGH)
    assert a != b and [r["version"] for r in store.history()] == [a, b], "oldest first"
    assert load_meta_model(store.model_path, PARAMS) is None, "an added version is not installed"
    assert store.champion_version() is None

    assert store.promote(a, "first") == (None, a)
    assert_champion(store, a, LOW)
    assert store.promote(b, "better") == (a, b)
    assert_champion(store, b, HIGH)

    card = json.loads(store.card_file.read_text())
    assert card["model_file"] == f"versions/{b}/meta_model.joblib" and card["previous"] == a
    assert not store.model_path.exists(), "the pointer layout needs no file at MODEL_PATH"
    verdict = json.loads((store.versions / b / "verdict.json").read_text())
    assert verdict["promotion"] == "better" and verdict["over"] == a
    assert tmp_leftovers(store.folder) == []


# ---------------------------------------------------------------------------------------------- interrupted promotion
def test_a_promotion_that_fails_at_the_rename_leaves_the_old_champion_in_place(store, monkeypatch):
    a, b = add(store, LOW), add(store, HIGH)
    store.promote(a, "first")
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == store.card_file:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(registry.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        store.promote(b, "better")
    monkeypatch.undo()

    assert_champion(store, a, LOW)
    assert store.champion_version() == a
    verdict = store.versions / b / "verdict.json"
    assert not verdict.exists() or "promotion" not in json.loads(verdict.read_text()), "b was never champion"
    assert [r["version"] for r in store.history()] == [a, b]

    assert store.promote(b, "better, second try") == (a, b)  # the stray temporary card is no obstacle
    assert_champion(store, b, HIGH)
    assert tmp_leftovers(store.folder) == []
    store.rollback()
    assert_champion(store, a, LOW)


CRASH_HELPER = r"""
import os, sys, time
from models.registry import ModelStore

store, a, b = ModelStore(sys.argv[1]), sys.argv[2], sys.argv[3]
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:  # the child promotes a and b in turn as fast as it can, until it is killed (or 30 s pass)
        try:
            n, deadline = 0, time.monotonic() + 30
            while time.monotonic() < deadline:
                store.promote(b if n % 2 == 0 else a, "crash test")
                n += 1
        finally:
            os._exit(3)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


def test_a_promotion_killed_at_any_moment_leaves_one_of_the_two_champions_loadable(store):
    a, b = add(store, LOW), add(store, HIGH)
    store.promote(a, "first")
    members = {a: LOW, b: HIGH}
    # one interpreter start (imports take seconds); each round forks a fresh promoting process and SIGKILLs it
    helper = subprocess.Popen([sys.executable, "-c", CRASH_HELPER, str(store.model_path), a, b], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rng = random.Random(7)
    seen, child = [], None
    try:
        assert helper.stdout.readline().strip() == "ready"
        for _ in range(20):
            helper.stdin.write("go\n")
            helper.stdin.flush()
            child = int(helper.stdout.readline())
            time.sleep(rng.uniform(0.01, 0.3))
            with contextlib.suppress(ProcessLookupError):  # it ended by itself: said just below
                os.kill(child, signal.SIGKILL)
            status = int(helper.stdout.readline())
            child = None
            assert status == -signal.SIGKILL, f"the promoting process ended by itself (exit status {status})"
            model = loaded(store)
            assert model.version in members
            assert expected_r(model) == pytest.approx(members[model.version][0]), "card and file agree"
            seen.append(model.version)
    finally:
        if child is not None:  # the test failed between fork and kill: end the promoting process it started
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        helper.stdin.close()
        try:
            helper.wait(timeout=10)
        except subprocess.TimeoutExpired:
            helper.kill()
    assert set(seen) == {a, b}, f"the kills should land on both champions: {seen}"
    assert [r["version"] for r in store.history()] == [a, b]
    champion = store.champion_version()
    other = b if champion == a else a
    assert store.promote(other, "after the crashes") == (champion, other)
    assert_champion(store, other, members[other])
    assert [p.name for p in store.folder.iterdir() if p.name.endswith(".tmp")] == [], "no temporary card is left"
    assert store.rollback() == (other, champion)
    assert_champion(store, champion, members[champion])


# ---------------------------------------------------------------------------------------------- half-written versions
class CrashesWhenPickled:
    def __reduce__(self):
        raise RuntimeError("killed while writing the model")


def crash_while_renaming_the_version(store: ModelStore, monkeypatch) -> None:
    """add() dies at the rename that publishes the version: model and card complete in the temporary folder."""
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent == store.versions and Path(src).name.startswith("."):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(registry.os, "replace", replace)
    with pytest.raises(OSError):
        add(store, MID)
    monkeypatch.undo()


def test_a_half_written_version_is_never_pruned_counted_or_promoted(tmp_path, monkeypatch):
    store = ModelStore(tmp_path / "models" / "meta_model.joblib", keep=2)
    a, b, c = add(store, LOW), add(store, HIGH), add(store, MID)
    crash_while_renaming_the_version(store, monkeypatch)  # a complete card in the temporary folder
    with pytest.raises(RuntimeError, match="killed while writing"):
        store.add(CrashesWhenPickled(), card_for())  # a partial model file and no card
    leftovers = sorted(p.name for p in store.versions.iterdir() if p.name.startswith("."))
    assert len(leftovers) == 2 and all(n.endswith(".tmp") for n in leftovers)

    store.promote(b, "b")
    assert store.promote(c, "c") == (b, c)  # prunes with keep=2: a goes, b is the previous
    assert version_dirs(store) == [b, c] and a not in version_dirs(store)
    assert sorted(p.name for p in store.versions.iterdir() if p.name.startswith(".")) == leftovers
    assert store.prune() == []
    assert_champion(store, c, MID)
    assert store.rollback() == (c, b)
    assert_champion(store, b, HIGH)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        store.rollback()

    d = add(store, LOW)  # the leftovers do not stand in the way of the next version
    assert d not in (b, c) and not d.startswith(".")
    store.promote(d, "d")
    assert_champion(store, d, LOW)


@pytest.mark.parametrize("card", ["complete", "half-written"])
def test_history_leaves_out_a_version_folder_left_half_written_by_a_crash(store, monkeypatch, card):
    a = add(store, LOW)
    store.promote(a, "a")
    if card == "complete":
        crash_while_renaming_the_version(store, monkeypatch)
    else:  # killed while writing the card of the next version
        tmp = store.versions / ".20990101T000000Z.tmp"
        tmp.mkdir()
        joblib.dump(ConstantEnsemble(MID), tmp / "meta_model.joblib")
        (tmp / "meta_model.json").write_text(json.dumps(card_for())[:100])
    assert [r["version"] for r in store.history()] == [a]


def test_a_version_folder_without_a_card_is_not_listed_or_promoted(store):
    a = add(store, LOW)
    store.promote(a, "a")
    stray = store.versions / "20991231T235959Z"
    stray.mkdir()
    joblib.dump(ConstantEnsemble(HIGH), stray / "meta_model.joblib")
    assert [r["version"] for r in store.history()] == [a]
    with pytest.raises(RegistryError, match="no model version"):
        store.promote(stray.name, "by hand")
    assert_champion(store, a, LOW)


def test_a_version_folder_without_a_card_does_not_cost_a_kept_version(tmp_path):
    store = ModelStore(tmp_path / "models" / "meta_model.joblib", keep=2)
    a, b, c = add(store, LOW), add(store, HIGH), add(store, MID)
    store.promote(c, "c")
    (store.versions / "20991231T235959Z").mkdir()  # e.g. a copy that never finished
    store.prune()
    assert [r["version"] for r in store.history()] == [b, c], f"{a} only should go"


# ---------------------------------------------------------------------------------------------- rollback
def test_rollback_returns_to_the_champion_before(store):
    with pytest.raises(RegistryError, match="no champion"):
        store.rollback()
    a, b = add(store, LOW), add(store, HIGH)
    store.promote(a, "a")
    with pytest.raises(RegistryError, match=r"records no earlier champion.*nothing to roll back"):
        store.rollback()
    store.promote(b, "b")
    assert store.rollback() == (b, a)
    assert_champion(store, a, LOW)
    with pytest.raises(RegistryError, match=f"the champion {a} records no earlier champion"):
        store.rollback()
    assert_champion(store, a, LOW)
    assert "rollback from" in json.loads((store.versions / a / "verdict.json").read_text())["promotion"]


def test_promoting_the_champion_again_keeps_the_way_back(store):
    a, b = add(store, LOW), add(store, HIGH)
    store.promote(a, "a")
    store.promote(b, "b")
    store.promote(b, "b again")  # e.g. a hand re-install: a rollback must not return to b itself
    assert store.champion()["previous"] == a
    assert store.rollback() == (b, a)
    assert_champion(store, a, LOW)


def test_a_promotion_judged_against_another_champion_changes_nothing(store):
    a, b, c = add(store, LOW), add(store, MID), add(store, HIGH)
    store.promote(a, "a")
    store.promote(b, "b")  # while c was being judged against a
    with pytest.raises(RegistryError, match=f"the champion changed from {a} to {b}"):
        store.promote(c, "c beat a", expect=a)
    assert_champion(store, b, MID)
    store.promote(c, "c beat b", expect=b)
    assert_champion(store, c, HIGH)


def test_a_verdict_written_after_the_promotion_keeps_the_way_back(store):
    """The retrain records its verdict after promoting: what the promotion wrote (the champion it replaced) must
    survive it, or a second rollback would stop short."""
    a, b, c = add(store, LOW), add(store, MID), add(store, HIGH)
    store.promote(a, "a")
    store.promote(b, "b")
    store.record(b, {"verdict": "promoted", "why": "won its duel"})
    store.promote(c, "c")
    assert store.rollback() == (c, b) and store.rollback() == (b, a)
    assert json.loads((store.versions / b / "verdict.json").read_text())["why"] == "won its duel"


def test_rollback_walks_back_through_the_champions_not_forth(store):
    a, b, c = add(store, LOW), add(store, MID), add(store, HIGH)
    for v in (a, b, c):
        store.promote(v, v)
    assert store.rollback() == (c, b)
    assert_champion(store, b, MID)
    assert store.rollback() == (b, a)
    assert_champion(store, a, LOW)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        store.rollback()
    d = add(store, MID)  # a new champion after rolling back: its rollback returns to a, not to c
    store.promote(d, "d")
    assert store.rollback() == (d, a)
    assert_champion(store, a, LOW)


# ---------------------------------------------------------------------------------------------- prune
def test_prune_removes_the_oldest_beyond_keep(tmp_path):
    store = ModelStore(tmp_path / "models" / "meta_model.joblib", keep=2)
    v = [add(store, LOW if i % 2 else HIGH) for i in range(5)]
    store.promote(v[3], "v3")
    assert store.promote(v[4], "v4") == (v[3], v[4])  # promote prunes: keep 2 of 5
    assert version_dirs(store) == v[3:]
    assert_champion(store, v[4], HIGH)
    assert store.rollback() == (v[4], v[3])
    assert_champion(store, v[3], LOW)


def test_prune_never_removes_the_champion_or_the_one_before(tmp_path):
    store = ModelStore(tmp_path / "models" / "meta_model.joblib", keep=2)
    v = [add(store, LOW), add(store, HIGH), add(store, MID)]
    store.promote(v[0], "old one")
    store.promote(v[1], "newer")
    v += [add(store, MID), add(store, HIGH)]
    assert store.prune() == [v[2]]
    assert version_dirs(store) == [v[0], v[1], v[3], v[4]]
    assert store.prune() == [], "nothing more to remove: the rest is protected or among the 2 newest"
    assert_champion(store, v[1], HIGH)
    assert store.rollback() == (v[1], v[0])
    assert_champion(store, v[0], LOW)


# ---------------------------------------------------------------------------------------------- legacy layout
def legacy_model(store: ModelStore, members) -> str:
    """A model written in place beside its card, as write_model did before versions: returns its sha256."""
    store.folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(ConstantEnsemble(members), store.model_path)
    card = {**card_for(), "sha256": sha256_file(store.model_path), "model_file": "meta_model.joblib"}
    store.card_file.write_text(json.dumps(card))
    return card["sha256"]


def test_a_legacy_in_place_model_is_archived_by_promotion_and_rollback_returns_to_it(store):
    sha = legacy_model(store, LOW)
    legacy_bytes = store.model_path.read_bytes()
    model = loaded(store)
    assert model.version == "unversioned" and expected_r(model) == pytest.approx(0.1)

    b = add(store, HIGH)
    old, new = store.promote(b, "first versioned model")
    assert new == b and old is not None and old != b
    assert_champion(store, b, HIGH)
    archived = store.versions / old
    assert (archived / "meta_model.joblib").read_bytes() == legacy_bytes, "archived by its bytes"
    assert json.loads((archived / "meta_model.json").read_text())["sha256"] == sha
    assert json.loads(store.card_file.read_text())["previous"] == old

    assert store.rollback() == (b, old)
    model = loaded(store)
    assert model.version == old and model.card["sha256"] == sha and expected_r(model) == pytest.approx(0.1)


def test_archiving_a_legacy_model_does_not_vouch_for_a_file_that_changed_since_training(store):
    legacy_model(store, LOW)
    joblib.dump(ConstantEnsemble(HIGH), store.model_path)  # replaced behind the card's back
    with pytest.raises(ModelError, match="sha256"):
        load_meta_model(store.model_path, PARAMS)
    b = add(store, MID)
    store.promote(b, "retrained")
    try:
        store.rollback()
    except RegistryError:
        return  # refusing to archive it is fine too
    with pytest.raises(ModelError, match="sha256"):
        load_meta_model(store.model_path, PARAMS)


# ---------------------------------------------------------------------------------------------- the card's model_file
class LeavesAMark:
    """Unpickling it creates `path`: proof that a file was loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_card_pointing_outside_the_model_folder_is_refused_before_unpickling(tmp_path):
    store = ModelStore(tmp_path / "models" / "meta_model.joblib")
    store.folder.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "meta_model.joblib"
    elsewhere.parent.mkdir()
    mark = tmp_path / "unpickled"
    joblib.dump(LeavesAMark(mark), elsewhere)
    card = {**card_for(), "sha256": sha256_file(elsewhere), "model_file": "versions/../../elsewhere/meta_model.joblib"}
    store.card_file.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="outside"):
        load_meta_model(store.model_path, PARAMS)
    assert not mark.exists(), "the file outside was unpickled"


def test_a_card_naming_a_missing_version_says_to_roll_back(store):
    a = add(store, LOW)
    store.promote(a, "a")
    card = json.loads(store.card_file.read_text())
    store.card_file.write_text(json.dumps({**card, "model_file": "versions/20000101T000000Z/meta_model.joblib"}))
    with pytest.raises(ModelError, match="rollback"):
        load_meta_model(store.model_path, PARAMS)


# ---------------------------------------------------------------------------------------------- the command line
def cli(command: str, store: ModelStore, tmp_path: Path) -> subprocess.CompletedProcess:
    env_file = tmp_path / "registry.env"
    env_file.write_text(f"MODEL_PATH={store.model_path}\n")
    settings = {s.env for s in SPECS}
    env = {k: v for k, v in os.environ.items() if k not in settings and not k.startswith(("ALPACA_", "PROFILE"))}
    return subprocess.run([sys.executable, "-m", "models.train", command, "--env-file", str(env_file)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_history_and_rollback_from_the_command_line(store, tmp_path):
    a, b, c = add(store, LOW), add(store, HIGH), add(store, MID)
    store.promote(a, "a")
    store.promote(b, "b")

    r = cli("history", store, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if any(v in line for v in (a, b, c))]
    assert len(lines) == 3, r.stdout
    marked = [line for line in lines if line.startswith("* ")]
    assert len(marked) == 1 and marked[0].split()[1] == b, r.stdout
    assert [line.split()[1] if line.startswith("*") else line.split()[0] for line in lines] == [a, b, c]

    r = cli("rollback", store, tmp_path)
    assert r.returncode == 0, r.stderr
    said = re.search(r"the champion was (\S+), it is (\S+) again", r.stdout)
    assert said and said.groups() == (b, a), r.stdout
    assert_champion(store, a, LOW)

    r = cli("rollback", store, tmp_path)
    assert r.returncode == 2
    assert "error:" in r.stderr and "nothing to roll back" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert_champion(store, a, LOW)


def test_rollback_without_any_model_fails_cleanly_from_the_command_line(store, tmp_path):
    r = cli("rollback", store, tmp_path)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "no champion" in r.stderr, r.stderr
