"""Reading and writing clerk tables: CSV (any common Chinese encoding) and XLSX.

Every reader returns :class:`Table` objects whose ``frame`` has been through
:func:`triage.schema.validate_frame`: known columns carry canonical names, unknown
columns pass through untouched, every row is kept (problems are listed in
``report.row_errors`` / ``report.warnings``) and every cell is a string, except the
parsed ``received_at`` (datetime) and ``num_people`` (Int64) columns.

Row numbers in every message are the rows a clerk sees in Excel: the header is row 1
(or the row where the header was found, when a title banner sits above it), so data
row ``i`` (0-based) is row ``header_row + i + 1``.  The frame index is that 0-based
position, also when reading in chunks.

Conventions worth knowing:

* Fully blank rows are kept (they get a row error "标题和内容都为空"), so row counts
  match what the clerk sees.  The one exception: blank rows *after the last non-empty
  row of an XLSX sheet* are dropped, because Excel and openpyxl often report formatted
  but empty rows far below the data.
* Merged XLSX cells: the value belongs to the top-left cell; the other cells are blank.
* Data beyond the last non-empty header cell of an XLSX sheet is ignored, with a warning.
* A title banner above the header (e.g. "某某县信访局来信登记表") is skipped when row 1
  has no known column and one of the first rows has a title/content column.
* Writers neutralise formula injection (:func:`guard_formula`) and write dates as ISO
  text; XLSX cells longer than Excel's 32,767-character limit are truncated with a
  visible marker and a warning.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io as _stdio
import logging
import numbers
import operator
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from itertools import chain, islice, repeat
from typing import Callable, Iterator, Sequence

import pandas as pd

from triage.normalize import mask_pii
from triage.schema import (
    TEXT_FIELDS,
    SchemaError,
    ValidationReport,
    canonical_column,
    validate_frame,
)

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
SUPPORTED = "、".join(CSV_SUFFIXES + XLSX_SUFFIXES)
#: Excel refuses cells longer than this.
EXCEL_CELL_LIMIT = 32_767
TRUNCATION_MARKER = "…（超长已截断，全文见CSV）"
#: Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: How many rows at the top of a sheet are searched for the header.
HEADER_SEARCH_ROWS = 10
_CSV_DELIMITERS = ("\t", ",", ";", "|")
_BLOCK = 1 << 20


@dataclass
class Table:
    """One validated table (or one chunk of it)."""

    frame: pd.DataFrame
    report: ValidationReport
    encoding: str  # the CSV encoding used, or "xlsx"
    source: str
    #: the Excel row number of the header (1 unless a title banner was skipped)
    header_row: int = 1
    #: the sheet read, for XLSX
    sheet: str | None = None


# --------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------

_MAGIC = (
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"%PDF", "PDF 文件"),
    (b"PK\x03\x04", "ZIP 压缩包（如 .xlsx / .docx）"),
    (b"\xd0\xcf\x11\xe0", "旧版 Office 文件（.xls / .doc）"),
    (b"{\\rtf", "RTF 文档"),
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _magic(head: bytes) -> str | None:
    for sig, what in _MAGIC:
        if head.startswith(sig):
            return what
    return None


def _normalise_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise SchemaError("不认识的编码名称", expected="utf-8、gb18030、gbk 等", found=name) from None


def detect_encoding(path: str | os.PathLike) -> str:
    """The encoding of a CSV/text file: ``utf-8-sig``, ``utf-8``, ``utf-16``, ``gb18030``
    (which also reads GBK and GB2312), or, as a last resort, what charset-normalizer finds.

    Raises :class:`SchemaError` for an empty or binary file, a file whose lines mix
    encodings, and one that cannot be decoded; the error names the first bad line.
    """
    source = str(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
        if not head:
            raise SchemaError("文件为空", source=source, expected="带表头的表格文件", found="0 字节")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"  # Excel's "Unicode 文本" export
        bom = head.startswith(codecs.BOM_UTF8)
        what = _magic(head)
        if what:
            raise SchemaError("不是文本表格文件", source=source, expected="CSV 文本或 .xlsx", found=what)
        # the common case in one C-speed pass: the whole file is UTF-8 and has no NUL byte (a
        # valid file is valid line by line too: no UTF-8 sequence contains a newline byte)
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            while block := fh.read(_BLOCK):
                if b"\x00" in block:
                    raise ValueError("NUL")
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return "utf-8-sig" if bom else "utf-8"
        except (UnicodeDecodeError, ValueError):
            pass  # line by line below, to name the first bad line
        fh.seek(0)
        first_utf8 = first_bad_utf8 = first_bad_gb = None
        n_utf8 = n_bad_utf8 = n_nonascii = n_bad_gb = 0
        for lineno, line in enumerate(fh, 1):
            if b"\x00" in line:
                raise SchemaError("不是文本表格文件（含二进制内容）", source=source, row=lineno, expected="CSV 文本或 .xlsx")
            if line.isascii():
                continue
            n_nonascii += 1
            try:
                text = line.decode("utf-8")
                first = _CJK.search(text)
                if first is not None and _CJK.search(text, first.end()) is not None:  # two CJK characters
                    n_utf8 += 1
                    first_utf8 = first_utf8 or lineno
            except UnicodeDecodeError:
                n_bad_utf8 += 1
                first_bad_utf8 = first_bad_utf8 or lineno
            try:
                line.decode("gb18030")
            except UnicodeDecodeError:
                n_bad_gb += 1
                first_bad_gb = first_bad_gb or lineno
    if not n_bad_utf8:
        return "utf-8-sig" if bom else "utf-8"
    if n_utf8 or bom:
        # Some lines are clearly UTF-8 Chinese, others are not UTF-8 at all.
        if bom and not n_utf8:
            bad = first_bad_utf8
        else:
            bad = first_bad_utf8 if n_bad_utf8 <= n_utf8 else first_utf8
        raise SchemaError(
            "文件中混有不同编码（部分行是 UTF-8，部分行是 GBK/GB18030 等）",
            source=source,
            row=bad,
            expected="整个文件使用同一种编码（UTF-8 或 GB18030/GBK）",
            found=f"第 {first_utf8 or 1} 行起为 UTF-8，第 {first_bad_utf8} 行起为其他编码",
        )
    if not n_bad_gb:
        return "gb18030"
    if n_bad_gb * 10 < n_nonascii:
        # Mostly GB18030 with a few undecodable lines: corrupted or mixed, not another encoding.
        raise SchemaError(
            "文件编码有误：个别行无法按 GB18030/GBK 解码（可能混有其他编码或文件已损坏）",
            source=source,
            row=first_bad_gb,
            expected="整个文件使用同一种编码（UTF-8 或 GB18030/GBK）",
            found=f"{n_bad_gb} 行无法解码",
        )
    from charset_normalizer import from_path

    best = from_path(path).best()
    if best is None or not best.encoding:
        raise SchemaError(
            "无法识别文件编码",
            source=source,
            row=first_bad_gb,
            expected="UTF-8 或 GB18030/GBK 编码的 CSV",
            found="无法解码的字节",
        )
    log.info("%s: 编码按 charset-normalizer 识别为 %s", source, best.encoding)
    return _normalise_encoding(best.encoding)


def _first_bad_line(path: str | os.PathLike, encoding: str) -> int | None:
    """The 1-based line of ``path`` that does not decode with ``encoding``, if any."""
    dec = codecs.getincrementaldecoder(encoding)("strict")
    lineno = 1
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            for i in range(0, len(block), 4096):
                piece = block[i : i + 4096]
                try:
                    text = dec.decode(piece)
                except UnicodeDecodeError:
                    # Find the line within this piece byte by byte.
                    for b in piece:
                        try:
                            lineno += dec.decode(bytes([b])).count("\n")
                        except UnicodeDecodeError:
                            return lineno
                    return lineno
                lineno += text.count("\n")
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return lineno
    return None


def _resolve_encoding(path: Path, encoding: str | None) -> str:
    if encoding is None:
        return detect_encoding(path)
    enc = _normalise_encoding(encoding)
    if path.stat().st_size == 0:
        raise SchemaError("文件为空", source=str(path), expected="带表头的表格文件", found="0 字节")
    if enc == "utf-8":
        with open(path, "rb") as fh:
            if fh.read(3) == codecs.BOM_UTF8:
                enc = "utf-8-sig"
    return enc


# --------------------------------------------------------------------------------------
# Cells and headers
# --------------------------------------------------------------------------------------


def _iso(value: dt.datetime | dt.date | pd.Timestamp) -> str:
    if isinstance(value, dt.datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


def _cell_text(value: object) -> str:
    """One XLSX cell as the text a clerk sees (numbers without a spurious ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value:
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return _iso(value)
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def _header_names(cells: list[str]) -> list[str]:
    names = []
    for i, c in enumerate(cells):
        c = c.replace("\ufeff", "").strip()
        names.append(c if c else f"未命名列{i + 1}")
    return names


def _header_index(rows: list[list[str]]) -> int:
    """Which of the first rows is the header: row 0 unless a title banner (or blank rows)
    sits above it.  Without any title/content column, the first non-blank row."""
    if not rows or any(canonical_column(c) for c in rows[0] if c.strip()):
        return 0
    for k, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if any(canonical_column(c) in TEXT_FIELDS for c in row if c.strip()):
            return k
    return next((k for k, row in enumerate(rows) if any(c.strip() for c in row)), 0)


def _banner_warning(source: str, header_row: int) -> str:
    return f"文件 {source}：表头在第 {header_row} 行，前 {header_row - 1} 行（标题等）已跳过"


# --------------------------------------------------------------------------------------
# Raw readers: yield (frame of strings, warnings) chunks with a global index
# --------------------------------------------------------------------------------------


@dataclass
class _Raw:
    chunks: Iterator[tuple[pd.DataFrame, list[str]]]
    encoding: str
    header_row: int
    sheet: str | None = None
    sheet_names: tuple[str, ...] = ()
    close: Callable[[], None] = lambda: None


def _sniff_delimiter(sample: str, suffix: str) -> str:
    """The delimiter that splits the sample's first records most consistently: for each
    candidate, the number of records sharing its most common field count (above 1).  Ties
    keep the order tab, comma, semicolon, bar; a sample no candidate splits is comma-separated.

    Counting characters instead let one letter full of ``|`` or ``;`` outvote the commas.
    Title banners (one field) count for no candidate."""
    if suffix == ".tsv":
        return "\t"
    best, best_score = ",", 0
    for d in _CSV_DELIMITERS:
        counts: dict[int, int] = {}
        reader = csv.reader(_stdio.StringIO(sample, newline=""), delimiter=d)
        try:
            for rec in reader:
                if len(rec) > 1:
                    counts[len(rec)] = counts.get(len(rec), 0) + 1
                if reader.line_num >= HEADER_SEARCH_ROWS * 2:
                    break
        except csv.Error:
            pass
        score = max(counts.values(), default=0)
        if score > best_score:
            best, best_score = d, score
    return best


def _raise_parser_error(exc: Exception, source: str, ncols: int) -> None:
    m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
    if m:
        _raise_unclosed_quote(source, int(m.group(1)) + 1)
    # (a row with more fields than the header never gets here: the file is read again, _repaired_rows)
    expected = f"{ncols} 列的表格" if ncols else "逗号（或制表符等）分隔的表格"
    raise SchemaError(f"CSV 格式错误（{exc}）", source=source, expected=expected) from None


def _raise_unclosed_quote(source: str, row: int | None) -> None:
    raise SchemaError(
        "引号不成对：从这一行起的英文双引号没有结束，后面的内容都会被当成同一个单元格",
        source=source,
        row=row,
        expected="成对的英文双引号",
        found="只有开始的双引号",
    ) from None


_EXTRA_FIELDS = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


class _ExtraFields(Exception):
    """The fast reader met a row with more fields than the header (or dropped its extra text)."""


def _extra_fields_warning(source: str, row: int, ncols: int, nfields: int, column: str) -> str:
    return (
        f"文件 {source}，第 {row} 行：列数多于表头（应为 {ncols} 列，实际 {nfields} 列），"
        f"多出的内容已并入列“{column}”；请检查是否有未加引号的逗号"
    )


def _repaired_rows(
    path: Path, enc: str, sep: str, skip: int, columns: list[str], source: str, header_row: int
) -> Iterator[tuple[list[str], str | None]]:
    """The data rows of a CSV read with Python's csv module, each with its warning (or None):
    a row with more fields than the header keeps its extra fields, joined back with the
    delimiter, in the letter's text column (where an unquoted comma most likely was; the last
    column when no header names the text), after dropping blank fields past the header's
    width (trailing delimiters); a shorter row is padded with blank cells.  An unclosed
    quote raises :class:`SchemaError` (the csv module would silently swallow the rest of
    the file into one cell)."""
    ncols = len(columns)
    merge = next((i for i, c in enumerate(columns) if canonical_column(c) == "text"), ncols - 1)
    raw_lines: list[str] = []

    def lines(fh):
        for line in fh:
            raw_lines.append(line)
            yield line

    with open(path, encoding=enc, newline="") as fh:
        reader = csv.reader(lines(fh), delimiter=sep, quotechar='"')
        # the skipped banner lines and the header record
        for _ in reader:
            if reader.line_num > skip:
                break
        raw_lines.clear()
        index = 0
        last_text = None
        for rec in reader:
            last_text = "".join(raw_lines)
            raw_lines.clear()
            row = header_row + index + 1
            index += 1
            warning = None
            while len(rec) > ncols and not rec[-1].strip():
                rec = rec[:-1]  # trailing delimiters: nothing lost
            if len(rec) > ncols:
                warning = _extra_fields_warning(source, row, ncols, len(rec), columns[merge])
                end = merge + len(rec) - ncols + 1
                rec = rec[:merge] + [sep.join(rec[merge:end])] + rec[end:]
            elif len(rec) < ncols:
                rec = rec + [""] * (ncols - len(rec))
            yield rec, warning
    # Only the last record can hold an unclosed quote (it runs to the end of the file): were
    # its quote open, a line added after it would be swallowed into it too.
    if last_text is not None:
        probe = csv.reader(_stdio.StringIO(last_text + "\n\ufdd2\n", newline=""), delimiter=sep, quotechar='"')
        if len(list(probe)) < 2:
            _raise_unclosed_quote(source, header_row + index)


def _csv_raw(path: Path, encoding: str | None, chunksize: Sequence[int] | None) -> _Raw:
    source = str(path)
    enc = _resolve_encoding(path, encoding)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # Look at the first records: delimiter, title banner, header.
    try:
        with open(path, encoding=enc, newline="") as fh:
            sample = fh.read(64 * 1024)
    except UnicodeDecodeError:
        raise SchemaError(
            f"无法按 {enc} 编码读取", source=source, row=_first_bad_line(path, enc), expected=f"{enc} 编码的文本"
        ) from None
    if not sample.strip():
        raise SchemaError("文件为空", source=source, expected="带表头的表格文件", found="只有空白")
    sep = _sniff_delimiter("\n".join(sample.splitlines()[:HEADER_SEARCH_ROWS * 2]), path.suffix.lower())
    reader = csv.reader(_stdio.StringIO(sample, newline=""), delimiter=sep)
    first: list[list[str]] = []
    line_after: list[int] = []  # physical lines consumed after each record
    try:
        for rec in reader:
            first.append(rec)
            line_after.append(reader.line_num)
            if len(first) >= HEADER_SEARCH_ROWS:
                break
    except csv.Error:
        pass
    k = _header_index(first)
    skip = line_after[k - 1] if k else 0
    header_row = k + 1

    def chunks() -> Iterator[tuple[pd.DataFrame, list[str]]]:
        extra_warnings = [_banner_warning(source, header_row)] if k else []
        kwargs = dict(
            sep=sep,
            encoding=enc,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            index_col=False,
            skiprows=skip,
            quotechar='"',
        )
        start = 0
        done = 0  # chunks yielded
        ncols = 0
        try:
            parts = None
            try:
                # pandas' ParserWarning (it dropped the extra fields of a row) is caught around
                # pandas' own reading only, not across the yields: the caller's warnings are its own
                with _parser_warnings() as dropped:
                    if chunksize is None:
                        parts = iter([pd.read_csv(path, **kwargs)])
                    else:
                        parts = _sized_chunks(pd.read_csv(path, chunksize=chunksize[0], **kwargs), chunksize)
                while True:
                    with _parser_warnings() as dropped_now:
                        part = next(parts, None)
                    if dropped or dropped_now:
                        raise _ExtraFields
                    if part is None:
                        break
                    ncols = part.shape[1]
                    part.columns = _header_names([str(c) for c in part.columns])
                    part = part.fillna("")
                    part.index = pd.RangeIndex(start, start + len(part))
                    start += len(part)
                    msgs = list(extra_warnings)
                    extra_warnings = []
                    yield part, msgs
                    done += 1
            except pd.errors.ParserError as exc:
                if not _EXTRA_FIELDS.search(str(exc)):
                    raise
            except _ExtraFields:
                pass
            else:
                return
            finally:
                if hasattr(parts, "close"):
                    parts.close()
            # A row has more fields than the header: read again with the csv module, which
            # keeps them, and go on from the first chunk not yet given out (same chunk sizes).
            columns = [str(c) for c in pd.read_csv(path, nrows=0, **kwargs).columns]
            ncols = len(columns)
            rows = _repaired_rows(path, enc, sep, skip, columns, source, header_row)
            for _ in islice(rows, start):
                pass
            names = _header_names(columns)
            sizes = _chunk_lengths(chunksize, done) if chunksize is not None else repeat(None)
            while True:
                size = next(sizes)
                batch = list(islice(rows, size))
                if not batch and done:
                    return
                msgs = list(extra_warnings) + [w for _, w in batch if w]
                extra_warnings = []
                part = _frame([r for r, _ in batch], columns, start)
                part.columns = names
                start += len(batch)
                yield part, msgs
                done += 1
                if size is None:
                    return
        except pd.errors.EmptyDataError:
            raise SchemaError("文件为空", source=source, expected="带表头的表格文件", found="没有内容") from None
        except pd.errors.ParserError as exc:
            _raise_parser_error(exc, source, ncols)
        except UnicodeDecodeError:
            raise SchemaError(
                f"无法按 {enc} 编码读取", source=source, row=_first_bad_line(path, enc), expected=f"{enc} 编码的文本"
            ) from None

    return _Raw(chunks(), enc, header_row)


def _open_workbook(path: Path):
    import zipfile

    import openpyxl

    source = str(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise SchemaError("文件为空", source=source, expected="带表头的表格文件", found="0 字节")
    if not head.startswith(b"PK\x03\x04"):
        what = _magic(head) or "不是 Excel 2007 及以上版本的工作簿"
        hint = "；旧版 .xls 请在 Excel 中另存为 .xlsx 或 CSV" if head.startswith(b"\xd0\xcf\x11\xe0") else ""
        raise SchemaError(f"无法作为 Excel 工作簿打开{hint}", source=source, expected=".xlsx 工作簿", found=what)
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise SchemaError(f"无法作为 Excel 工作簿打开（{exc}）", source=source, expected=".xlsx 工作簿", found="损坏或非 Excel 的 ZIP 文件") from None
    except Exception as exc:  # openpyxl raises assorted errors on foreign ZIP files
        raise SchemaError(f"无法作为 Excel 工作簿打开（{type(exc).__name__}: {exc}）", source=source, expected=".xlsx 工作簿") from None


def _xlsx_raw(path: Path, sheet: str | int | None, chunksize: Sequence[int] | None) -> _Raw:
    source = str(path)
    wb = _open_workbook(path)
    try:
        names = wb.sheetnames
        if sheet is None:
            ws = wb.worksheets[0]
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(wb.worksheets):
                raise SchemaError("工作表序号超出范围", source=source, expected=f"0 到 {len(names) - 1}", found=str(sheet))
            ws = wb.worksheets[sheet]
        elif sheet in names:
            ws = wb[sheet]
        else:
            raise SchemaError("找不到工作表", source=source, expected=str(sheet), found="、".join(names) or "（没有工作表）")
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # the stored dimension is often wrong; read what is there
        rows = _guarded_rows(ws.iter_rows(values_only=True), source, ws.title)
        top: list[list[str]] = []
        for raw in rows:
            top.append(raw)
            if len(top) >= HEADER_SEARCH_ROWS:
                break
        if not any(any(c.strip() for c in r) for r in top):
            raise SchemaError("工作表为空", source=source, column=None, expected="第 1 行为表头的表格", found=f"工作表“{ws.title}”没有内容")
    except BaseException:
        wb.close()
        raise
    k = _header_index(top)
    header = top[k]
    width = max((i + 1 for i, c in enumerate(header) if c.strip()), default=0)
    columns = _header_names(header[:width])
    header_row = k + 1
    title = ws.title

    def all_rows() -> Iterator[list[str]]:
        yield from top[k + 1 :]
        yield from rows

    def chunks() -> Iterator[tuple[pd.DataFrame, list[str]]]:
        msgs = [_banner_warning(source, header_row)] if k else []
        lengths = _chunk_lengths(chunksize) if chunksize else None
        size = next(lengths) if lengths else None
        buf: list[list[str]] = []
        blank_run: list[list[str]] = []  # blank rows held back until a non-blank row follows
        start = 0
        excel_row = header_row
        try:
            for cells in all_rows():
                excel_row += 1
                if len(cells) > width:
                    spill = [i for i, c in enumerate(cells[width:], width) if c.strip()]
                    if spill:
                        msgs.append(f"文件 {source}，第 {excel_row} 行：第 {spill[0] + 1} 列在表头之外还有内容，已忽略")
                cells = (cells + [""] * width)[:width]
                if not any(c.strip() for c in cells):
                    blank_run.append(cells)
                    continue
                buf.extend(blank_run)
                blank_run = []
                buf.append(cells)
                while size and len(buf) >= size:
                    part, buf = buf[:size], buf[size:]
                    size = next(lengths)
                    yield _frame(part, columns, start), msgs
                    msgs = []
                    start += len(part)
            if buf or start == 0:
                yield _frame(buf, columns, start), msgs
        finally:
            wb.close()

    return _Raw(chunks(), "xlsx", header_row, title, tuple(names), wb.close)


def _guarded_rows(rows: Iterator[tuple], source: str, sheet: str) -> Iterator[list[str]]:
    """The sheet's rows as text cells; openpyxl's errors on a damaged sheet (bad XML, a number
    cell holding text, an out-of-range shared string, a bad cell reference) become a
    :class:`SchemaError` naming the file, the sheet and the row being read."""
    row = 0
    while True:
        row += 1  # openpyxl's read-only rows start at 1 and fill gaps with empty rows
        try:
            raw = next(rows)
        except StopIteration:
            return
        except MemoryError:
            raise
        except Exception as exc:  # ElementTree/lxml ParseError, ValueError, IndexError, KeyError, ...
            raise SchemaError(
                f"工作簿内容损坏，无法读取（工作表“{sheet}”：{type(exc).__name__}: {mask_pii(str(exc))}）",
                source=source,
                row=row,
                expected="Excel 保存的 .xlsx 工作簿",
                found="损坏的工作表内容",
            ) from None
        yield [_cell_text(v) for v in raw]


def _chunk_lengths(sizes: Sequence[int], skip: int = 0) -> Iterator[int]:
    """The rows of each chunk from the ``skip``-th on: ``sizes`` in turn, then its last value
    for ever (iter_table's ``chunksize`` as a sequence)."""
    return chain(sizes[skip:], repeat(sizes[-1]))


@contextlib.contextmanager
def _parser_warnings() -> Iterator[list]:
    """Inside: pandas' ParserWarnings are recorded, not shown; the list says whether one came
    (pandas dropped the extra fields of a row).  Other warnings pass as usual."""
    found: list = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            yield found
        finally:
            for w in caught:
                if issubclass(w.category, pd.errors.ParserWarning):
                    found.append(w)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _sized_chunks(reader, sizes: Sequence[int]) -> Iterator[pd.DataFrame]:
    """Chunks of ``sizes[0]``, ``sizes[1]``, ... rows from a pandas CSV reader (the last size
    repeats), as iterating the reader gives chunks of one size."""
    with reader:
        for size in _chunk_lengths(sizes):
            try:
                yield reader.get_chunk(size)
            except StopIteration:
                return


def _frame(rows: list[list[str]], columns: list[str], start: int) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns, dtype=str) if rows else pd.DataFrame({c: pd.Series([], dtype=str) for c in columns})
    if len(set(columns)) != len(columns):  # duplicate headers: keep them apart like pandas' CSV reader
        seen: dict[str, int] = {}
        cols = []
        for c in columns:
            n = seen.get(c, 0)
            cols.append(c if n == 0 else f"{c}.{n}")
            seen[c] = n + 1
        df.columns = cols
    df.index = pd.RangeIndex(start, start + len(df))
    return df


def _raw(path: str | os.PathLike, sheet, encoding, chunksize) -> _Raw:
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise SchemaError("找不到文件", source=source, expected=f"存在的 {SUPPORTED} 文件")
    if p.is_dir():
        raise SchemaError("这是一个文件夹，不是表格文件", source=source, expected=f"{SUPPORTED} 文件")
    suffix = p.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _xlsx_raw(p, sheet, chunksize)
    if suffix in CSV_SUFFIXES:
        return _csv_raw(p, encoding, chunksize)
    hint = "；旧版 .xls 请在 Excel 中另存为 .xlsx 或 CSV" if suffix == ".xls" else ""
    raise SchemaError(f"不支持的文件类型{hint}", source=source, expected=SUPPORTED, found=suffix or "（没有扩展名）")


# --------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------


def _validate(df: pd.DataFrame, source: str, raw: _Raw) -> tuple[pd.DataFrame, ValidationReport]:
    if df.empty:
        # validate_frame's "bool & map(...)" on empty str columns trips a Pandas4Warning
        # (a future error); object columns avoid it.
        df = df.astype(object)
    try:
        return validate_frame(df, source, header_row=raw.header_row)
    except SchemaError as exc:
        if raw.sheet is not None and exc.row is None and exc.message == "缺少信访内容列":
            exc.message += f"（读取的是工作表“{raw.sheet}”，可用 sheet 参数指定其他工作表：{'、'.join(raw.sheet_names)}）"
            exc.args = (str(exc),)
        raise


def read_table(path: str | os.PathLike, *, sheet: str | int | None = None, encoding: str | None = None) -> Table:
    """Read a whole CSV/TSV/TXT or XLSX file and validate it against the schema.

    ``sheet`` picks an XLSX sheet by name (or 0-based position); default the first.
    ``encoding`` overrides detection for text files.  Raises :class:`SchemaError` for
    files that cannot be read or have no title/content column; a header-only file gives
    a table with 0 rows.
    """
    raw = _raw(path, sheet, encoding, None)
    frames, msgs = [], []
    try:
        for part, w in raw.chunks:
            frames.append(part)
            msgs.extend(w)
    finally:
        raw.close()
    df = frames[0] if len(frames) == 1 else pd.concat(frames)
    frame, report = _validate(df, str(path), raw)
    report.warnings[:0] = msgs
    return Table(frame, report, raw.encoding, str(path), raw.header_row, raw.sheet)


def iter_table(
    path: str | os.PathLike, *, chunksize: int | Sequence[int] = 5000, sheet: str | int | None = None, encoding: str | None = None
) -> Iterator[Table]:
    """Read a file in chunks of ``chunksize`` rows, memory bounded, each chunk validated.

    ``chunksize`` may also be a sequence: the rows of the first chunk, the second, and so on,
    its last value repeating to the end of the file (a scorer cuts its last chunks finer).

    Each chunk's frame index is the global 0-based row position, so row numbers in
    errors and warnings continue across chunks.  Duplicate ids across chunks are
    reported in the later chunk.  A header-only file yields one empty chunk.
    """
    sizes = [operator.index(chunksize)] if isinstance(chunksize, numbers.Integral) else [operator.index(n) for n in chunksize]
    if not sizes or min(sizes) < 1:
        raise ValueError("chunksize must be positive")
    raw = _raw(path, sheet, encoding, sizes)
    source = str(path)
    first_seen: dict[str, int] = {}
    try:
        for part, msgs in raw.chunks:
            frame, report = _validate(part, source, raw)
            report.warnings[:0] = msgs
            if "id" in report.column_map.values():
                id_col = next(k for k, v in report.column_map.items() if v == "id")
                for i, ident in frame["id"].items():
                    row = raw.header_row + int(i) + 1
                    prev = first_seen.setdefault(ident, row)
                    if prev != row and prev < raw.header_row + int(frame.index[0]) + 1:
                        report.warnings.append(f"文件 {source}，第 {row} 行，列 “{id_col}”：编号重复（{ident}，与第 {prev} 行相同）")
            yield Table(frame, report, raw.encoding, source, raw.header_row, raw.sheet)
    finally:
        raw.chunks.close()
        raw.close()


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def guard_formula(value: object) -> object:
    """Neutralise spreadsheet formula injection: text starting with = + - @ tab or CR
    gets a leading single quote.  Non-text values are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _plain(value: object) -> object:
    """A frame value as something a writer accepts: None for missing, ISO text for dates."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return _iso(value.to_pydatetime() if isinstance(value, pd.Timestamp) else value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()  # numpy scalar -> Python
        except (AttributeError, ValueError):
            pass
    return value


def current_umask() -> int:
    """The process's umask (read by setting and restoring it): the permissions a file or folder
    made with ``mkstemp``/``mkdtemp`` (always private) should get once it is put in place."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    A crash leaves either the old file or the new one, never half of one.  The result gets the
    ordinary permissions a new file would get (``mkstemp`` creates it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> list[str]:
    """Write a frame as CSV (UTF-8 with BOM, so Excel opens it; tab-separated for .tsv)
    or XLSX, atomically.  Text cells are guarded against formula injection and dates are
    written as ISO text.  Returns warnings (e.g. XLSX cells truncated to Excel's limit).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    columns = [str(c) for c in frame.columns]
    out_warnings: list[str] = []
    if suffix in CSV_SUFFIXES:
        sep = "\t" if suffix == ".tsv" else ","

        def write_csv(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
                w = csv.writer(fh, delimiter=sep, lineterminator="\r\n")
                w.writerow([guard_formula(c) for c in columns])
                for row in frame.itertuples(index=False, name=None):
                    w.writerow(["" if (v := _plain(x)) is None else guard_formula(v) for x in row])

        atomic_write(p, write_csv)
    elif suffix in XLSX_SUFFIXES:
        from openpyxl import Workbook

        def write_xlsx(tmp: str) -> None:
            wb = Workbook(write_only=True)
            ws = wb.create_sheet("数据")
            ws.append([excel_cell(c, out_warnings, where=f"表头，列 “{c}”") for c in columns])
            for r, row in enumerate(frame.itertuples(index=False, name=None), 2):
                ws.append([excel_cell(x, out_warnings, where=f"第 {r} 行，列 “{c}”") for x, c in zip(row, columns)])
            wb.save(tmp)

        atomic_write(p, write_xlsx)
    else:
        raise SchemaError("不支持写出的文件类型", source=str(p), expected=".csv、.tsv、.txt、.xlsx", found=suffix or "（没有扩展名）")
    for w in out_warnings:
        log.warning("%s：%s", p, w)
    return out_warnings


#: Code points XML 1.0 forbids that openpyxl's ILLEGAL_CHARACTERS_RE lets through: written
#: into a sheet they make a workbook Excel must repair and openpyxl cannot read back.
_NON_XML_RE = re.compile("[\ud800-\udfff\ufffe\uffff]")


def excel_cell(value: object, warnings_out: list[str] | None = None, *, where: str = "") -> object:
    """A frame value made safe for an XLSX cell: missing -> None, dates -> ISO text,
    formula guard, illegal control characters removed, long text truncated to Excel's
    32,767-character limit with a visible marker (a warning is appended to ``warnings_out``).
    The clerk workbook writer reuses this."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    v = _plain(value)
    if not isinstance(v, str):
        return v
    v = guard_formula(v)
    if ILLEGAL_CHARACTERS_RE.search(v):
        v = ILLEGAL_CHARACTERS_RE.sub("", v)
        if warnings_out is not None:
            warnings_out.append(f"{where}：含有 Excel 不允许的控制字符，已删除")
    if _NON_XML_RE.search(v):
        v = _NON_XML_RE.sub("", v)
        if warnings_out is not None:
            warnings_out.append(f"{where}：含有 Excel 不允许的字符（U+FFFE、U+FFFF 或单独的代理码位），已删除")
    if len(v) > EXCEL_CELL_LIMIT:
        if warnings_out is not None:
            warnings_out.append(f"{where}：内容 {len(v)} 字，超过 Excel 单元格上限 {EXCEL_CELL_LIMIT} 字，已截断（全文见CSV）")
        v = v[: EXCEL_CELL_LIMIT - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
    return v
