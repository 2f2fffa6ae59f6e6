"""Label quality: own confident-learning implementation and the second-look CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triage import schema
from triage.quality import confident_issues, find_label_issues, flag_label_issues
from triage.store import open_store
from triage.synth import generate

PARAMS = {"backend_params": {"featurizer_params": {"max_word_features": 3000, "max_char_features": 3000}}}


def test_confident_issues_thresholds_are_per_class_self_confidence():
    classes = ["A", "B", "C"]
    proba = np.array(
        [
            [0.9, 0.05, 0.05],  # A, confident
            [0.7, 0.2, 0.1],  # A
            [0.1, 0.8, 0.1],  # labelled A, model says B strongly  -> flagged
            [0.1, 0.7, 0.2],  # B
            [0.2, 0.6, 0.2],  # B
            [0.1, 0.1, 0.8],  # C
            [0.3, 0.3, 0.4],  # labelled C, p_C 0.4 < t_C but no class above its threshold
        ]
    )
    given = ["A", "A", "A", "B", "B", "C", "C"]
    out = confident_issues(given, proba, classes)
    t_a = (0.9 + 0.7 + 0.1) / 3
    assert list(out["position"]) == [2]
    row = out.iloc[0]
    assert row["given"] == "A" and row["suggested"] == "B"
    assert row["threshold_given"] == pytest.approx(t_a)
    assert row["p_given"] == pytest.approx(0.1) and row["p_suggested"] == pytest.approx(0.8)


def test_unlabelled_and_unknown_labels_are_ignored():
    proba = np.array([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8]])
    out = confident_issues([None, "A", "Z"], proba, ["A", "B"])
    assert out.empty


@pytest.mark.slow
def test_flipped_department_labels_are_found():
    frame = generate(400, 4)
    # the five commonest departments: a task the small test model learns (out-of-fold accuracy
    # ~0.85); with 20 classes and 200 letters per fold it is too weak for any noise finder
    frame = frame[frame["department"].isin(frame["department"].value_counts().index[:5])].reset_index(drop=True)
    depts = frame["department"].tolist()
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(frame), len(frame) // 10, replace=False)
    choices = sorted(set(depts))
    noisy = list(depts)
    for i in flipped:
        noisy[i] = next(c for c in rng.permutation(choices) if c != depts[i])
    reviewed = np.ones(len(frame), dtype=bool)
    issues = find_label_issues(frame, {"department": noisy}, reviewed, folds=3, seed=0, model_params=PARAMS)
    flagged = set(issues["letter_id"])
    truly = set(frame["id"].iloc[flipped])
    recall = len(flagged & truly) / len(truly)
    precision = len(flagged & truly) / max(len(flagged), 1)
    # 10 % of labels are wrong: a random list of any length has precision ~0.1
    assert recall >= 0.5, (recall, precision)
    assert precision >= 0.25, (recall, precision)
    assert (issues["given"] != issues["suggested"]).all()


@pytest.mark.slow
def test_flag_label_issues_writes_chinese_csv_of_reviewed_labels_only(tmp_path):
    base = generate(200, 6)
    base.to_csv(tmp_path / "corpus.csv", index=False)
    letters = generate(60, 17)
    letters["id"] = [f"R{i:03d}" for i in range(len(letters))]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    st = open_store(url)
    st.upsert_scored(letters.drop(columns=["track", "route", "department", "risk", "risk_reasons"]).to_dict("records"), "m0", "b0")
    depts = sorted(set(schema.department_labels()))
    wrong = {}
    for i, row in enumerate(letters.itertuples()):
        label = row.department
        if i % 6 == 0:  # every sixth clerk decision is wrong
            label = next(d for d in depts if d != row.department)
            wrong[row.id] = label
        st.add_events(row.id, [("department", label)], "王科员", "correct")
    st.close()
    res = flag_label_issues(url, tmp_path / "corpus.csv", tmp_path / "out" / "issues.csv", folds=3, model_params=PARAMS)
    assert res.reviewed_labels == 60
    assert set(res.issues["letter_id"]) <= set(letters["id"])  # base-corpus letters are not listed
    assert len(set(res.issues["letter_id"]) & set(wrong)) >= 5
    table = pd.read_csv(res.path, encoding="utf-8-sig", dtype=str)
    assert list(table.columns)[:4] == ["编号", "分类项", "人工标签", "模型认为更可能"]
    assert set(table["分类项"]) == {"责任单位"}
    assert set(table["复核人"]) == {"王科员"}
    assert "二次复核" in res.report()
