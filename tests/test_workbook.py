"""The clerks' workbook, written from hand-made result rows (no model needed)."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest

from triage.schema import OUTPUT_FIELDS, display_name
from triage.workbook import SHEETS, render_alternatives, render_evidence, write_workbook

COLUMNS = ["id", "title", "text", "received_at", "备注", *OUTPUT_FIELDS]


def _row(i: int, *, track="普通信访", route="", risk="低", score=0.1, review=False, text="拖欠工资三个月") -> dict:
    ev = {"track": [[0, 2, "拖欠"], [2, 4, "工资"]], "department": [[0, 4, "拖欠工资"], [9, 11, "工资"]]}
    return {
        "id": f"W{i}",
        "title": "反映问题",
        "text": text,
        "received_at": "2026-11-01",
        "备注": "",
        "track": track,
        "track_confidence": "0.91",
        "route": route,
        "route_confidence": "0.6" if route else "",
        "route_guidance": "引导向人民法院申请强制执行" if route else "",
        "department": "人社局",
        "department_confidence": "0.8",
        "department_alternatives": json.dumps([["住建局", 0.12], ["教育局", 0.05]], ensure_ascii=False),
        "risk": risk,
        "risk_score": str(score),
        "risk_reasons": "越级进京|集体行动" if risk == "高" else "",
        "evidence": json.dumps(ev, ensure_ascii=False),
        "alternatives": json.dumps({"track": [["涉法涉诉", 0.09]], "department": [["住建局", 0.12]]}, ensure_ascii=False),
        "needs_review": "true" if review else "false",
        "accept_by": "2026-11-16",
        "model_version": "v1",
        "error": "",
    }


def _frames():
    rows = [
        _row(0),
        _row(1, risk="高", score=0.7, review=True),
        _row(2, track="涉法涉诉", route="执行", risk="中", score=0.4),
        _row(3, risk="高", score=0.95, review=True, text="=HYPERLINK(\"http://x\")"),
        _row(4, risk="高", score=0.8),
    ]
    # two chunks, as the scorer streams them
    return [pd.DataFrame(rows[:2], columns=COLUMNS), pd.DataFrame(rows[2:], columns=COLUMNS)]


@pytest.fixture()
def workbook(tmp_path):
    path = tmp_path / "wb.xlsx"
    warnings = write_workbook(str(path), COLUMNS, iter(_frames()), info={"model_version": "v1", "rows": 5, "labels": {"risk": {"高": 3, "中": 1, "低": 1}}, "masked": True})
    return openpyxl.load_workbook(path), warnings


def _table(ws):
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def test_sheets_headers_frozen_filter_widths(workbook):
    wb, warnings = workbook
    assert wb.sheetnames == list(SHEETS) and warnings == []
    ws = wb["全部"]
    assert [c.value for c in ws[1]] == [display_name(c) for c in COLUMNS]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(COLUMNS))}6"
    assert ws.column_dimensions["C"].width == 60  # 内容
    assert ws["A1"].font.bold


def test_rows_go_to_the_right_sheets(workbook):
    wb, _ = workbook
    assert [r["编号"] for r in _table(wb["全部"])] == ["W0", "W1", "W2", "W3", "W4"]
    high = _table(wb["高风险"])
    assert [r["编号"] for r in high] == ["W3", "W4", "W1"]  # risk score descending
    assert [r["风险分值"] for r in high] == [0.95, 0.8, 0.7]
    lit = wb["涉法涉诉"]
    assert [c.value for c in lit[1]][:5] == ["编号", "标题", "法律途径", "引导意见", "途径置信度"]
    assert [(r["编号"], r["法律途径"]) for r in _table(lit)] == [("W2", "执行")]
    assert [r["编号"] for r in _table(wb["待复核"])] == ["W1", "W3"]


def test_values_are_readable_and_styled(workbook):
    wb, _ = workbook
    ws = wb["全部"]
    rows = _table(ws)
    assert rows[0]["依据词语"] == "办理类别：拖欠、工资；责任单位：拖欠工资、工资"
    assert rows[0]["备选单位"] == "住建局 12%、教育局 5%"
    assert rows[0]["各项备选"] == "办理类别：涉法涉诉 9%；责任单位：住建局 12%"
    assert rows[1]["风险原因"] == "越级进京、集体行动"
    assert rows[1]["需复核"] == "是" and rows[0]["需复核"] == "否"
    assert rows[0]["类别置信度"] == pytest.approx(0.91)
    headers = [c.value for c in ws[1]]
    conf = ws.cell(row=2, column=headers.index("类别置信度") + 1)
    assert conf.number_format == "0.0%"
    risk_col = headers.index("风险等级") + 1
    assert ws.cell(row=3, column=risk_col).fill.start_color.rgb.endswith("FFC7CE")  # 高 red
    assert ws.cell(row=4, column=risk_col).fill.start_color.rgb.endswith("FFE699")  # 中 amber
    assert ws.cell(row=2, column=risk_col).fill.fill_type is None
    assert ws.cell(row=2, column=headers.index("内容") + 1).alignment.wrap_text


def test_formula_is_neutralised(workbook):
    wb, _ = workbook
    ws = wb["全部"]
    headers = [c.value for c in ws[1]]
    cell = ws.cell(row=5, column=headers.index("内容") + 1)
    assert cell.data_type == "s" and cell.value.startswith("'=HYPERLINK")


def test_info_sheet(workbook):
    wb, _ = workbook
    rows = [r for r in wb["说明"].iter_rows(values_only=True) if r and r[0]]
    keys = [r[0] for r in rows]
    assert "模型版本" in keys and "各列含义" in keys
    meaning = dict(r[:2] for r in rows[keys.index("各列含义") + 1 :])
    assert set(meaning) == {display_name(c) for c in COLUMNS}
    assert meaning["备注"] == "原表中的列，原样保留"
    assert dict(r[:2] for r in rows[: keys.index("各列含义")])["风险等级"].startswith("高 3")


def test_empty_input_gives_headers_only(tmp_path):
    path = tmp_path / "e.xlsx"
    write_workbook(str(path), COLUMNS, iter([pd.DataFrame(columns=COLUMNS)]))
    wb = openpyxl.load_workbook(path)
    for name in SHEETS[:4]:
        assert wb[name].max_row == 1


def test_renderers_tolerate_odd_values():
    assert render_evidence("") == "" and render_evidence(None) == ""
    assert render_evidence("not json") == "not json"
    assert render_evidence('{"risk": [[0, 2, "上访"], [5, 7, "上访"]], "track": []}') == "风险等级：上访"
    assert render_alternatives("[]") == ""
    assert render_alternatives('{"route": [["诉讼", 0.456]]}') == "法律途径：诉讼 46%"
