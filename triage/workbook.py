"""The clerks' workbook: the scorer's results as an Excel file people can work from.

Sheets: 全部 (every letter, input order), 高风险 (risk 高, highest risk score first),
涉法涉诉 (with the legal channel and the guidance for the petitioner up front), 待复核
(needs_review) and 说明 (model version, counts, time, what each column means).

Chinese headers (:func:`triage.schema.display_name`), frozen header row, autofilter, column
widths, risk colouring (高 red, 中 amber), wrapped long text, confidences as percentages,
evidence and alternatives as readable terms.  Every cell goes through
:func:`triage.io.excel_cell` (formula guard, control characters, Excel's cell limit).
Written with openpyxl's write-only mode, so memory stays flat apart from the 高风险 rows,
which are held to be sorted.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from triage.io import excel_cell
from triage.schema import (
    CHANNELS,
    INPUT_BY_NAME,
    OUTPUT_FIELDS,
    RISK_LABELS,
    RISK_REASONS,
    ROUTE_LABELS,
    TRACK_LABELS,
    TRACK_LITIGATION,
    display_name,
)

SHEET_ALL = "全部"
SHEET_HIGH = "高风险"
SHEET_LITIGATION = "涉法涉诉"
SHEET_REVIEW = "待复核"
SHEET_INFO = "说明"
SHEETS: tuple[str, ...] = (SHEET_ALL, SHEET_HIGH, SHEET_LITIGATION, SHEET_REVIEW, SHEET_INFO)

HEAD_ORDER: tuple[str, ...] = ("track", "route", "department", "risk")
#: days after receipt within which the petitioner is told whether the matter is accepted (信访工作条例)
ACCEPT_DAYS = 15

#: What each column means, for the 说明 sheet.
FIELD_HELP: dict[str, str] = {
    "id": "信访件编号（原表没有编号时按行号生成，如 ROW000002）",
    "title": "来信标题",
    "text": "来信内容（原文）",
    "received_at": "来信日期",
    "channel": f"信访形式（{'、'.join(CHANNELS)}）",
    "petitioner": "信访人",
    "id_number": "信访人证件号码",
    "phone": "联系电话",
    "address": "地址",
    "num_people": "来访人数",
    "track": f"诉访分离建议：{'或'.join(TRACK_LABELS)}",
    "track_confidence": "办理类别建议的置信度（0–100%）",
    "route": f"{TRACK_LITIGATION}件应引导的法定途径（{'、'.join(ROUTE_LABELS)}）",
    "route_confidence": "法律途径建议的置信度",
    "route_guidance": "告知信访人的引导意见",
    "department": "建议的责任单位",
    "department_confidence": "责任单位建议的置信度",
    "department_alternatives": "其他可能的责任单位及其概率",
    "risk": f"越级、集体、极端、重复信访风险等级：{'、'.join(RISK_LABELS)}",
    "risk_score": "风险分值（0–1，越大风险越高）",
    "risk_reasons": f"风险原因（{'、'.join(RISK_REASONS)}）",
    "evidence": "支持各项建议的原文词语",
    "alternatives": "各项建议的其他可能及其概率",
    "needs_review": "置信度低或风险高，需人工复核",
    "accept_by": f"来信日期后 {ACCEPT_DAYS} 日：书面告知信访人是否受理的期限",
    "model_version": "给出建议的模型版本",
    "error": "该行未能分拣的原因（为空表示正常）",
}

_PERCENT = ("track_confidence", "route_confidence", "department_confidence")
_FLOAT = ("risk_score",)
#: long text: wrapped (each styled cell costs write time, so only the long columns)
_WRAP = ("title", "text", "evidence", "alternatives", "route_guidance", "error")
_WIDTHS = {
    "id": 14, "title": 28, "text": 60, "received_at": 12, "channel": 9, "petitioner": 10, "id_number": 20,
    "phone": 14, "address": 24, "num_people": 6, "track": 10, "track_confidence": 9, "route": 12,
    "route_confidence": 9, "route_guidance": 40, "department": 12, "department_confidence": 9,
    "department_alternatives": 28, "risk": 8, "risk_score": 8, "risk_reasons": 20, "evidence": 40,
    "alternatives": 36, "needs_review": 8, "accept_by": 13, "model_version": 16, "error": 30,
}
_RISK_FILL = {
    "高": PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE"),
    "中": PatternFill("solid", start_color="FFE699", end_color="FFE699"),
}
_HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
_BOLD = Font(bold=True)
_WRAP_ALIGN = Alignment(wrap_text=True, vertical="top")
_TOP_ALIGN = Alignment(vertical="top")
_TRUE = {"1", "true", "yes", "y", "t", "是"}


# --------------------------------------------------------------------------------------
# Readable values
# --------------------------------------------------------------------------------------


def _loads(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return json.loads(value)
    except (json.JSONDecodeError, ValueError):
        return value


def _head_display(head: str) -> str:
    return OUTPUT_FIELDS.get(head, head)


def render_evidence(value: Any) -> str:
    """``{"track": [[s, e, "判决书"], ...], ...}`` -> ``办理类别：判决书、强制执行；责任单位：…``."""
    data = _loads(value)
    if not isinstance(data, dict):
        return "" if data is None else str(data)
    parts = []
    heads = [h for h in HEAD_ORDER if h in data] + [h for h in data if h not in HEAD_ORDER]
    for head in heads:
        terms: list[str] = []
        for span in data.get(head) or []:
            term = span[2] if isinstance(span, (list, tuple)) and len(span) >= 3 else span
            term = str(term).strip()
            if term and term not in terms:
                terms.append(term)
        if terms:
            parts.append(f"{_head_display(head)}：{'、'.join(terms)}")
    return "；".join(parts)


def _pct(p: Any) -> str:
    try:
        return f"{float(p) * 100:.0f}%"
    except (TypeError, ValueError):
        return str(p)


def _label_list(items: Any) -> str:
    out = []
    for it in items or []:
        if isinstance(it, (list, tuple)) and len(it) >= 2:
            out.append(f"{it[0]} {_pct(it[1])}")
        else:
            out.append(str(it))
    return "、".join(out)


def render_alternatives(value: Any) -> str:
    """``{"department": [["人社局", 0.02], ...]}`` -> ``责任单位：人社局 2%、…``; a plain list -> ``人社局 2%、…``."""
    data = _loads(value)
    if data is None:
        return ""
    if isinstance(data, list):
        return _label_list(data)
    if isinstance(data, dict):
        heads = [h for h in HEAD_ORDER if h in data] + [h for h in data if h not in HEAD_ORDER]
        return "；".join(f"{_head_display(h)}：{_label_list(data[h])}" for h in heads if data[h])
    return str(data)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    if value is None or (isinstance(value, float) and value != value):
        return False
    return bool(value)


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def _display_value(name: str, value: Any) -> Any:
    """A result value as shown to a clerk (before excel_cell)."""
    if name in _PERCENT or name in _FLOAT:
        f = _number(value)
        return f if f is not None else (None if value in (None, "") else value)
    if name == "num_people":
        f = _number(value)
        return int(f) if f is not None and f.is_integer() else (None if value in (None, "") else value)
    if name == "needs_review":
        return "是" if _truthy(value) else "否"
    if name == "evidence":
        return render_evidence(value)
    if name in ("alternatives", "department_alternatives"):
        return render_alternatives(value)
    if name == "risk_reasons":
        return "、".join(s for s in str(value or "").split("|") if s)
    return value


# --------------------------------------------------------------------------------------
# Sheets
# --------------------------------------------------------------------------------------


class _Sheet:
    def __init__(self, wb: Workbook, title: str, columns: Sequence[str], order: Sequence[int]) -> None:
        self.ws = wb.create_sheet(title)
        self.columns = list(columns)
        self.order = list(order)  # positions into the result row
        self.rows = 0
        names = [self.columns[i] for i in self.order]
        for j, name in enumerate(names, 1):
            if name in _WIDTHS:
                width = _WIDTHS[name]
            else:
                width = min(max(len(str(display_name(name))) * 2 + 2, 10), 30)
            self.ws.column_dimensions[get_column_letter(j)].width = width
        self.ws.freeze_panes = "A2"
        header = []
        for name in names:
            c = WriteOnlyCell(self.ws, value=excel_cell(display_name(name)))
            c.font = _BOLD
            c.fill = _HEADER_FILL
            c.alignment = _WRAP_ALIGN
            header.append(c)
        self.ws.append(header)
        self.names = names

    def append(self, values: Sequence[Any], warnings: list[str]) -> None:
        self.rows += 1
        row = []
        for name, i in zip(self.names, self.order):
            v = excel_cell(values[i], warnings, where=f"工作表“{self.ws.title}”第 {self.rows + 1} 行，列 “{display_name(name)}”")
            if name in _WRAP or name in _PERCENT or name == "risk":
                c = WriteOnlyCell(self.ws, value=v)
                if name in _WRAP:
                    c.alignment = _WRAP_ALIGN
                elif name in _PERCENT and isinstance(v, float):
                    c.number_format = "0.0%"
                elif name == "risk" and v in _RISK_FILL:
                    c.fill = _RISK_FILL[v]
                row.append(c)
            else:
                row.append(v)
        self.ws.append(row)

    def finish(self) -> None:
        last = get_column_letter(max(len(self.names), 1))
        self.ws.auto_filter.ref = f"A1:{last}{self.rows + 1}"


def _litigation_order(columns: Sequence[str]) -> list[int]:
    """涉法涉诉 sheet: the legal channel and its guidance right after the letter."""
    front = [n for n in ("id", "title", "route", "route_guidance", "route_confidence") if n in columns]
    return [columns.index(n) for n in front] + [i for i, n in enumerate(columns) if n not in front]


def write_workbook(
    path: str,
    columns: Sequence[str],
    frames: Iterable[pd.DataFrame],
    *,
    info: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write the clerks' workbook to ``path`` from result frames (English column names).

    ``frames`` is streamed (one chunk at a time); values may be typed or the text of the
    scorer's CSV parts.  ``info`` fills the 说明 sheet: model_version, input, created_at,
    rows, scored, errors, needs_review, labels ({head: {label: n}}), masked.  Returns
    warnings (cells cut to Excel's limit, control characters removed).
    """
    columns = [str(c) for c in columns]
    warnings: list[str] = []
    wb = Workbook(write_only=True)
    natural = list(range(len(columns)))
    all_ = _Sheet(wb, SHEET_ALL, columns, natural)
    high = _Sheet(wb, SHEET_HIGH, columns, natural)
    lit = _Sheet(wb, SHEET_LITIGATION, columns, _litigation_order(columns))
    review = _Sheet(wb, SHEET_REVIEW, columns, natural)
    pos = {n: i for i, n in enumerate(columns)}
    high_rows: list[tuple[float, int, list]] = []
    n = 0
    for frame in frames:
        frame = frame[columns]
        for raw in frame.itertuples(index=False, name=None):
            values = [_display_value(name, v) for name, v in zip(columns, raw)]
            all_.append(values, warnings)
            if "risk" in pos and values[pos["risk"]] == "高":
                score = _number(values[pos["risk_score"]]) if "risk_score" in pos else None
                high_rows.append((-(score if score is not None else 0.0), n, values))
            if "track" in pos and values[pos["track"]] == TRACK_LITIGATION:
                lit.append(values, warnings)
            if "needs_review" in pos and values[pos["needs_review"]] == "是":
                review.append(values, warnings)
            n += 1
    high_rows.sort(key=lambda t: (t[0], t[1]))
    for _, _, values in high_rows:
        high.append(values, warnings)
    for sheet in (all_, high, lit, review):
        sheet.finish()
    _info_sheet(wb, columns, dict(info or {}), {s.ws.title: s.rows for s in (all_, high, lit, review)})
    wb.save(path)
    return warnings


def _info_sheet(wb: Workbook, columns: Sequence[str], info: dict, sheet_rows: Mapping[str, int]) -> None:
    ws = wb.create_sheet(SHEET_INFO)
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 80

    def title(text: str) -> None:
        c = WriteOnlyCell(ws, value=text)
        c.font = _BOLD
        ws.append([c])

    title("信访件分拣结果说明")
    ws.append(["生成时间", info.get("created_at", "")])
    ws.append(["输入文件", excel_cell(info.get("input", ""))])
    ws.append(["模型版本", excel_cell(info.get("model_version", ""))])
    for key, label in (("rows", "总行数"), ("scored", "已分拣"), ("errors", "未能分拣"), ("needs_review", "需复核")):
        if key in info:
            ws.append([label, info[key]])
    for sheet, rows in sheet_rows.items():
        ws.append([f"工作表“{sheet}”", f"{rows} 行"])
    for head, counts in (info.get("labels") or {}).items():
        dist = "，".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        ws.append([_head_display(head), dist])
    if "masked" in info:
        ws.append(["个人信息", "已打码（证件号码、电话、姓名、地址及正文中的号码）" if info["masked"] else "未打码：含完整个人信息，注意保密"])
    ws.append(["提示", "模型输出只是分拣建议，不是法律认定；是否受理、走何种法定途径，以登记人员和依法受理机关的认定为准。"])
    ws.append([])
    title("各列含义")
    for name in columns:
        help_text = FIELD_HELP.get(name) or ("原表中的列，原样保留" if name not in INPUT_BY_NAME else "")
        ws.append([excel_cell(display_name(name)), help_text])
