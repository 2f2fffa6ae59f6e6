"""Retraining runs end to end on small synthetic corpora, SQLite stores and model roots in tmp.

A good challenger (more correct data) is promoted; one trained on shuffled labels is refused;
an exception after saving leaves the champion alone; a corrupted champion is reported; an
empty database trains nothing; a one-class head is skipped and blocks promotion; a version
is reproduced from its manifest.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from triage import registry, schema
from triage.retrain import models_list, models_promote, models_rollback, models_show, reproduce, retrain
from triage.store import open_store
from triage.synth import generate
from triage.train import train_version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
_spec = importlib.util.spec_from_file_location("gate_demo", ROOT / "bench" / "gate_demo.py")
gate_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate_demo)

pytestmark = pytest.mark.slow

PARAMS = {"backend_params": {"featurizer_params": {"max_word_features": 3000, "max_char_features": 3000}}}
QUIET = {"log": lambda _m: None}


def _letters(n=200, seed=9):
    new = generate(n, seed)
    new["id"] = [f"N{i:04d}" for i in range(len(new))]
    return new


def make_db(path, letters, *, shuffle=False, heads=gate_demo.LABEL_HEADS, seed=0):
    """Score ``letters`` into a fresh SQLite store and record a clerk's decision for every head
    (the same helper bench/gate_demo.py uses at full scale)."""
    return gate_demo.review_db(path, letters, shuffle=shuffle, heads=heads, seed=seed, model_version="m0")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Base corpus (240 letters), a champion trained on 100 other letters, reviewed databases."""
    d = tmp_path_factory.mktemp("world")
    generate(240, 3).to_csv(d / "corpus.csv", index=False)
    generate(100, 21).to_csv(d / "small.csv", index=False)
    champ_dir, _ = train_version(d / "small.csv", out=d / "models", model_params=PARAMS, promote=True, **QUIET)
    letters = _letters()
    return {
        "dir": d,
        "base": d / "corpus.csv",
        "models": d / "models",
        "champion": champ_dir.name,
        "good_db": make_db(d / "good.db", letters),
        "bad_db": make_db(d / "bad.db", letters, shuffle=True),
    }


def _root(world, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(world["models"], root)
    return root


@pytest.fixture(scope="module")
def good_run(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("good") / "models"
    shutil.copytree(world["models"], root)
    res = retrain(world["good_db"], world["base"], root=root, model_params=PARAMS, plots=False, **QUIET)
    return res, root


def test_good_challenger_is_promoted(world, good_run):
    res, root = good_run
    assert res.status == "promoted", res.report()
    assert registry.champion(root) == res.version != world["champion"]
    d = res.decision
    assert d.promote and d.gain > 0.02
    assert d.primary_set == "recent"  # 40 newest reviewed letters >= 30
    rep = res.dataset
    assert rep.reviewed_letters == 200 and rep.recent_letters == 40
    assert sum(rep.used["department"].values()) == 160  # the 40 newest are not trained on
    assert rep.used["department"] == rep.corrected["department"]
    text = res.report()
    assert "晋升挑战者为冠军" in text and "训练使用复核标签" in text and f"{d.challenger_primary:.4f}" in text
    manifest = registry.read_manifest(res.directory)
    assert manifest["training"]["kind"] == "retrain" and manifest["training"]["seed"] == 0
    assert manifest["data"]["holdout"]["n"] == 48
    assert (res.directory / "holdout_ids.txt").read_text(encoding="utf-8").count("\n") == 48
    assert manifest["metrics"]["reference"]["labels"]["track"]  # drift reference
    assert "text" not in (res.directory / "labels_snapshot.csv").read_text(encoding="utf-8").splitlines()[0]


def test_shuffled_labels_are_refused(world, tmp_path):
    root = _root(world, tmp_path)
    res = retrain(world["bad_db"], world["base"], root=root, model_params=PARAMS, plots=False, **QUIET)
    assert res.status == "kept", res.report()
    assert registry.champion(root) == world["champion"]
    assert not res.decision.promote
    drops = [r for r in res.decision.table if r["set"] == "holdout" and r["delta"] < -0.01]
    assert drops, res.decision.table  # the fixed held-out set (true labels) exposes the damage
    assert any("下降" in r and "固定留出集" in r for r in res.decision.reasons)
    assert "保留原冠军" in res.report()
    assert (root / res.version / registry.MANIFEST).is_file()  # saved for inspection, not promoted


def test_exception_after_save_never_replaces_champion(world, tmp_path):
    root = _root(world, tmp_path)

    def boom(directory):
        assert (directory / registry.MANIFEST).is_file()
        raise RuntimeError("simulated crash after save")

    with pytest.raises(RuntimeError, match="simulated crash"):
        retrain(world["good_db"], world["base"], root=root, model_params=PARAMS, plots=False, _after_save=boom, **QUIET)
    assert registry.champion(root) == world["champion"]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no half-written directories left


def test_corrupted_champion_is_reported_and_not_replaced(world, tmp_path):
    root = _root(world, tmp_path)
    model_file = root / world["champion"] / "model.skops"
    raw = bytearray(model_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    res = retrain(world["good_db"], world["base"], root=root, model_params=PARAMS, plots=False, **QUIET)
    assert res.status == "kept"
    assert registry.champion(root) == world["champion"]
    assert "无法加载" in res.report() and "校验值" in res.report()


def test_empty_database_trains_nothing(world, tmp_path):
    root = _root(world, tmp_path)
    before = sorted(p.name for p in root.iterdir())
    res = retrain(f"sqlite:///{tmp_path / 'empty.db'}", world["base"], root=root, model_params=PARAMS, **QUIET)
    assert res.status == "no_labels" and res.version is None
    assert "没有可用的人工复核标签" in res.report()
    assert sorted(p.name for p in root.iterdir()) == before


def test_only_labels_outside_taxonomy_are_listed_and_nothing_trained(world, tmp_path):
    old = tmp_path / "old.toml"
    old.write_text(
        schema.DEFAULT_TAXONOMY.read_text(encoding="utf-8") + '\n[[department]]\nname = "老干部局"\nremit = "离退休干部"\ncategories = ["其他"]\n',
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'old.db'}"
    st = open_store(url, taxonomy=old)
    st.upsert_scored([{"id": "X1", "title": "离休待遇", "text": "反映离休干部待遇落实问题"}], "m0", "b0")
    st.add_event("X1", "department", "老干部局", "clerk", "correct")
    st.close()
    res = retrain(url, world["base"], root=_root(world, tmp_path), model_params=PARAMS, **QUIET)
    assert res.status == "no_labels"
    assert res.dataset.unknown_labels == [("X1", "department", "老干部局")]
    assert "老干部局" in res.report()


def test_one_class_head_is_skipped_and_blocks_promotion(world, tmp_path):
    base = generate(120, 5)
    base["risk"] = "低"
    base["risk_reasons"] = ""
    base.to_csv(tmp_path / "flat.csv", index=False)
    letters = _letters(40, 13)
    url = make_db(tmp_path / "flat.db", letters, heads=("track", "department"))
    res = retrain(url, tmp_path / "flat.csv", root=tmp_path / "empty_models", model_params=PARAMS, plots=False, **QUIET)
    assert res.dataset.one_class_heads == {"risk": ["低"]}
    assert res.status == "kept" and registry.champion(tmp_path / "empty_models") is None
    assert "只有 1 个类别" in res.report() and "风险等级" in res.report()


def test_reproduce_from_manifest(world, good_run):
    res, root = good_run
    rep = reproduce(res.directory, world["good_db"])
    assert rep.ok, rep.report()
    assert {r["set"] for r in rep.compared} == {"holdout", "recent"}
    assert "指标一致" in rep.report()
    # the champion made by `triage train` reproduces too
    assert reproduce(root / world["champion"]).ok


def test_reproduce_refuses_changed_data(world, tmp_path):
    data = tmp_path / "small.csv"
    shutil.copyfile(world["dir"] / "small.csv", data)
    d, _ = train_version(data, out=tmp_path / "m", model_params=PARAMS, **QUIET)
    with open(data, "a", encoding="utf-8") as fh:
        fh.write("\n")
    rep = reproduce(d)
    assert not rep.ok and "训练数据已改变" in rep.report()


def test_models_list_show_promote_rollback(world, good_run):
    res, root = good_run
    listing = models_list(root)
    assert f"★ {res.version}" in listing and world["champion"] in listing
    shown = models_show(None, root)
    assert res.version in shown and "（冠军）" in shown and "最近复核集" in shown and "晋升判定：晋升" in shown
    assert models_rollback(root).endswith(world["champion"])
    assert registry.champion(root) == world["champion"]
    assert models_promote(res.version, root).endswith(res.version)
    assert registry.champion(root) == res.version
    with pytest.raises(registry.ModelDirectoryError):
        models_show("no-such-version", root)
