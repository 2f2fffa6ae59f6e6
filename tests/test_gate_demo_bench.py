"""bench/gate_demo.py end to end at a small scale: the good challenger is promoted, the
shuffled-label one is refused, and the bench says so in its exit status."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from triage import registry
from triage.synth import generate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
_spec = importlib.util.spec_from_file_location("gate_demo", ROOT / "bench" / "gate_demo.py")
gd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gd)


@pytest.mark.slow
def test_gate_demo_promotes_good_and_refuses_shuffled(tmp_path, capsys):
    base = tmp_path / "base.csv"
    generate(240, 3).to_csv(base, index=False)
    rc = gd.main(["--base", str(base), "--champion-letters", "100", "--reviewed", "200", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "good challenger promoted, shuffled challenger kept -> as expected" in out
    assert registry.champion(tmp_path / "run" / "models_good") != "weak-champion"
    assert registry.champion(tmp_path / "run" / "models_shuffled") == "weak-champion"


def test_gate_demo_missing_base_exits_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        gd.main(["--base", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
