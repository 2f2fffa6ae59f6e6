"""Learning-curve bench on a tiny synthetic corpus (no real letters): exit codes, outputs,
the measurement (mean of repeats, first crossing) and that the uncertainty order takes the
letters the queue's measure ranks first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from triage import active

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("learning_curve", ROOT / "bench" / "learning_curve.py")
lc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lc)


def _corpus(path: Path, n: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    vocab = {c: [f"{c}{i}" for i in range(12)] for c in ("甲", "乙", "丙")}
    shared = [f"共{i}" for i in range(30)]
    rows = []
    for k in range(n):
        c = ("甲", "乙", "丙")[k % 3]
        words = list(rng.choice(vocab[c], 3)) + list(rng.choice(shared, 8))
        rows.append({"tokens": " ".join(words), "label": c})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_missing_file_exits_2(tmp_path, capsys):
    assert lc.main([str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 2
    assert "找不到数据文件" in capsys.readouterr().err


def test_folder_means_its_teddy2020_csv(tmp_path, capsys):
    (tmp_path / "teddy2020").mkdir()
    _corpus(tmp_path / "teddy2020" / "train_segmented.csv")
    assert lc.main([str(tmp_path), "--out", str(tmp_path / "out"), "--start", "20", "--step", "60", "--repeats", "1", "--quiet"]) == 0
    assert (tmp_path / "out" / "seed0" / "learning_curve.csv").is_file()
    assert lc.main([str(tmp_path / "out"), "--out", str(tmp_path)]) == 2  # a folder without teddy2020/
    assert "找不到数据文件" in capsys.readouterr().err


def test_missing_columns_exit_2(tmp_path):
    p = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(p, index=False)
    assert lc.main([str(p), "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("bad", [["--explore", "1.5"], ["--repeats", "0"], ["--seed", "甲"], ["--step", "0"], ["--C", "0"]])
def test_bad_options_exit_2(tmp_path, bad):
    assert lc.main([str(_corpus(tmp_path / "c.csv")), "--out", str(tmp_path), *bad]) == 2


def test_parse_seeds():
    assert lc.parse_seeds("3") == [3]
    assert lc.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert lc.parse_seeds("0,2-3") == [0, 2, 3]


@pytest.mark.parametrize("extra", [[], ["--strategy", "diverse"], ["--balanced", "--explore", "0.2"], pytest.param(["--model", "svc", "--strategy", "entropy"], marks=pytest.mark.slow)])
def test_full_curve_writes_png_csv_summary_and_mean_of_repeats(tmp_path, capsys, extra):
    csv = _corpus(tmp_path / "c.csv")
    out = tmp_path / "out"
    assert lc.main([str(csv), "--out", str(out), "--start", "20", "--step", "40", "--repeats", "2", "--seed", "0,1", "--full-curve", "--quiet", *extra]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["seed"].tolist() == [0, 1]
    assert (out / "learning_curves.png").stat().st_size > 1000
    for seed in (0, 1):
        table = pd.read_csv(out / f"seed{seed}" / "learning_curve.csv")
        assert table["labels"].iloc[0] == 20 and table["labels"].iloc[-1] == 240  # 80% of 300 in the pool
        assert table["labels"].is_monotonic_increasing
        for order in ("uncertainty", "random"):
            assert np.allclose(table[f"{order}_macro_f1"], table[[f"{order}_r0", f"{order}_r1"]].mean(axis=1))
            assert table[f"{order}_r0"].iloc[0] == pytest.approx(table["uncertainty_r0"].iloc[0])  # shared start draw
        assert (out / f"seed{seed}" / "learning_curve.png").stat().st_size > 1000
        row = summary[summary["seed"] == seed].iloc[0]
        target = row["target"]
        for order in ("uncertainty", "random"):
            hit = table[table[f"{order}_macro_f1"] >= target]
            need = row[f"need_{order}"]
            assert (pd.isna(need) and hit.empty) or need == hit["labels"].iloc[0]
        if not pd.isna(row["ratio"]):
            assert row["ratio"] == pytest.approx(row["need_uncertainty"] / row["need_random"])
    text = capsys.readouterr().out
    assert "labels to reach" in text and "ratio" in text


def test_default_stops_when_mean_curve_reaches_target(tmp_path):
    csv = _corpus(tmp_path / "c.csv")
    out = tmp_path / "out"
    assert lc.main([str(csv), "--out", str(out), "--start", "20", "--step", "20", "--repeats", "2", "--quiet"]) == 0
    target = pd.read_csv(out / "summary.csv")["target"].iloc[0]
    table = pd.read_csv(out / "seed0" / "learning_curve.csv")
    for order in ("uncertainty", "random"):
        sub = table.dropna(subset=[f"{order}_macro_f1"])
        assert (sub[f"{order}_macro_f1"].iloc[:-1] < target).all()
        assert sub[f"{order}_macro_f1"].iloc[-1] >= target or sub["labels"].iloc[-1] == 240


def test_labels_needed_and_to_stay():
    curve = [(100, 0.5), (200, 0.81), (300, 0.79), (400, 0.82), (500, 0.85)]
    assert lc.labels_needed(curve, 0.8) == 200
    assert lc.labels_to_stay(curve, 0.8) == 400
    assert lc.labels_needed(curve, 0.9) is None and lc.labels_to_stay(curve, 0.9) is None
    assert lc.mean_curve([[(1, 0.2), (2, 0.4)], [(1, 0.4), (2, 0.6), (3, 0.9)]]) == [(1, pytest.approx(0.3)), (2, pytest.approx(0.5))]


def test_uncertainty_is_the_queue_measure():
    rng = np.random.default_rng(0)
    X = rng.random((60, 5))
    y = np.array(["a", "b", "c"] * 20)
    m = lc.fit_model(X, y, 0)
    assert np.allclose(lc.uncertainty(m, X), active.margin_uncertainty(m.predict_proba(X)))
    assert np.allclose(lc.uncertainty(m, X, "least"), active.least_confidence_uncertainty(m.predict_proba(X)))


def test_uncertainty_order_takes_the_most_uncertain_letters(monkeypatch):
    """Each batch is the ``step`` letters with the highest uncertainty (here: a letter's row number,
    via a stand-in measure), plus nothing at random when explore is 0."""
    n = 60
    X = np.column_stack([np.arange(n) / n, np.random.default_rng(1).random((n, 3))])
    y = np.array(["a", "b", "c"] * 20)
    fitted: list[set[int]] = []
    real_fit = lc.fit_model

    def spy_fit(Xs, ys, seed, *args, **kw):
        fitted.append({int(round(v * n)) for v in Xs[:, 0]})
        return real_fit(Xs, ys, seed, *args, **kw)

    monkeypatch.setattr(lc, "fit_model", spy_fit)
    monkeypatch.setattr(lc, "uncertainty", lambda model, Xp, strategy="margin": Xp[:, 0])
    start, rest = lc.start_and_permutation(n, 10, 0, 0)
    steps = lc.curve_steps(X, y, X, y, ["a", "b", "c"], "uncertainty", start_idx=start, rest=rest, step=5, seed=0, explore=0.0)
    for _ in range(3):
        next(steps)
    unlabelled = sorted(set(range(n)) - set(start.tolist()))
    assert fitted[1] - fitted[0] == set(unlabelled[-5:])
    assert fitted[2] - fitted[1] == set(unlabelled[-10:-5])


def test_explore_batch_is_step_sized_and_disjoint():
    rng = np.random.default_rng(0)
    X = rng.random((60, 5))
    y = np.array(["a", "b", "c"] * 20)
    curve = lc.run_curve(X, y, X, y, ["a", "b", "c"], "uncertainty", start=10, step=10, seed=0, balanced=True, explore=0.3)
    assert [n for n, _ in curve] == list(range(10, 61, 10))


def test_repeats_differ_and_random_order_follows_its_permutation():
    a, ra = lc.start_and_permutation(50, 10, 0, 0)
    b, _ = lc.start_and_permutation(50, 10, 0, 1)
    assert set(a) != set(b) and len(set(a) | set(ra)) == 50 and not set(a) & set(ra)


def test_diverse_batch_spreads_over_groups_of_near_copies():
    """Plain margin order spends a batch on near-copies of one confusing letter; the diverse pick
    takes the most uncertain letter of each cluster among the ``factor × step`` most uncertain."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 10)
    X = np.eye(6)[groups] + rng.normal(0, 0.01, (60, 6))
    unc = 1.0 - 0.1 * groups + rng.uniform(0, 0.01, 60)  # group 0 most uncertain, then 1, ...
    pool = np.arange(60)
    plain = pool[np.argsort(-unc)[:3]]
    assert set(groups[plain]) == {0}
    picked = lc.diverse_pick(X, pool, unc, 3, seed=0, factor=5)
    assert len(set(picked.tolist())) == 3 and set(picked) <= set(pool[np.argsort(-unc)[:15]])
    assert len(set(groups[picked])) >= 2
    assert unc[picked].max() == unc.max()  # the single most uncertain letter is always taken


def test_default_model_is_word_and_character_tfidf_with_chosen_C(tmp_path):
    """The clerks' model (both orders and the full-data figure): word + character TF-IDF,
    logistic regression with ``--C`` (default 30, chosen on the tuning seeds)."""
    df = pd.read_csv(_corpus(tmp_path / "c.csv", n=60))
    texts = df["tokens"].astype(str).to_numpy()
    tr, te = np.arange(40), np.arange(40, 60)
    Xw, _ = lc.build_features(texts, tr, te, "word")
    Xd, Td = lc.build_features(texts, tr, te)
    assert Xd.shape[0] == 40 and Td.shape[0] == 20 and Xd.shape[1] > Xw.shape[1]
    assert lc.fit_model(Xd, df["label"].to_numpy()[tr], 0).C == 30.0
    assert lc.fit_model(Xd, df["label"].to_numpy()[tr], 0, "lr", 2.5).C == 2.5
