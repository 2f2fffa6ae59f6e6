"""The letter schema, defined once.

Everything that crosses a boundary (a clerk's export, a training file, the scorer's
output, the review database) is described here: input columns and their Chinese /
English header aliases, the classifier heads and their label sets, and the output
fields with their Chinese display names.  Every reader validates against these
definitions and every error names the file, the row and the column.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from itertools import compress
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class SchemaError(ValueError):
    """Input does not match the schema.

    ``expected`` and ``found`` say what was wanted and what was seen; ``source``,
    ``row`` (1-based, as a clerk counts rows in Excel, header = row 1) and ``column``
    locate the problem.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.row = row
        self.column = column
        self.expected = expected
        self.found = found
        super().__init__(self.__str__())

    def __str__(self) -> str:  # noqa: D401 - a message, not a description
        where = []
        if self.source:
            where.append(f"文件 {self.source}")
        if self.row is not None:
            where.append(f"第 {self.row} 行")
        if self.column:
            where.append(f"列 “{self.column}”")
        parts = [("，".join(where) + "：") if where else "", self.message]
        if self.expected is not None:
            parts.append(f"；应为：{self.expected}")
        if self.found is not None:
            parts.append(f"；实际：{self.found}")
        return "".join(parts)


# --------------------------------------------------------------------------------------
# Input columns
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputField:
    name: str  # canonical English name, used in code and CSV output
    display: str  # Chinese display name, used in the clerk workbook
    aliases: tuple[str, ...]  # accepted headers (Chinese and English), matched loosely
    kind: str = "text"  # text | date | int


INPUT_FIELDS: tuple[InputField, ...] = (
    InputField("id", "编号", ("编号", "信访件编号", "留言编号", "信访编号", "件号", "id", "letter_id")),
    InputField("title", "标题", ("标题", "留言主题", "主题", "title", "subject")),
    InputField(
        "text",
        "内容",
        ("内容", "信访内容", "留言详情", "诉求内容", "留言内容", "来信内容", "正文", "text", "body", "content"),
    ),
    InputField("received_at", "来信日期", ("来信日期", "登记日期", "留言时间", "来访日期", "受理日期", "received_at", "date", "time"), "date"),
    InputField("channel", "信访形式", ("信访形式", "渠道", "来源渠道", "channel")),
    InputField("petitioner", "信访人", ("信访人", "姓名", "留言用户", "petitioner", "name")),
    InputField("id_number", "证件号码", ("证件号码", "身份证号", "身份证号码", "id_number")),
    InputField("phone", "联系电话", ("联系电话", "电话", "手机", "phone")),
    InputField("address", "地址", ("地址", "住址", "通讯地址", "address")),
    InputField("num_people", "人数", ("人数", "来访人数", "num_people"), "int"),
)
INPUT_BY_NAME: dict[str, InputField] = {f.name: f for f in INPUT_FIELDS}
#: At least one of these must be present as a column, and a row needs one of them non-empty.
TEXT_FIELDS: tuple[str, ...] = ("title", "text")
#: Personal data columns: masked in every export and log unless explicitly unmasked.
PII_FIELDS: tuple[str, ...] = ("id_number", "phone", "petitioner", "address")
CHANNELS: tuple[str, ...] = ("来信", "来访", "网上", "电话")
#: A letter longer than this is truncated for scoring (the full text is kept in the output).
MAX_TEXT_CHARS = 20_000


def _header_key(header: object) -> str:
    """Loose header comparison: NFKC, no spaces, no trailing colon or asterisk, lower case."""
    s = unicodedata.normalize("NFKC", str(header)).strip().lower()
    for ch in " \t\r\n*:：_":
        s = s.replace(ch, "")
    return s


_ALIAS_INDEX: dict[str, str] = {}
for _f in INPUT_FIELDS:
    for _a in (_f.name, *_f.aliases):
        _ALIAS_INDEX[_header_key(_a)] = _f.name


def canonical_column(header: object) -> str | None:
    """The canonical input field a header stands for, or None for a pass-through column."""
    return _ALIAS_INDEX.get(_header_key(header))


# --------------------------------------------------------------------------------------
# Heads and label sets
# --------------------------------------------------------------------------------------

TRACK_LITIGATION = "涉法涉诉"
TRACK_ORDINARY = "普通信访"
TRACK_LABELS: tuple[str, ...] = (TRACK_LITIGATION, TRACK_ORDINARY)

#: Legal channel for 涉法涉诉 letters, with the guidance a clerk gives the petitioner.
ROUTE_GUIDANCE: dict[str, str] = {
    "诉讼": "属民事等争议，引导向有管辖权的人民法院提起诉讼",
    "执行": "已有生效法律文书，引导向作出裁判的人民法院申请强制执行或反映执行问题",
    "申诉再审": "对生效裁判不服，引导依法向人民法院申请再审或向人民检察院申请监督",
    "仲裁": "属劳动人事争议，引导向劳动人事争议仲裁委员会申请仲裁或对裁决依法起诉",
    "行政复议诉讼": "对行政行为不服，引导依法申请行政复议或提起行政诉讼",
    "公安检察": "属刑事或治安案件办理问题，引导向公安机关报案、控告或向人民检察院申请监督",
}
ROUTE_LABELS: tuple[str, ...] = tuple(ROUTE_GUIDANCE)

RISK_LABELS: tuple[str, ...] = ("低", "中", "高")
RISK_REASONS: tuple[str, ...] = ("越级进京", "集体行动", "极端言行", "重复长期", "群体利益", "媒体曝光", "情绪激烈")

#: Where the default county taxonomy lives; a bureau edits this file for its own county.
DEFAULT_TAXONOMY = Path(__file__).resolve().parent.parent / "data" / "taxonomy.toml"


@dataclass(frozen=True)
class Department:
    name: str
    full_name: str
    remit: str
    categories: tuple[str, ...]


@lru_cache(maxsize=8)
def load_taxonomy(path: str | Path | None = None) -> tuple[Department, ...]:
    """Read the county's departments (``[[department]]`` tables) from a TOML file."""
    path = Path(path) if path else DEFAULT_TAXONOMY
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise SchemaError("找不到部门分类文件", source=str(path), expected="一个 TOML 文件") from None
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"部门分类文件格式错误（{exc}）", source=str(path)) from None
    out = []
    for i, d in enumerate(raw.get("department", []), 1):
        missing = [k for k in ("name", "remit", "categories") if k not in d]
        if missing:
            raise SchemaError(
                f"第 {i} 个 [[department]] 缺少字段", source=str(path), expected="name, remit, categories", found=", ".join(sorted(d))
            )
        out.append(Department(d["name"], d.get("full_name", d["name"]), d["remit"], tuple(d["categories"])))
    names = [d.name for d in out]
    if len(set(names)) != len(names) or len(out) < 2:
        raise SchemaError("部门名称必须唯一且至少两个", source=str(path), found=", ".join(names))
    return tuple(out)


def department_labels(taxonomy: str | Path | None = None) -> tuple[str, ...]:
    return tuple(d.name for d in load_taxonomy(taxonomy))


@dataclass(frozen=True)
class Head:
    """One classifier head: a labelled column and its closed label set."""

    name: str
    display: str
    labels: tuple[str, ...]
    #: only letters whose ``track`` is 涉法涉诉 carry this head's label
    only_for_litigation: bool = False
    description: str = ""


def default_heads(taxonomy: str | Path | None = None) -> dict[str, Head]:
    return {
        "track": Head("track", "办理类别", TRACK_LABELS, description="诉访分离：涉法涉诉或普通信访"),
        "route": Head("route", "法律途径", ROUTE_LABELS, True, "涉法涉诉件应引导的法定途径"),
        "department": Head("department", "责任单位", department_labels(taxonomy), description="责任单位"),
        "risk": Head("risk", "风险等级", RISK_LABELS, description="越级、集体、极端、重复信访的风险"),
    }


def validate_labels(
    values: Iterable[object], head: Head, *, source: str | None = None, column: str | None = None, first_row: int = 2
) -> list[str | None]:
    """Check each label against the head's set; blanks become None. Raises on the first unknown label."""
    allowed = set(head.labels)
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() == "":
            out.append(None)
            continue
        s = str(v).strip()
        if s not in allowed:
            raise SchemaError(
                f"“{head.name}”标签不在标签集中",
                source=source,
                row=first_row + i,
                column=column or head.name,
                expected=" / ".join(head.labels),
                found=s,
            )
        out.append(s)
    return out


# --------------------------------------------------------------------------------------
# Output fields
# --------------------------------------------------------------------------------------

#: Scorer output fields (English name -> Chinese display name), one-to-one, in workbook order.
OUTPUT_FIELDS: dict[str, str] = {
    "track": "办理类别",
    "track_confidence": "类别置信度",
    "route": "法律途径",
    "route_confidence": "途径置信度",
    "route_guidance": "引导意见",
    "department": "责任单位",
    "department_confidence": "单位置信度",
    "department_alternatives": "备选单位",
    "risk": "风险等级",
    "risk_score": "风险分值",
    "risk_reasons": "风险原因",
    "evidence": "依据词语",
    "alternatives": "各项备选",
    "needs_review": "需复核",
    "accept_by": "受理告知期限",
    "model_version": "模型版本",
    "error": "错误",
}
#: Label columns of a training file (the synthetic corpus writes these).
LABEL_FIELDS: dict[str, str] = {
    "track": "办理类别",
    "route": "法律途径",
    "department": "责任单位",
    "risk": "风险等级",
    "risk_reasons": "风险原因",
}


def display_name(field_name: str) -> str:
    """Chinese display name for any input or output field; unknown columns pass through."""
    if field_name in OUTPUT_FIELDS:
        return OUTPUT_FIELDS[field_name]
    if field_name in INPUT_BY_NAME:
        return INPUT_BY_NAME[field_name].display
    return field_name


_DISPLAY_TO_NAME = {v: k for k, v in OUTPUT_FIELDS.items()} | {f.display: f.name for f in INPUT_FIELDS}
assert len(set(OUTPUT_FIELDS.values())) == len(OUTPUT_FIELDS), "display names must be one-to-one"


def field_from_display(display: str) -> str:
    return _DISPLAY_TO_NAME.get(display, display)


# --------------------------------------------------------------------------------------
# Validating a table
# --------------------------------------------------------------------------------------


@dataclass
class ValidationReport:
    source: str
    rows: int = 0
    column_map: dict[str, str] = field(default_factory=dict)  # original header -> canonical
    passthrough: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: row index (0-based in the frame) -> problem, for rows that cannot be scored
    row_errors: dict[int, str] = field(default_factory=dict)
    #: row indexes whose id was made from the row number (no id column, or a blank id): such an
    #: id names a row of this file only, not a letter across files
    generated_ids: list[int] = field(default_factory=list)


#: received_at must fall in [EARLIEST_DATE, LATEST_DATE); a date outside is a warning and left blank
EARLIEST_DATE = pd.Timestamp("1900-01-01")
LATEST_DATE = pd.Timestamp("2100-01-01")
#: the largest count of people a row may give (the review database stores it as a 32-bit integer)
MAX_PEOPLE = 2**31 - 1


def _accepted_aliases() -> str:
    return "；".join(f"{f.name}: {'/'.join(f.aliases)}" for f in INPUT_FIELDS if f.name in TEXT_FIELDS)


def validate_frame(df: pd.DataFrame, source: str, *, header_row: int = 1) -> tuple[pd.DataFrame, ValidationReport]:
    """Map headers onto the schema and check every row; never drops a row.

    Returns a frame whose known columns carry canonical names (unknown columns pass through
    untouched) and a report.  Rows that cannot be scored (no title and no text) are kept and
    listed in ``report.row_errors``; a table without any text column raises ``SchemaError``.
    """
    report = ValidationReport(source=source, rows=len(df))
    rename: dict[str, str] = {}
    seen: dict[str, str] = {}
    for col in df.columns:
        canon = canonical_column(col)
        if canon is None:
            report.passthrough.append(str(col))
            continue
        if canon in seen:
            kept = str(col)
            if kept == canon:  # 标题 and title: the kept one would collide with 标题 renamed to title
                kept = f"{col}（重复）"
                while kept in {str(c) for c in df.columns}:
                    kept += "（重复）"
                rename[col] = kept
            report.warnings.append(f"列“{col}”与列“{seen[canon]}”都对应 {canon}，只使用“{seen[canon]}”，“{col}”原样保留" + (f"（改名为“{kept}”）" if kept != str(col) else ""))
            report.passthrough.append(kept)
            continue
        seen[canon] = str(col)
        rename[col] = canon
    report.column_map = {str(k): v for k, v in rename.items() if v in INPUT_BY_NAME}
    if not any(t in seen for t in TEXT_FIELDS):
        raise SchemaError(
            "缺少信访内容列",
            source=source,
            expected=_accepted_aliases(),
            found="、".join(str(c) for c in df.columns) or "（没有列）",
        )
    out = df.rename(columns=rename).copy()
    for t in TEXT_FIELDS:
        if t not in out.columns:
            out[t] = ""
    for name in ("title", "text", "id", "channel", "petitioner", "id_number", "phone", "address"):
        if name in out.columns:
            col = out[name]
            # all str already (a CSV read as text): only the dtype; pandas' string dtype can hold NaN
            if pd.api.types.infer_dtype(col, skipna=False) == "string" and not col.hasnans:
                out[name] = col.astype(object)
            else:
                out[name] = col.map(_cell_to_str).astype(object)
    if "id" not in out.columns:
        out["id"] = [f"ROW{header_row + i + 1:06d}" for i in out.index]  # index = global row position (chunks)
        report.generated_ids = [int(i) for i in out.index]
        report.warnings.append("没有编号列，已按行号生成编号")
    else:
        out["id"] = [v.strip() for v in out["id"].tolist()]  # " G1 " is G1 (and a duplicate of it)
        blank = out["id"] == ""
        if blank.any():
            out.loc[blank, "id"] = [f"ROW{header_row + i + 1:06d}" for i in out.index[blank]]
            report.generated_ids = [int(i) for i in out.index[blank]]
            report.warnings.append(f"{int(blank.sum())} 行编号为空，已按行号生成")
        dup = out["id"].duplicated(keep=False)
        if dup.any():
            for i in out.index[dup]:
                report.warnings.append(f"文件 {source}，第 {header_row + i + 1} 行，列 “{seen.get('id', 'id')}”：编号重复（{out.at[i, 'id']}）")
    if "received_at" in out.columns:
        parsed = _parse_dates(_date_text(out["received_at"]))
        bad = _not_blank(out["received_at"], parsed.isna())
        for i in out.index[bad]:
            report.warnings.append(
                f"文件 {source}，第 {header_row + i + 1} 行，列 “{seen['received_at']}”：日期无法识别（{out.at[i, 'received_at']}），应为 2026-11-26 之类的日期"
            )
        # a typo such as 9999-12-30 parses, but no deadline can be counted from it
        far = parsed.notna() & ((parsed < EARLIEST_DATE) | (parsed >= LATEST_DATE))
        for i in out.index[far]:
            report.warnings.append(
                f"文件 {source}，第 {header_row + i + 1} 行，列 “{seen['received_at']}”：日期超出范围（{out.at[i, 'received_at']}），"
                f"应在 {EARLIEST_DATE.year} 年到 {LATEST_DATE.year - 1} 年之间，已留空"
            )
        out["received_at"] = parsed.mask(far)
    if "num_people" in out.columns:
        nums = pd.to_numeric(out["num_people"], errors="coerce")
        # a whole number the review database's integer column holds; 1.5, -2 or 1e12 is a
        # warning and a blank cell, like any other unreadable count, not an error for the chunk
        valid = nums.notna() & (nums == nums.round()) & (nums >= 0) & (nums <= MAX_PEOPLE)
        bad = _not_blank(out["num_people"], ~valid)
        for i in out.index[bad]:
            report.warnings.append(
                f"文件 {source}，第 {header_row + i + 1} 行，列 “{seen['num_people']}”：人数应为 0 到 {MAX_PEOPLE} 的整数，实际为 {out.at[i, 'num_people']}"
            )
        out["num_people"] = nums.where(valid).astype("Int64")
    empty = _blank_text(out["title"]) & _blank_text(out["text"])
    for i in out.index[empty]:
        report.row_errors[int(i)] = f"第 {header_row + i + 1} 行：标题和内容都为空，无法分拣"
    return out, report


def _not_blank(values: pd.Series, where: pd.Series) -> pd.Series:
    """``where``, and the cell is not blank (``_cell_to_str(v) != ""``); cells outside ``where``
    are not looked at (a column's few unreadable cells, not every cell, go through Python)."""
    out = pd.Series(False, index=values.index)
    where = where.to_numpy(dtype=bool)
    if where.any():
        out[where] = [_cell_to_str(v) != "" for v in values[where].tolist()]
    return out


def _blank_text(values: pd.Series) -> pd.Series:
    """Cells of a text column (all ``str`` after validation) that are empty or whitespace."""
    return pd.Series([not v.strip() for v in values.tolist()], index=values.index, dtype=bool)


#: text that can be a date: a 4-digit year, or day, month and year as numbers (pandas alone
#: would also read "now", "today" and a bare time such as 10:30 as the moment of the run)
_DATE_LIKE = re.compile(r"\d{4}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2}")
#: China Standard Time, which a date with a time zone (…+08:00, …Z) is shown in
CHINA_TZ = dt.timezone(dt.timedelta(hours=8))


def _date_text(values: pd.Series) -> pd.Series:
    """Date cells made readable for pandas: full-width digits made ASCII (NFKC), 年月日 dates
    rewritten (:func:`_chinese_date`), and text that cannot be a date made None (so it is
    reported as unreadable, not taken as today).  Other cells are returned as they are."""
    cells = values.tolist()
    fix = [isinstance(v, str) and (not v.isascii() or not _DATE_LIKE.search(v)) for v in cells]
    if not any(fix):
        return values
    out = values.astype(object).copy()
    where = pd.Series(fix, index=values.index, dtype=bool)
    fixed = []
    for v in compress(cells, fix):
        v = unicodedata.normalize("NFKC", v)
        v = _chinese_date(v) if "年" in v else v
        fixed.append(v if _DATE_LIKE.search(v) else None)
    out[where] = fixed
    return out


def _parse_dates(values: pd.Series) -> pd.Series:
    """Dates of a column, NaT where unreadable.  A date with a time zone is converted to China
    Standard Time and kept without the zone (pandas refuses a column that mixes zones, or
    zones and none, and a zoned column cannot be compared with the plain range limits)."""
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        if getattr(parsed.dt, "tz", None) is None:
            return parsed
    except (ValueError, TypeError):  # mixed time zones
        pass
    one = []
    for v in values.tolist():
        ts = pd.to_datetime(v, errors="coerce") if v is not None else pd.NaT
        if ts is not pd.NaT and ts.tzinfo is not None:
            ts = ts.tz_convert(CHINA_TZ).tz_localize(None)
        one.append(ts)
    return pd.Series(one, index=values.index, dtype="datetime64[us]")


def _chinese_date(v: object) -> object:
    """2026年11月26日 (and 2026年11月26日 9时30分) -> 2026-11-26 09:30; anything else unchanged."""
    if isinstance(v, str) and "年" in v:
        s = v.strip().replace("年", "-").replace("月", "-").replace("日", " ").replace("号", " ")
        s = s.replace("时", ":").replace("点", ":").replace("分", "").replace("秒", "")
        return " ".join(s.split()).rstrip(":")
    return v


def _cell_to_str(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if pd.isna(v):
            return ""
        if v.is_integer():
            return str(int(v))
    if v is pd.NA or v is pd.NaT:
        return ""
    return str(v)


def letter_text(title: str, text: str) -> str:
    """The text a model reads: title and body, joined."""
    title, text = (title or "").strip(), (text or "").strip()
    if title and text:
        return f"{title}。{text}"
    return title or text
