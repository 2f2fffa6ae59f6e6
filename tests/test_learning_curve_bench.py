"""Learning-curve bench on a tiny synthetic corpus (no real letters): exit codes, outputs, flags."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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


def test_missing_columns_exit_2(tmp_path):
    p = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(p, index=False)
    assert lc.main([str(p), "--out", str(tmp_path)]) == 2


def test_bad_explore_exits_2(tmp_path):
    assert lc.main([str(_corpus(tmp_path / "c.csv")), "--out", str(tmp_path), "--explore", "1.5"]) == 2


@pytest.mark.parametrize("extra", [[], ["--balanced", "--explore", "0.2"], pytest.param(["--model", "svc", "--strategy", "entropy"], marks=pytest.mark.slow)])
def test_writes_png_csv_and_ratio(tmp_path, capsys, extra):
    csv = _corpus(tmp_path / "c.csv")
    out = tmp_path / "out"
    assert lc.main([str(csv), "--out", str(out), "--start", "20", "--step", "40", "--quiet", *extra]) == 0
    table = pd.read_csv(out / "learning_curve.csv")
    assert list(table.columns) == ["labels", "uncertainty_macro_f1", "random_macro_f1"]
    assert table["labels"].iloc[0] == 20 and table["labels"].iloc[-1] == 240  # 80% of 300 in the pool
    assert table["labels"].is_monotonic_increasing
    assert (out / "learning_curve.png").stat().st_size > 1000
    text = capsys.readouterr().out
    assert "labels to reach" in text and "random" in text


def test_until_target_stops_early(tmp_path, capsys):
    csv = _corpus(tmp_path / "c.csv")
    out = tmp_path / "out"
    assert lc.main([str(csv), "--out", str(out), "--start", "20", "--step", "20", "--quiet", "--until-target"]) == 0
    target = float(capsys.readouterr().out.split("; target ")[1].split()[0])
    table = pd.read_csv(out / "learning_curve.csv")
    for col in ("uncertainty_macro_f1", "random_macro_f1"):
        sub = table.dropna(subset=[col])
        assert (sub[col].iloc[:-1] < target - 1e-4).all()  # printed target is rounded to 4 places
        assert sub[col].iloc[-1] >= target - 1e-4 or sub["labels"].iloc[-1] == 240


def test_explore_batch_is_step_sized_and_disjoint():
    rng = np.random.default_rng(0)
    X = rng.random((60, 5))
    y = np.array(["a", "b", "c"] * 20)
    seen = []
    curve = lc.run_curve(X, y, X, y, ["a", "b", "c"], "uncertainty", start=10, step=10, seed=0, log=seen.append, balanced=True, explore=0.3)
    assert [n for n, _ in curve] == list(range(10, 61, 10))
