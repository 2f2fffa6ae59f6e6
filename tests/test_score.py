"""The batch scorer: every row once and in order, bad input, the clerks' workbook, masking,
the review database, resume after a kill.

A small real model is trained once per session on made-up letters (triage.synth when it is
there, else a hand-written frame) and saved as a version under a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import triage.score as score_mod
from triage.io import TRUNCATION_MARKER
from triage.schema import OUTPUT_FIELDS, ROUTE_LABELS, SchemaError, display_name
from triage.score import ResumeError, default_output, main, parts_dir, score_file

REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- made-up letters

_TOPICS = {
    "住建局": ["小区物业不维修，楼顶漏水严重", "开发商逾期交房，房屋质量问题突出", "老旧小区改造施工扰民"],
    "人社局": ["公司拖欠工资三个月不发", "单位不给缴纳社会保险", "工伤认定迟迟没有结果"],
    "教育局": ["学校乱收费，要求家长购买资料", "孩子入学被拒，学区划分不合理", "校外培训机构退费难"],
    "自然资源局": ["土地征收补偿标准太低", "不动产登记办理不了", "邻村违法占用耕地建房"],
}
_LEGAL = {
    "执行": "法院判决已经生效，对方一直不履行，申请强制执行没有结果",
    "诉讼": "与邻居的合同纠纷，想到法院起诉",
    "仲裁": "劳动争议仲裁委员会已经受理，对仲裁结果不服",
}
_RISK = {"低": "", "中": "多次反映一直没有解决，", "高": "再不解决我们几十户村民就集体去北京上访，"}


def _letters(n: int, seed: int = 0) -> pd.DataFrame:
    try:
        from triage.synth import generate

        return generate(n, seed)
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        dept = list(_TOPICS)[i % len(_TOPICS)]
        topic = _TOPICS[dept][rng.integers(len(_TOPICS[dept]))]
        risk = ["低", "中", "高"][rng.integers(3)]
        lit = rng.random() < 0.35
        route = list(_LEGAL)[rng.integers(len(_LEGAL))] if lit else ""
        text = _RISK[risk] + topic + ("；" + _LEGAL[route] if lit else "") + "，请领导重视。"
        rows.append(
            {
                "id": f"T{seed}-{i:05d}",
                "title": topic[:8],
                "text": text,
                "track": "涉法涉诉" if lit else "普通信访",
                "route": route,
                "department": dept,
                "risk": risk,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> str:
    from triage.model import TriageModel
    from triage.registry import save_version

    frame = _letters(300, seed=1)
    model = TriageModel(backend_params={"featurizer_params": {"max_word_features": 4000, "max_char_features": 4000}}).fit(frame)
    root = tmp_path_factory.mktemp("models")
    return str(save_version(model, root=root, version="test-v1"))


def _input(n: int = 12, **over) -> pd.DataFrame:
    """A clerk's export with Chinese headers."""
    base = _letters(n, seed=7)
    df = pd.DataFrame(
        {
            "编号": [f"X{i:04d}" for i in range(n)],
            "标题": base["title"],
            "信访内容": base["text"],
            "来信日期": [f"2026-11-{1 + i % 28:02d}" for i in range(n)],
            "信访人": ["张三丰"] * n,
            "联系电话": [f"1391234{i:04d}" for i in range(n)],
            "身份证号": ["110101199003077774"] * n,
            "备注": [""] * n,
        }
    )
    for k, v in over.items():
        df[k] = v
    return df


def _score(model_dir, src, out, **kw):
    kw.setdefault("progress", False)
    return score_file(src, out, model=model_dir, **kw)


def _read_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


# ------------------------------------------------------------------------------- basic output


def test_csv_output_every_row_once_in_order_with_all_fields(tmp_path, model_dir):
    df = _input(25)
    df.loc[3, ["标题", "信访内容"]] = ""  # cannot be scored
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    s = _score(model_dir, src, out, chunksize=7)
    res = _read_csv(out)
    assert res["id"].tolist() == df["编号"].tolist()
    assert list(res.columns) == ["id", "title", "text", "received_at", "petitioner", "phone", "id_number", "备注", *OUTPUT_FIELDS]
    assert (s.rows, s.scored, s.errors, s.chunks) == (25, 24, 1, 4)
    assert "标题和内容都为空" in res.at[3, "error"] and res.at[3, "track"] == ""
    ok = res.drop(index=3)
    assert (ok["error"] == "").all() and (ok["model_version"] == "test-v1").all()
    assert set(ok["track"]) <= {"涉法涉诉", "普通信访"}
    assert set(ok["risk"]) <= {"低", "中", "高"}
    lit = ok["track"] == "涉法涉诉"
    assert set(ok.loc[lit, "route"]) <= set(ROUTE_LABELS) and (ok.loc[~lit, "route"] == "").all()
    json.loads(ok["evidence"].iloc[0])  # CSV keeps JSON
    assert ok["needs_review"].isin(["true", "false"]).all()
    assert sum(sum(c.values()) for h, c in s.labels.items() if h == "track") == 24
    assert 0 < s.mean_confidence["track"] <= 1
    assert "共 25 行" in s.report() and s.exit_code == 0
    assert not parts_dir(out).exists()


def test_accept_by_is_received_plus_15_days(tmp_path, model_dir):
    df = _input(3)
    df["来信日期"] = ["2026-12-20", "", "2026/02/14 09:30"]
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    _score(model_dir, src, out)
    assert _read_csv(out)["accept_by"].tolist() == ["2027-01-04", "", "2026-03-01"]


def test_default_output_name_is_an_xlsx_next_to_input(tmp_path, model_dir):
    src = tmp_path / "登记表.csv"
    _input(4).to_csv(src, index=False)
    s = score_file(src, model=model_dir, progress=False)
    assert Path(s.output) == tmp_path / "登记表_分拣结果.xlsx" == default_output(src)
    assert openpyxl.load_workbook(s.output).sheetnames[:4] == ["全部", "高风险", "涉法涉诉", "待复核"]


def test_batch_wide_recurrence_reaches_the_model(tmp_path, model_dir, monkeypatch):
    """The same ID number in different chunks counts over the whole batch."""
    df = _input(9)
    df["身份证号"] = ["110101199003077774"] * 5 + [""] * 4
    df["联系电话"] = ["13900000000"] * 9  # rows without an ID number fall back to the phone
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    seen: list[float] = []
    original = score_mod._predict

    def spy(frame, rec):
        seen.extend(rec.tolist())
        return original(frame, rec)

    monkeypatch.setattr(score_mod, "_predict", spy)
    _score(model_dir, src, tmp_path / "out.csv", chunksize=2)
    assert seen == [5.0] * 5 + [4.0] * 4


def test_jobs_2_gives_the_same_output_as_jobs_1(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    _input(30).to_csv(src, index=False)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _score(model_dir, src, a, chunksize=4, jobs=1)
    s = _score(model_dir, src, b, chunksize=4, jobs=2)
    assert a.read_bytes() == b.read_bytes()
    assert s.jobs == 2 and s.rows == 30


@pytest.mark.slow
def test_spawned_workers_get_the_batch_wide_recurrence(tmp_path, model_dir, monkeypatch):
    """Where there is no fork (Windows, macOS), workers are spawned and get the model and the
    batch's recurrence counts from their initializer: the same bytes as one process, with the
    recurrence visible in the output."""
    df = _input(12)
    df["身份证号"] = ["110101199003077774"] * 6 + [f"11010119900307{i:04d}" for i in range(6)]
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _score(model_dir, src, a, chunksize=2, jobs=1)
    monkeypatch.setattr(score_mod, "_fork_context", lambda: None)
    _score(model_dir, src, b, chunksize=2, jobs=2)
    assert a.read_bytes() == b.read_bytes()
    reasons = _read_csv(b)["risk_reasons"]
    assert reasons[:6].str.contains("重复长期").all() and not reasons[6:].str.contains("重复长期").any()
    assert score_mod._RECURRENCE is None  # not kept after the run


def test_chunk_sizes_cut_the_last_chunks_finer():
    sizes = score_mod._chunk_sizes(100_000, 2000)
    assert sizes == [2000] * 46 + [500] * 16 and sum(sizes) == 100_000
    odd = score_mod._chunk_sizes(100_001, 2000)
    assert odd[:46] == [2000] * 46 and set(odd[46:]) == {500} and 100_001 <= sum(odd) < 100_001 + 500
    assert score_mod._chunk_sizes(5000, 2000) == [500] * 10  # under TAIL_SPLIT chunks: all small
    assert score_mod._chunk_sizes(100_000, 600) == [600] * 162 + [200] * 14  # not under MIN_CHUNK
    assert score_mod._chunk_sizes(100_000, 200) == [200]  # nothing smaller to cut
    assert score_mod._chunk_sizes(0, 2000) == [500]


def test_finer_last_chunks_give_the_same_output(tmp_path, model_dir, monkeypatch):
    src = tmp_path / "in.csv"
    _input(30).to_csv(src, index=False)
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    monkeypatch.setattr(score_mod, "TAIL_SPLIT", 1)
    _score(model_dir, src, a, chunksize=8)
    monkeypatch.setattr(score_mod, "TAIL_SPLIT", 4)
    monkeypatch.setattr(score_mod, "MIN_CHUNK", 1)
    seen: list[int] = []
    real = score_mod._process_chunk
    monkeypatch.setattr(score_mod, "_process_chunk", lambda task: (seen.append(len(task.frame)), real(task))[1])
    s = _score(model_dir, src, b, chunksize=8)
    # 30 letters make chunks of 2 (at least 16 chunks); the last 4 chunks' rows are cut in 1s
    assert seen == [2] * 11 + [1] * 8 and s.chunks == 19
    assert a.read_bytes() == b.read_bytes()
    monkeypatch.setattr(score_mod, "_process_chunk", real)  # a lambda cannot be sent to a worker
    _score(model_dir, src, c, chunksize=8, jobs=2)
    assert a.read_bytes() == c.read_bytes()


def test_gc_freeze_during_a_run_is_undone_and_a_callers_freeze_is_left_alone(tmp_path, model_dir, monkeypatch):
    import gc

    src = tmp_path / "in.csv"
    _input(6).to_csv(src, index=False)
    seen = []
    real = score_mod._process_chunk
    monkeypatch.setattr(score_mod, "_process_chunk", lambda task: (seen.append(gc.get_freeze_count()), real(task))[1])
    assert gc.get_freeze_count() == 0
    _score(model_dir, src, tmp_path / "a.csv", chunksize=3)
    assert seen and all(n > 0 for n in seen)  # the model sat out of the cyclic GC while scoring
    assert gc.get_freeze_count() == 0  # and is back in it afterwards
    keep = [object() for _ in range(3)]
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        _score(model_dir, src, tmp_path / "b.csv", chunksize=3)
        # the caller's own freeze is neither added to nor undone (frozen objects that die leave it)
        assert mine - 1000 < gc.get_freeze_count() <= mine
    finally:
        gc.unfreeze()
    assert keep and (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_freed_memory_is_kept_while_scoring_and_released_after_even_on_error(tmp_path, model_dir, monkeypatch):
    from triage import heap

    calls = []
    monkeypatch.setattr(heap, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(heap, "release_freed_memory", lambda: calls.append("release") or True)
    src = tmp_path / "in.csv"
    _input(6).to_csv(src, index=False)
    seen = []
    real = score_mod._process_chunk
    monkeypatch.setattr(score_mod, "_process_chunk", lambda task: (seen.append((heap._depth, list(calls))), real(task))[1])
    _score(model_dir, src, tmp_path / "a.csv", chunksize=3)
    assert seen and all(d == 1 and c == ["keep"] for d, c in seen)  # every chunk ran with the heap kept
    assert calls == ["keep", "release"] and heap._depth == 0

    def broken(task):
        raise OSError("磁盘已满")

    calls.clear()
    monkeypatch.setattr(score_mod, "_process_chunk", broken)
    with pytest.raises(OSError):
        _score(model_dir, src, tmp_path / "b.csv", chunksize=3)
    assert calls == ["keep", "release"] and heap._depth == 0

    # released even when shutting the workers down is itself interrupted (a second Ctrl-C)
    monkeypatch.setattr(score_mod, "_process_chunk", real)
    real_shutdown = score_mod.cf.ProcessPoolExecutor.shutdown

    def interrupted(self, *a, **kw):
        real_shutdown(self, *a, **kw)
        if self._max_workers == 2:  # the scoring pool (the first pass's reader has one worker)
            raise KeyboardInterrupt

    monkeypatch.setattr(score_mod.cf.ProcessPoolExecutor, "shutdown", interrupted)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        _score(model_dir, src, tmp_path / "c.csv", chunksize=3, jobs=2)
    assert calls == ["keep", "release"] and heap._depth == 0


def test_warm_up_builds_the_segmenter_tables_so_forked_workers_share_them(model_dir, monkeypatch):
    from triage import tokenize as tokenize_mod

    seg = tokenize_mod.segmenter()
    monkeypatch.setattr(seg, "_arrays", None)
    score_mod._load_and_warm_up(model_dir, "test-v1")
    assert seg._arrays  # built in the parent, before any worker is forked


def test_model_batches_within_a_chunk_give_the_same_output(tmp_path, model_dir, monkeypatch):
    src = tmp_path / "in.csv"
    df = _input(30)
    df.loc[7, "信访内容"] = ""  # an unscorable row inside a batch
    df.to_csv(src, index=False)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _score(model_dir, src, a, chunksize=30)
    monkeypatch.setattr(score_mod, "PREDICT_BATCH", 4)
    _score(model_dir, src, b, chunksize=30)
    assert a.read_bytes() == b.read_bytes()
    assert _read_csv(b)["id"].tolist() == df["编号"].tolist()


def test_exception_while_predicting_marks_only_the_failing_row(tmp_path, model_dir, monkeypatch):
    df = _input(10)
    df.loc[6, "信访内容"] = "BOOM 这一行会让模型出错"
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    score_mod._set_model(None, "")

    real_load = score_mod._set_model

    def fragile_set_model(model, version):
        class Fragile:
            def predict(self, frame, *, version=""):
                if frame["text"].str.contains("BOOM").any():
                    raise ValueError("模型内部错误")
                return model.predict(frame, version=version)

        real_load(Fragile(), version)

    monkeypatch.setattr(score_mod, "_set_model", fragile_set_model)
    out = tmp_path / "out.csv"
    s = _score(model_dir, src, out, chunksize=4)
    res = _read_csv(out)
    assert res["id"].tolist() == df["编号"].tolist()
    assert (s.scored, s.errors) == (9, 1)
    assert "模型内部错误" in res.at[6, "error"] and res.at[6, "track"] == ""
    assert (res.drop(index=6)["error"] == "").all()
    assert any("X0006" in e for e in s.row_errors)


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failure_outside_the_model_marks_only_its_row(tmp_path, model_dir, monkeypatch, jobs):
    """A step after the model that raises for one value (here the deadline) no longer ends the
    run: the chunk is redone row by row and only that row carries the error."""
    df = _input(6)
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    real = score_mod._accept_by

    def accept_by(received):
        if (received.dt.day == 3).any():
            raise OverflowError("date value out of range")
        return real(received)

    monkeypatch.setattr(score_mod, "_accept_by", accept_by)
    out = tmp_path / "o.csv"
    s = _score(model_dir, src, out, chunksize=4, jobs=jobs)
    res = _read_csv(out)
    assert res["id"].tolist() == df["编号"].tolist() and s.rows == 6
    assert res["error"].tolist()[2] == "分拣出错（OverflowError：date value out of range）"
    assert res["track"].tolist()[2] == "" and res["model_version"].tolist()[2] == ""
    others = res.drop(index=2)
    assert (others["error"] == "").all() and (others["track"] != "").all()
    assert others["accept_by"].tolist() == ["2026-11-16", "2026-11-17", "2026-11-19", "2026-11-20", "2026-11-21"]
    assert s.scored == 5 and s.errors == 1
    assert res["id_number"].tolist()[2] == res["id_number"].tolist()[0] != df["身份证号"][0]  # the failed row is masked too


def test_a_row_whose_output_cannot_be_formatted_keeps_its_place_with_the_error(tmp_path, model_dir, monkeypatch):
    """Even when masking the row's own cells raises, the row is output (cell by cell) with the reason."""
    df = _input(4)
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    real = score_mod._masked

    def masked(full, passthrough):
        if (full["id"] == "X0002").any():
            raise ValueError("cannot mask")
        return real(full, passthrough)

    monkeypatch.setattr(score_mod, "_masked", masked)
    s = _score(model_dir, src, tmp_path / "o.csv")
    res = _read_csv(tmp_path / "o.csv")
    assert res["id"].tolist() == ["X0000", "X0001", "X0002", "X0003"] and s.rows == 4
    assert res["error"][2] == "分拣出错（ValueError：cannot mask）" and (res["error"].drop(index=2) == "").all()
    assert res["id_number"][2] == res["id_number"][0] != df["身份证号"][0]  # still masked
    assert res["text"][2] == df["信访内容"][2]


def test_empty_file_is_a_schema_error_and_exit_2(tmp_path, model_dir, capsys):
    src = tmp_path / "empty.csv"
    src.write_bytes(b"")
    with pytest.raises(SchemaError, match="文件为空"):
        _score(model_dir, src, tmp_path / "o.csv")
    assert main([str(src), "-o", str(tmp_path / "o.csv"), "--model", model_dir, "--no-progress"]) == 2
    assert "文件为空" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_with_workers_the_input_is_read_beside_the_model_load_and_its_error_comes_first(tmp_path, model_dir, monkeypatch):
    """jobs > 1: the first pass runs in a process of its own while the model loads; an unusable
    input is still reported (before a model error), and a model error when the input is fine."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SchemaError, match="文件为空"):
        _score(model_dir, empty, tmp_path / "o.csv", jobs=2)

    def broken(*a, **k):
        raise RuntimeError("模型坏了")

    monkeypatch.setattr(score_mod, "_load_and_warm_up", broken)
    with pytest.raises(SchemaError, match="文件为空"):
        _score(model_dir, empty, tmp_path / "o.csv", jobs=2)
    src = tmp_path / "in.csv"
    _input(5).to_csv(src, index=False)
    with pytest.raises(RuntimeError, match="模型坏了"):
        _score(model_dir, src, tmp_path / "o.csv", jobs=2)
    assert not (tmp_path / "o.csv").exists()
    # the other checks come before a model error too, as with one process
    out = tmp_path / "r.csv"
    parts_dir(out).mkdir()
    (parts_dir(out) / "manifest.json").write_text(json.dumps({"format": 1, "input": "other.csv"}), encoding="utf-8")
    for jobs in (1, 2):
        with pytest.raises(ResumeError, match="不符"):
            _score(model_dir, src, out, resume=True, jobs=jobs)


_REAL_FIRST_PASS = score_mod._first_pass
_TEST_PID = os.getpid()


def _first_pass_dies_in_a_child(*a, **k):  # module level: the pool pickles it by name
    if os.getpid() != _TEST_PID:
        os.kill(os.getpid(), signal.SIGKILL)
    return _REAL_FIRST_PASS(*a, **k)


def test_a_reader_process_that_dies_is_replaced_by_reading_in_process(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(score_mod, "_first_pass", _first_pass_dies_in_a_child)
    monkeypatch.setattr(sys.modules[__name__], "_TEST_PID", os.getpid())
    src = tmp_path / "in.csv"
    _input(8).to_csv(src, index=False)
    s = _score(model_dir, src, tmp_path / "o.csv", jobs=2)
    assert s.rows == 8 and s.errors == 0 and len(_read_csv(tmp_path / "o.csv")) == 8


def test_header_only_gives_empty_output_and_exit_0(tmp_path, model_dir, capsys):
    src = tmp_path / "h.csv"
    src.write_text("编号,标题,内容\n", encoding="utf-8")
    out = tmp_path / "h.csv.out.csv"
    assert main([str(src), "-o", str(out), "--model", model_dir, "--no-progress"]) == 0
    assert "共 0 行" in capsys.readouterr().err
    res = _read_csv(out)
    assert len(res) == 0 and "track" in res.columns
    s = _score(model_dir, src, tmp_path / "h.xlsx")
    assert s.rows == 0
    wb = openpyxl.load_workbook(tmp_path / "h.xlsx")
    assert wb["全部"].max_row == 1 and wb["全部"]["A1"].value == "编号"


def test_missing_text_column(tmp_path, model_dir, capsys):
    src = tmp_path / "m.csv"
    src.write_text("编号,姓名\nA1,张三\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="缺少信访内容列"):
        _score(model_dir, src, tmp_path / "o.xlsx")
    assert main([str(src), "--model", model_dir, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "缺少信访内容列" in err and "m.csv" in err


def test_gbk_csv(tmp_path, model_dir):
    df = _input(5)
    src = tmp_path / "gbk.csv"
    src.write_bytes(df.to_csv(index=False).encode("gbk"))
    out = tmp_path / "o.csv"
    s = _score(model_dir, src, out, unmask=True)
    res = _read_csv(out)
    assert res["text"].tolist() == df["信访内容"].tolist()
    assert s.errors == 0


def test_xlsx_with_merged_cells_and_blank_rows(tmp_path, model_dir):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编号", "标题", "信访内容", "备注"])
    ws.append(["M1", "拖欠工资", "公司拖欠工资三个月不发", "合并"])
    ws.append(["M2", "", "学校乱收费，要求家长购买资料", ""])
    ws.append([None, None, None, None])  # blank row inside the data
    ws.append(["M4", "漏水", "小区物业不维修，楼顶漏水严重", ""])
    ws.merge_cells("D2:D3")
    ws.append([None, None, None, None])  # trailing blank rows are dropped by io
    src = tmp_path / "merged.xlsx"
    wb.save(src)
    out = tmp_path / "o.csv"
    s = _score(model_dir, src, out)
    res = _read_csv(out)
    assert res["id"].tolist() == ["M1", "M2", "ROW000004", "M4"]
    assert res["备注"].tolist() == ["合并", "", "", ""]
    assert (s.rows, s.errors) == (4, 1) and "第 4 行" in res.at[2, "error"]


def test_duplicate_ids_keep_both_rows(tmp_path, model_dir):
    df = _input(6)
    df.loc[4, "编号"] = df.loc[1, "编号"]
    src = tmp_path / "dup.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "o.csv"
    s = _score(model_dir, src, out, chunksize=3)
    res = _read_csv(out)
    assert res["id"].tolist() == df["编号"].tolist()
    assert (res["error"] == "").all()
    assert any("编号重复" in w for w in s.warnings)


def test_a_count_of_people_that_is_not_a_whole_number_does_not_stop_the_batch(tmp_path, model_dir):
    """人数 1.5 used to raise a TypeError while the chunk was read, which ended the run."""
    df = _input(4)
    df["人数"] = ["1.5", "3", "-1", "2"]
    src = tmp_path / "people.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "o.csv"
    s = _score(model_dir, src, out)
    res = _read_csv(out)
    assert s.rows == s.scored == 4 and (res["error"] == "").all()
    assert res["num_people"].tolist() == ["", "3", "", "2"]
    assert sum("人数应为" in w for w in s.warnings) == 2


def test_a_date_out_of_range_is_scored_without_a_deadline(tmp_path, model_dir):
    """9999-12-30 + 15 days overflowed in the deadline and ended the run."""
    df = _input(3)
    df["来信日期"] = ["9999-12-30", "2026-11-02", "0001-01-01"]
    src = tmp_path / "dates.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "o.csv"
    s = _score(model_dir, src, out)
    res = _read_csv(out)
    assert s.rows == s.scored == 3 and (res["error"] == "").all()
    assert res["accept_by"].tolist() == ["", "2026-11-17", ""]
    assert sum("日期超出范围" in w for w in s.warnings) == 2


def test_letter_of_100000_characters(tmp_path, model_dir):
    df = _input(3)
    long = ("小区物业不维修，楼顶漏水严重。" * 7000)[:100_000]
    df.loc[1, "信访内容"] = long
    src = tmp_path / "long.csv"
    df.to_csv(src, index=False)
    csv_out, xlsx_out = tmp_path / "o.csv", tmp_path / "o.xlsx"
    _score(model_dir, src, csv_out)
    res = _read_csv(csv_out)
    assert res.at[1, "error"] == "" and len(res.at[1, "text"]) == 100_000
    s = _score(model_dir, src, xlsx_out)
    cell = openpyxl.load_workbook(xlsx_out)["全部"].cell(row=3, column=3).value
    assert cell.endswith(TRUNCATION_MARKER) and len(cell) <= 32_767
    assert any("超过 Excel 单元格上限" in w for w in s.file_warnings)


def test_formula_text_is_a_string_in_the_workbook(tmp_path, model_dir):
    df = _input(3)
    df.loc[0, "信访内容"] = "=cmd|' /C calc'!A0 拖欠工资"
    df.loc[1, "标题"] = "@SUM(1+1)"
    src = tmp_path / "f.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "f.xlsx"
    _score(model_dir, src, out)
    ws = openpyxl.load_workbook(out)["全部"]
    headers = [c.value for c in ws[1]]
    text = ws.cell(row=2, column=headers.index("内容") + 1)
    title = ws.cell(row=3, column=headers.index("标题") + 1)
    assert text.data_type == "s" and text.value.startswith("'=cmd|")
    assert title.data_type == "s" and title.value.startswith("'@")
    csv_out = tmp_path / "f.csv.out.csv"
    _score(model_dir, src, csv_out)
    assert _read_csv(csv_out).at[0, "text"].startswith("'=cmd|")


def test_unsupported_output_suffix(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    _input(2).to_csv(src, index=False)
    with pytest.raises(SchemaError, match="不支持的输出文件类型"):
        _score(model_dir, src, tmp_path / "o.pdf")


# --------------------------------------------------------------------------- workbook and PII


def test_workbook_sheets_and_chinese_headers(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    _input(40).to_csv(src, index=False)
    out = tmp_path / "o.xlsx"
    s = _score(model_dir, src, out)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["全部", "高风险", "涉法涉诉", "待复核", "说明"]
    ws = wb["全部"]
    headers = [c.value for c in ws[1]]
    assert headers[:3] == ["编号", "标题", "内容"]
    assert [display_name(f) for f in OUTPUT_FIELDS] == headers[-len(OUTPUT_FIELDS):]
    assert ws.max_row == 41 and ws.freeze_panes == "A2" and ws.auto_filter.ref
    high = wb["高风险"]
    h = [c.value for c in high[1]]
    risks = [r[h.index("风险等级")] for r in high.iter_rows(min_row=2, values_only=True)]
    scores = [r[h.index("风险分值")] for r in high.iter_rows(min_row=2, values_only=True)]
    assert len(risks) == s.labels.get("risk", {}).get("高", 0) and set(risks) <= {"高"}
    assert scores == sorted(scores, reverse=True)
    lit = wb["涉法涉诉"]
    lh = [c.value for c in lit[1]]
    assert lh[:4] == ["编号", "标题", "法律途径", "引导意见"]
    assert lit.max_row - 1 == s.labels["track"].get("涉法涉诉", 0)
    assert wb["待复核"].max_row - 1 == s.needs_review
    rows = [r for r in wb["说明"].iter_rows(values_only=True) if r and r[0]]
    cut = [r[0] for r in rows].index("各列含义")
    info, meaning = dict(r[:2] for r in rows[:cut]), dict(r[:2] for r in rows[cut + 1 :])
    assert info["模型版本"] == "test-v1" and info["总行数"] == 40
    assert "受理" in meaning["受理告知期限"] and set(headers) <= set(meaning)


def test_pii_masked_by_default_and_unmasked_on_request(tmp_path, model_dir):
    df = _input(2)
    df.loc[0, "信访内容"] = "我的电话13812345678，身份证110101199003077774，拖欠工资"
    src = tmp_path / "p.csv"
    df.to_csv(src, index=False)
    masked, plain = tmp_path / "m.xlsx", tmp_path / "u.csv"
    _score(model_dir, src, masked)
    ws = openpyxl.load_workbook(masked)["全部"]
    headers = [c.value for c in ws[1]]
    row = dict(zip(headers, [c.value for c in ws[2]]))
    assert row["信访人"] == "张**"
    assert "13812345678" not in row["内容"] and "138****5678" in row["内容"]
    assert "110101199003077774" not in row["内容"] and "110101199003077774" != row["证件号码"]
    assert row["联系电话"].count("*") >= 4
    _score(model_dir, src, plain, unmask=True)
    res = _read_csv(plain)
    assert res.at[0, "petitioner"] == "张三丰" and res.at[0, "id_number"] == "110101199003077774"
    assert "13812345678" in res.at[0, "text"]


# ------------------------------------------------------------------------------ the database


def test_db_upsert_and_rescoring_keeps_a_clerks_decision(tmp_path, model_dir):
    from triage.store import open_store

    url = f"sqlite:///{tmp_path / 'review.db'}"
    src = tmp_path / "in.csv"
    _input(8).to_csv(src, index=False)
    s = _score(model_dir, src, tmp_path / "o.csv", db=url, chunksize=3)
    store = open_store(url)
    letter = store.letter("X0002")
    assert letter["suggestion"]["track"] in ("涉法涉诉", "普通信访")
    assert letter["id_number"] == "110101199003077774"  # the database keeps the real data
    other = "住建局" if letter["suggestion"]["department"] != "住建局" else "人社局"
    store.add_event("X0002", "department", other, "clerk1", "correct")
    batches = store.batches()
    assert batches[-1]["batch_id"] == s.batch_id
    stats = batches[-1]["stats"]
    stats = json.loads(stats) if isinstance(stats, str) else stats
    assert stats["rows"] == 8 and "track" in stats["labels"] and "track" in stats["mean_confidence"]
    store.close()
    _score(model_dir, src, tmp_path / "o2.csv", db=url)  # re-score
    store = open_store(url)
    assert store.letter("X0002")["labels"]["department"] == other
    store.close()


def test_db_rows_without_an_id_from_two_files_do_not_overwrite_each_other(tmp_path, model_dir):
    """ROW000002 is row 2 of whichever file: in the review database it carries a hash of the
    letter, so another file's row 2 is another letter and the same file scored again updates
    its own rows."""
    from triage.store import open_store

    url = f"sqlite:///{tmp_path / 'review.db'}"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _input(4).drop(columns=["编号"]).to_csv(a, index=False)
    other = _input(6).drop(columns=["编号"]).iloc[2:]
    other.to_csv(b, index=False)
    _score(model_dir, a, tmp_path / "a_out.csv", db=url)
    _score(model_dir, b, tmp_path / "b_out.csv", db=url)
    _score(model_dir, a, tmp_path / "a_out2.csv", db=url)  # again: no new letters
    store = open_store(url)
    ids = store.queue_ids()
    store.close()
    assert len(ids) == 8 and all(i.startswith("ROW0000") for i in ids)
    assert _read_csv(tmp_path / "a_out.csv")["id"].tolist() == ["ROW000002", "ROW000003", "ROW000004", "ROW000005"]


def test_rows_the_review_database_refuses_are_reported_and_the_rest_stored(tmp_path, model_dir):
    """An id too long for the database's column is skipped there (the row stays in the output)
    and named in the summary; an over-long channel is cut and counted."""
    from triage.store import open_store

    url = f"sqlite:///{tmp_path / 'review.db'}"
    df = _input(5)
    df.loc[3, "编号"] = "长" * 250
    df["信访形式"] = ["来信", "来信", "网上信访" * 20, "来信", "来信"]
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    s = _score(model_dir, src, tmp_path / "o.csv", db=url, chunksize=2)
    assert len(_read_csv(tmp_path / "o.csv")) == 5
    assert len(s.db_skipped) == s.db_skipped_n == s.stats()["db_skipped"] == 1 and s.db_cut == {"channel": 1}
    assert s.db_skipped[0].startswith("第 5 行：")
    assert "未写入复核数据库 1 行" in s.report() and "信访形式 1 件" in s.report()
    store = open_store(url)
    assert len(store.queue_ids()) == 4
    store.close()


def test_ids_channels_and_warnings_are_masked_unless_unmask(tmp_path, model_dir):
    df = _input(24)
    serials = [f"20261127{i:08d}" for i in range(20)]  # a bureau's own long serials: some pass the card (Luhn) check
    df["编号"] = ["110101199003077774", "ab13912345678cd", "13912345678", *serials, "X24"]
    df["信访形式"] = ["电话13912345678"] + ["来信"] * 23
    df.loc[1, "来信日期"] = "13912345678"  # echoed in a warning
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    s = _score(model_dir, src, tmp_path / "o.csv")
    res = _read_csv(tmp_path / "o.csv")
    assert "110101199003077774" not in res["id"][0] and "13912345678" not in res["channel"][0]
    assert res["id"][1] == "ab13912345678cd" and "13912345678" not in res["id"][2]
    assert res["id"][3:23].tolist() == serials  # only an ID number or a mobile as the whole id is masked
    assert s.warnings and not any("13912345678" in w for w in s.warnings)
    s = _score(model_dir, src, tmp_path / "u.csv", unmask=True)
    res = _read_csv(tmp_path / "u.csv")
    assert res["id"][0] == "110101199003077774" and res["channel"][0] == "电话13912345678"
    assert any("13912345678" in w for w in s.warnings)


# ---------------------------------------------------------------------------------- resume


def test_resume_with_a_different_input_is_refused(tmp_path, model_dir):
    src = tmp_path / "in.csv"
    _input(6).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    d = parts_dir(out)
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"format": 1, "input": "other.csv"}), encoding="utf-8")
    with pytest.raises(ResumeError, match="不符"):
        _score(model_dir, src, out, resume=True)
    s = _score(model_dir, src, out)  # without --resume the stale parts are discarded
    assert s.rows == 6 and s.resumed_chunks == 0


_SLOW_RUNNER = """
import sys, time
import triage.score as s
orig = s._process_chunk
def slow(task):
    time.sleep(0.3)
    return orig(task)
s._process_chunk = slow
sys.exit(s.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path, model_dir):
    n = 60
    df = _input(n)
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "o.csv"
    args = [str(src), "-o", str(out), "--model", model_dir, "--chunksize", "5", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_RUNNER, *args], env=env, stderr=subprocess.PIPE)
    d = parts_dir(out)
    deadline = time.monotonic() + 120
    try:
        while not (d / "000000.csv").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no part appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    done_before = len(list(d.glob("*.csv")))
    assert 1 <= done_before < n // 5
    s = _score(model_dir, src, out, chunksize=5, resume=True)
    assert s.resumed_chunks == done_before and s.rows == n
    res = _read_csv(out)
    assert res["id"].tolist() == df["编号"].tolist()
    assert res["id"].is_unique and (res["error"] == "").all()
    assert not d.exists()


def test_run_args_accepts_the_leads_subparser_namespace(tmp_path, model_dir, capsys):
    """cli.py's `score` subparser has no --no-progress/--chunksize: run_args must cope."""
    import argparse

    src = tmp_path / "in.csv"
    _input(3).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    ns = argparse.Namespace(input=str(src), output=str(out), model=model_dir, jobs=1, resume=False, db=None, unmask=False)
    assert score_mod.run_args(ns) == 0
    err = capsys.readouterr().err
    assert "共 3 行" in err and str(out) in err
    ns.output = str(src)  # writing over the input is refused
    assert score_mod.run_args(ns) == 2
    assert "输出文件不能与输入文件相同" in capsys.readouterr().err


def test_column_writer_gives_each_cell_as_cell_out_and_formula_guard():
    from triage.io import guard_formula

    frame = pd.DataFrame(
        {
            "text": ["=cmd|' /C calc'!A0", "正常", None, "+1", "@x", "\t制表", "-5"],
            "conf": [0.5, float("nan"), -0.25, 1.0, 0.0, 1e-05, 0.9966],
            "flag": [True, False, True, False, True, False, True],
            "when": pd.to_datetime(["2024-01-02", None, "2024-03-04 05:06:07", "2024-01-01", None, "2023-12-31", "2024-02-29"], format="mixed"),
            "people": pd.array([1, None, 3, 4, 5, 6, 7], dtype="Int64"),
            "mixed": [1, "a", None, 2.5, np.int64(3), True, "=1+1"],
        }
    )
    for name in frame.columns:
        expected = [guard_formula(score_mod._cell_out(v)) for v in frame[name].tolist()]
        assert score_mod._column_out(frame[name]) == expected, name
    assert score_mod._column_out(frame["text"])[0].startswith("'=")
