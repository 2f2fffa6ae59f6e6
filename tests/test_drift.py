"""Drift: chi-square + PSI on label counts, confidence drop, batches from the review database."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from triage import drift, registry
from triage.store import open_store

REF = {
    "labels": {"track": {"普通信访": 800, "涉法涉诉": 200}, "department": {"住建局": 500, "人社局": 300, "教育局": 200}},
    "mean_confidence": {"track": 0.90, "department": 0.80},
    "std_confidence": {"track": 0.10, "department": 0.15},
    "conf_n": {"track": 1000, "department": 1000},
}


def observed(track, dept, conf=None, n=None):
    out = {"labels": {"track": track, "department": dept}, "mean_confidence": conf or {}, "conf_n": {}}
    if n:
        out["conf_n"] = {"track": n, "department": n}
    return out


def test_psi_zero_for_same_distribution_and_large_for_a_shift():
    assert drift.psi([80, 20], [800, 200]) == pytest.approx(0.0, abs=1e-9)
    assert drift.psi([20, 80], [80, 20]) > 1.0


def test_same_distribution_not_flagged():
    r = drift.compare(REF, observed({"普通信访": 400, "涉法涉诉": 100}, {"住建局": 250, "人社局": 150, "教育局": 100}))
    assert not any(h.shifted for h in r.values())


def test_real_shift_flagged():
    r = drift.compare(REF, observed({"普通信访": 200, "涉法涉诉": 300}, {"住建局": 250, "人社局": 150, "教育局": 100}))
    assert r["track"].shifted and r["track"].p_value < 0.005 and r["track"].psi >= 0.2
    assert not r["department"].shifted


def test_trivial_shift_in_huge_samples_is_significant_but_not_flagged():
    big = {**REF, "labels": {h: {k: v * 1000 for k, v in c.items()} for h, c in REF["labels"].items()}}
    r = drift.compare(big, observed({"普通信访": 760_000, "涉法涉诉": 240_000}, {"住建局": 500_000, "人社局": 300_000, "教育局": 200_000}))
    t = r["track"]
    assert t.p_value < 1e-10  # "significant" …
    assert t.psi < 0.2 and not t.shifted  # … but too small to matter


def test_small_reference_is_treated_as_a_sample():
    # the same apparent shift (80/20 -> 50/50) is significant against 1000 reference letters,
    # not against 20
    obs = observed({"普通信访": 100, "涉法涉诉": 100}, {"住建局": 100, "人社局": 60, "教育局": 40})
    assert drift.compare(REF, obs)["track"].shifted
    small = {**REF, "labels": {"track": {"普通信访": 16, "涉法涉诉": 4}, "department": {"住建局": 10, "人社局": 6, "教育局": 4}}}
    t = drift.compare(small, obs)["track"]
    assert t.p_value > 0.005 and not t.shifted


def test_small_batch_large_apparent_shift_not_significant():
    r = drift.compare(REF, observed({"普通信访": 3, "涉法涉诉": 3}, {"住建局": 2, "人社局": 2, "教育局": 2}))
    assert r["track"].psi >= 0.2 and not r["track"].shifted


def test_confidence_drop_flagged_only_when_large_and_significant():
    same = observed({"普通信访": 400, "涉法涉诉": 100}, {"住建局": 250, "人社局": 150, "教育局": 100}, {"track": 0.80, "department": 0.79}, n=500)
    r = drift.compare(REF, same)
    assert r["track"].confidence_dropped and not r["department"].confidence_dropped
    few = observed({"普通信访": 4, "涉法涉诉": 1}, {"住建局": 3, "人社局": 1, "教育局": 1}, {"track": 0.80, "department": 0.79}, n=5)
    assert not drift.compare(REF, few)["track"].confidence_dropped


def test_prediction_stats_matches_scorer_output_shape():
    pred = pd.DataFrame(
        {
            "track": ["普通信访", "涉法涉诉", "普通信访"],
            "track_confidence": [0.9, 0.7, 0.8],
            "route": ["", "诉讼", ""],
            "route_confidence": [None, 0.6, None],
            "department": ["住建局", "政法委", "住建局"],
            "department_confidence": [0.5, 0.6, 0.7],
            "risk": ["低", "高", "低"],
        }
    )
    s = drift.prediction_stats(pred)
    assert s["labels"]["route"] == {"诉讼": 1}
    assert s["labels"]["department"] == {"住建局": 2, "政法委": 1}
    assert s["mean_confidence"]["track"] == pytest.approx(0.8)
    assert s["conf_n"]["route"] == 1 and "risk" not in s["mean_confidence"]


# ---- end to end: a manifest and batches in the review database --------------------------


def _version(root, name="v1", reference=REF, label_counts=None):
    d = root / name
    d.mkdir(parents=True)
    manifest = {
        "format": registry.MANIFEST_FORMAT,
        "version": name,
        "backend": "tfidf-linear.v1",
        "model_file": "model.skops",
        "model_sha256": "0" * 64,
        "heads": {"track": ["普通信访", "涉法涉诉"]},
        "config": {},
        "metrics": {"reference": reference} if reference else {},
        "data": {"label_counts": label_counts or {}},
    }
    (d / registry.MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    (root / registry.CHAMPION_FILE).write_text(name + "\n", encoding="utf-8")
    return d


def _batch(track, dept, conf):
    return {"scored": sum(track.values()), "labels": {"track": track, "department": dept}, "mean_confidence": conf}


def test_drift_report_from_database(tmp_path, sqlite_url):
    _version(tmp_path / "models")
    st = open_store(sqlite_url)
    try:
        st.record_batch("b-other", "v0", _batch({"涉法涉诉": 999}, {"教育局": 999}, {"track": 0.1}))  # another model: ignored
        for i in range(3):
            st.record_batch(f"b{i}", "v1", _batch({"普通信访": 100, "涉法涉诉": 150}, {"住建局": 125, "人社局": 75, "教育局": 50}, {"track": 0.88, "department": 0.80}))
    finally:
        st.close()
    r = drift.drift_report(sqlite_url, root=tmp_path / "models")
    assert r.batches == ["b0", "b1", "b2"]
    assert r.reference_kind == "holdout_predictions"
    assert r.heads["track"].shifted and not r.heads["department"].shifted
    assert r.heads["track"].n == 750
    assert r.drifted
    text = r.report()
    assert "分布漂移" in text and "Bonferroni" in text and "检测到显著漂移" in text


def test_drift_report_without_batches_and_with_label_count_fallback(tmp_path, sqlite_url):
    _version(tmp_path / "models", reference=None, label_counts=REF["labels"])
    r = drift.drift_report(sqlite_url, root=tmp_path / "models")
    assert r.reference_kind == "training_labels"
    assert not r.drifted and "还没有任何分拣批次" in r.report()


def test_corrupted_model_directory_surfaces(tmp_path, sqlite_url):
    d = _version(tmp_path / "models")
    (d / registry.MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(registry.ModelDirectoryError, match="无法解析"):
        drift.drift_report(sqlite_url, root=tmp_path / "models")
    with pytest.raises(registry.ModelDirectoryError):
        drift.drift_report(sqlite_url, model="nope", root=tmp_path / "models")
