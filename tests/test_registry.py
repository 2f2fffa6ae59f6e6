import os
import json
import os
import zipfile

import numpy as np
import pytest
import skops.io as sio

from _corpus import small_model
from triage import registry
from triage.persist import UntrustedModelError, load_skops
from triage.registry import ModelDirectoryError

pytestmark = pytest.mark.slow


@pytest.fixture()
def saved(tmp_path):
    model, frame = small_model()
    d = registry.save_version(model, root=tmp_path, version="v1", metrics={"heads": {}}, data={"sha256": "abc", "rows": 1})
    return d, model, frame


def test_round_trip_identical_predictions(saved):
    d, model, frame = saved
    loaded, manifest = registry.load_model(d)
    a, b = model.predict_proba(frame.head(30)), loaded.predict_proba(frame.head(30))
    for head in a:
        np.testing.assert_allclose(a[head], b[head], rtol=1e-6)
    assert manifest["heads"]["track"] == list(model.classes_["track"])
    for key in ("backend", "config", "metrics", "data", "libraries", "created_at", "model_sha256"):
        assert key in manifest
    assert (d / "MODEL_CARD.md").read_text(encoding="utf-8").count("不是法律认定") == 1


def test_tampered_model_file_refused(saved):
    d, *_ = saved
    path = d / "model.skops"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelDirectoryError, match="校验值"):
        registry.load_model(d)


def test_untrusted_types_refused_even_with_matching_hash(saved, tmp_path):
    d, *_ = saved
    import os

    evil = tmp_path / "evil.skops"
    sio.dump({"run": os.system}, evil)
    (d / "model.skops").write_bytes(evil.read_bytes())
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    manifest["model_sha256"] = registry.sha256_file(d / "model.skops")
    (d / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(UntrustedModelError, match="不受信任"):
        registry.load_model(d)


def test_pickle_file_is_not_a_model(tmp_path):
    import pickle

    p = tmp_path / "model.skops"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(UntrustedModelError):
        load_skops(p)


def test_foreign_or_broken_directories(tmp_path, saved):
    d, *_ = saved
    with pytest.raises(ModelDirectoryError, match="manifest.json"):
        registry.load_model(tmp_path)  # a directory without a manifest
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    m["backend"] = "mystery.v9"
    (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="未知后端"):
        registry.load_model(d)
    (d / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="无法解析"):
        registry.load_model(d)


def test_other_library_version_refused(saved):
    d, *_ = saved
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    m["libraries"]["scikit-learn"] = "0.24.2"
    (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="不兼容"):
        registry.load_model(d)


def test_champion_promote_and_rollback(tmp_path):
    model, _ = small_model()
    registry.save_version(model, root=tmp_path, version="a")
    registry.save_version(model, root=tmp_path, version="b")
    with pytest.raises(ModelDirectoryError, match="冠军"):
        registry.resolve(None, tmp_path)
    registry.set_champion("a", tmp_path)
    registry.set_champion("b", tmp_path)
    assert registry.resolve(None, tmp_path).name == "b"
    assert registry.rollback(tmp_path) == "a"
    assert registry.champion(tmp_path) == "a"
    listing = registry.list_versions(tmp_path)
    assert [v["version"] for v in listing] == ["a", "b"] and listing[0]["champion"]


def test_model_file_is_compact_zip(saved):
    d, *_ = saved
    with zipfile.ZipFile(d / "model.skops") as z:
        names = z.namelist()
    assert any(n.endswith(".npy") for n in names)  # vocabularies stored as arrays
    assert "schema.json" in names


def test_version_directory_is_readable_by_other_users(saved):
    d, _, _ = saved
    mode = d.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not mkdtemp's private 0700
