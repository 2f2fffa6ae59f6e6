"""The CLI is a thin dispatcher: every subcommand is wired, and errors become exit codes."""

import subprocess
import sys

import pandas as pd
import pytest

from triage.cli import build_parser, main

SUBCOMMANDS = ["score", "synth", "train", "evaluate", "review", "users", "export-labels", "corrections", "retrain", "models", "drift", "label-issues", "reproduce"]


@pytest.mark.parametrize("module", ["triage.cli", "triage"])  # python -m triage works too
def test_help_lists_every_subcommand(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in SUBCOMMANDS:
        assert cmd in out


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_each_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([cmd, "--help"])
    assert e.value.code == 0


def test_synth_writes_corpus(tmp_path):
    out = tmp_path / "c.csv"
    assert main(["synth", "--n", "30", "--seed", "3", "-o", str(out)]) == 0
    df = pd.read_csv(out, encoding="utf-8-sig")
    assert len(df) == 30 and {"track", "route", "department", "risk", "risk_reasons"} <= set(df.columns)


def test_schema_error_is_exit_2_with_message(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("编号,备注\n1,无内容列\n", encoding="utf-8")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "缺少信访内容列" in err and "bad.csv" in err


def test_missing_model_is_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRIAGE_MODELS_DIR", str(tmp_path))
    assert main(["models", "list"]) == 0
    assert main(["evaluate", "--data", str(tmp_path / "x.csv")]) == 2
    assert "冠军" in capsys.readouterr().err
