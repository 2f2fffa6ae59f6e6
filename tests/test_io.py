"""Reading and writing clerk tables: encodings, XLSX sheets, bad input, chunking, writers.

Every file is generated inside the test; no real data.
"""

from __future__ import annotations

import datetime as dt
import zipfile

import openpyxl
import pandas as pd
import pytest

from triage.io import (
    EXCEL_CELL_LIMIT,
    TRUNCATION_MARKER,
    detect_encoding,
    guard_formula,
    iter_table,
    read_table,
    write_table,
)
from triage.schema import SchemaError

HEADER = ["编号", "标题", "内容", "来信日期", "人数", "备注"]
ROWS = [
    ["A001", "反映拖欠工资", "某建筑公司拖欠农民工工资三个月，多次讨要无果。", "2026-11-01", "3", "附件两页"],
    ["A002", "", "小区夜间施工噪音扰民，请求处理。", "2026/11/02", "", ""],
    ["A003", "宅基地纠纷", "与邻居宅基地界址争议，村委会调解未果。", "2026-11-03", "1", ""],
]


def _csv_text(header=HEADER, rows=ROWS, sep=","):
    return "".join(sep.join(r) + "\n" for r in [header, *rows])


def _xlsx(path, sheets: dict[str, list[list]], merges: dict[str, list[str]] | None = None):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
        for rng in (merges or {}).get(name, []):
            ws.merge_cells(rng)
    wb.save(path)
    return path


def _raises(fn, *args, **kwargs) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "expected", "extra"),
    [
        ("utf-8", "utf-8", "𠮷"),
        ("utf-8-sig", "utf-8-sig", "𠮷"),
        ("gb18030", "gb18030", "𠮷"),  # U+20BB7 exists only in GB18030 (four bytes), not in GBK
        ("gbk", "gb18030", ""),
        ("gb2312", "gb18030", ""),
        ("utf-16", "utf-16", "𠮷"),
    ],
)
def test_csv_encodings_with_chinese_headers(tmp_path, encoding, expected, extra):
    rows = [r.copy() for r in ROWS]
    rows[0][2] += extra
    path = tmp_path / f"{encoding}.csv"
    path.write_text(_csv_text(rows=rows), encoding=encoding)
    assert detect_encoding(path) == expected
    table = read_table(path)
    assert table.encoding == expected
    assert list(table.frame.columns[:5]) == ["id", "title", "text", "received_at", "num_people"]
    assert table.frame["text"].tolist() == [r[2] for r in rows]
    assert table.frame["备注"].tolist() == [r[5] for r in rows]
    assert table.report.column_map["内容"] == "text"


def test_explicit_encoding_overrides_detection(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_text(_csv_text(), encoding="gbk")
    assert read_table(path, encoding="gbk").frame["title"][0] == "反映拖欠工资"
    err = _raises(read_table, path, encoding="utf-8")
    assert err.source == str(path) and err.row == 1  # the header line is already GBK


@pytest.mark.parametrize(
    ("suffix", "sep"),
    [(".tsv", "\t"), (".txt", "\t"), (".csv", ";"), (".txt", "|"), (".csv", "\t")],
)
def test_delimiter_is_sniffed(tmp_path, suffix, sep):
    rows = [r.copy() for r in ROWS]
    rows[1][2] = '"内容里有逗号, 分号; 竖线| 都不影响"'
    path = tmp_path / f"t{suffix}"
    path.write_text(_csv_text(rows=rows, sep=sep), encoding="utf-8")
    frame = read_table(path).frame
    assert frame.shape == (3, 6)
    assert frame["text"][1] == "内容里有逗号, 分号; 竖线| 都不影响"


def test_mixed_encodings_name_the_first_bad_line(tmp_path):
    path = tmp_path / "mixed.csv"
    body = _csv_text().encode("utf-8") + "A004,标题四,这一行是用GBK编码保存的\n".encode("gbk")
    path.write_bytes(body + "A005,标题五,这一行又是UTF-8\n".encode("utf-8"))
    err = _raises(read_table, path)
    assert err.source == str(path)
    assert err.row == 5  # header + 3 rows, then the GBK line
    assert "混有不同编码" in str(err) and "第 5 行" in str(err)


def test_corrupted_gbk_line_is_reported(tmp_path):
    path = tmp_path / "broken.csv"
    lines = [",".join(r).encode("gbk") + b"\n" for r in [HEADER, *ROWS] * 4]
    lines[6] = b"A9,\x81\x20broken,\xfe\n"  # not decodable as UTF-8 or GB18030
    path.write_bytes(b"".join(lines))
    err = _raises(detect_encoding, path)
    assert err.row == 7 and err.source == str(path)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        ("binary.csv", "编号,内容\n".encode() + b"1,\x00\x01\x02\n", "二进制"),
        ("workbook.csv", b"PK\x03\x04\x14\x00\x00\x00", "ZIP"),
        ("picture.xlsx", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "另存为 .xlsx"),
        ("letter.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "不支持的文件类型"),
        ("report.pdf", b"%PDF-1.4\n", "不支持的文件类型"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "另存为 .xlsx"),
    ],
)
def test_unreadable_files_are_rejected_clearly(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    err = _raises(read_table, path)
    assert err.source == str(path)
    assert words in str(err)


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not excel")
    assert "无法作为 Excel 工作簿打开" in str(_raises(read_table, path))


def test_missing_file(tmp_path):
    assert "找不到文件" in str(_raises(read_table, tmp_path / "nope.csv"))


@pytest.mark.parametrize("name", ["empty.csv", "empty.xlsx", "empty.tsv"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    err = _raises(read_table, path)
    assert "文件为空" in str(err) and err.source == str(path)


def test_whitespace_only_csv_is_empty(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n  \n", encoding="utf-8")
    assert "文件为空" in str(_raises(read_table, path))


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_header_only_gives_zero_rows(tmp_path, kind):
    path = tmp_path / f"h.{kind}"
    if kind == "csv":
        path.write_text(_csv_text(rows=[]), encoding="utf-8")
    else:
        _xlsx(path, {"Sheet1": [HEADER]})
    table = read_table(path)
    assert len(table.frame) == 0 and table.report.rows == 0
    assert {"id", "title", "text"} <= set(table.frame.columns)
    chunks = list(iter_table(path, chunksize=10))
    assert len(chunks) == 1 and len(chunks[0].frame) == 0


def test_empty_xlsx_sheet(tmp_path):
    path = _xlsx(tmp_path / "e.xlsx", {"空表": []})
    err = _raises(read_table, path)
    assert "工作表为空" in str(err)


# ---------------------------------------------------------------------------------- XLSX


def test_xlsx_first_sheet_named_sheet_and_wrong_sheet(tmp_path):
    path = _xlsx(
        tmp_path / "book.xlsx",
        {
            "登记": [HEADER, *ROWS],
            "附表": [["留言编号", "留言主题", "留言详情"], ["B1", "第二张表", "附表内容"]],
        },
    )
    first = read_table(path)
    assert first.encoding == "xlsx" and first.sheet == "登记"
    assert first.frame["text"].tolist() == [r[2] for r in ROWS]
    named = read_table(path, sheet="附表")
    assert named.sheet == "附表" and named.frame["id"].tolist() == ["B1"]
    assert read_table(path, sheet=1).frame["title"].tolist() == ["第二张表"]
    err = _raises(read_table, path, sheet="汇总")
    assert err.expected == "汇总" and err.found == "登记、附表"
    assert "登记、附表" in str(err)


def test_xlsx_wrong_first_sheet_lists_sheets(tmp_path):
    path = _xlsx(tmp_path / "book.xlsx", {"说明": [["填表说明"]], "登记": [HEADER, *ROWS]})
    err = _raises(read_table, path)
    assert "登记" in str(err) and "填表说明" in str(err)


def test_xlsx_cells_become_text_and_dates_parse(tmp_path):
    path = _xlsx(
        tmp_path / "typed.xlsx",
        {"S": [HEADER, [20260001, "标题", "内容", dt.datetime(2026, 11, 1, 9, 30), 3, 1.5], [20260002, "标题", "内容", dt.date(2026, 11, 2), 2.0, True]]},
    )
    frame = read_table(path).frame
    assert frame["id"].tolist() == ["20260001", "20260002"]
    assert frame["备注"].tolist() == ["1.5", "TRUE"]
    assert frame["received_at"].tolist() == [pd.Timestamp("2026-11-01 09:30"), pd.Timestamp("2026-11-02")]
    assert frame["num_people"].tolist() == [3, 2]


def test_xlsx_merged_cells_and_blank_rows(tmp_path):
    rows = [
        HEADER,
        ["M1", "合并的标题", "第一件内容", "2026-11-01", 2, "合并备注"],
        ["M2", None, "第二件内容", "2026-11-01", 2, None],
        [None] * 6,  # a blank row in the middle: kept, with a row error
        ["M3", "标题三", "第三件内容", "2026-11-02", 1, None],
    ]
    path = _xlsx(tmp_path / "merged.xlsx", {"S": rows}, {"S": ["B2:B3", "F2:F3", "D2:D3"]})
    wb = openpyxl.load_workbook(path)
    ws = wb["S"]
    ws["A30"].number_format = "0.00"  # a formatted but empty cell far below: trailing, dropped
    ws["A31"] = None
    wb.save(path)
    table = read_table(path)
    frame = table.frame
    assert frame["id"].tolist() == ["M1", "M2", "ROW000004", "M3"]
    assert frame["title"].tolist() == ["合并的标题", "", "", "标题三"]  # value in the top-left cell only
    assert frame["备注"].tolist() == ["合并备注", "", "", ""]
    assert table.report.row_errors == {2: "第 4 行：标题和内容都为空，无法分拣"}


def test_csv_blank_rows_are_kept(tmp_path):
    path = tmp_path / "blank.csv"
    text = _csv_text(rows=ROWS[:1]) + "\n,,,,,\n" + ",".join(ROWS[1]) + "\n"
    path.write_text(text, encoding="utf-8")
    table = read_table(path)
    assert len(table.frame) == 4
    assert table.report.row_errors == {1: "第 3 行：标题和内容都为空，无法分拣", 2: "第 4 行：标题和内容都为空，无法分拣"}


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_title_banner_above_header_is_skipped(tmp_path, kind):
    banner = ["某某县信访局来信登记表", "", "", "", "", ""]
    if kind == "csv":
        path = tmp_path / "b.csv"
        path.write_text(_csv_text(rows=[HEADER, *ROWS], header=banner), encoding="gb18030")
    else:
        path = _xlsx(tmp_path / "b.xlsx", {"S": [banner, HEADER, *ROWS]})
    table = read_table(path)
    assert table.header_row == 2
    assert table.frame["id"].tolist() == ["A001", "A002", "A003"]
    assert any("表头在第 2 行" in w for w in table.report.warnings)
    blank = tmp_path / f"blank_row.{kind}"
    if kind == "csv":
        blank.write_text(_csv_text(rows=[HEADER, ["A9", "", "", "", "", ""]], header=banner), encoding="utf-8")
    else:
        _xlsx(blank, {"S": [banner, HEADER, ["A9", "", "", "", "", ""]]})
    assert read_table(blank).report.row_errors == {0: "第 3 行：标题和内容都为空，无法分拣"}


def test_xlsx_data_outside_header_is_reported(tmp_path):
    path = _xlsx(tmp_path / "wide.xlsx", {"S": [HEADER[:3], ["W1", "标题", "内容", None, "多出来的"]]})
    table = read_table(path)
    assert list(table.frame.columns) == ["id", "title", "text"]
    assert any("第 2 行" in w and "第 5 列" in w for w in table.report.warnings)


def _extra_warning(path, row, ncols, nfields, column):
    return (
        f"文件 {path}，第 {row} 行：列数多于表头（应为 {ncols} 列，实际 {nfields} 列），"
        f"多出的内容已并入列“{column}”；请检查是否有未加引号的逗号"
    )


@pytest.mark.parametrize("first", [False, True])  # pandas raises for a later row, drops the text of the first
def test_csv_row_with_too_many_fields_is_kept_whole(tmp_path, first):
    path = tmp_path / "wide.csv"
    rows = ["A1,正常", "A2,多,了,字段", "A3,正常"]
    if first:
        rows[:2] = rows[1::-1]
    path.write_text("编号,内容\n" + "\n".join(rows) + "\n", encoding="utf-8")
    table = read_table(path)
    assert table.frame["id"].tolist() == [r.split(",")[0] for r in rows]
    assert table.frame["text"].tolist() == [r.split(",", 1)[1] for r in rows]
    bad = 2 if first else 3
    assert _extra_warning(path, bad, 2, 4, "内容") in table.report.warnings
    assert not any("已忽略" in w for w in table.report.warnings)


@pytest.mark.parametrize(("chunksize", "lengths"), [(50, [50, 50, 50, 50, 30]), ([100, 30, 20], [100, 30, 20, 20, 20, 20, 20])])
def test_csv_extra_fields_in_a_later_chunk_keep_rows_and_chunks(tmp_path, chunksize, lengths):
    rows = _big_rows(230)
    banner = ["某某县信访局来信登记表", "", "", "", "", ""]
    path = tmp_path / "big.csv"
    text = _csv_text(rows=[HEADER, *rows], header=banner)
    lines = text.splitlines(keepends=True)
    lines[2 + 170] = lines[2 + 170].replace("反映情况", "反映情况,甲,乙", 1)  # data row 170, Excel row 173: commas in the text
    path.write_text("".join(lines), encoding="gb18030")
    whole, chunks, joined = _read_whole_and_chunked(path, chunksize, lengths)
    assert joined["text"].tolist() == [r[2].replace("反映情况", "反映情况,甲,乙") if i == 170 else r[2] for i, r in enumerate(rows)]
    assert joined["备注"].tolist() == [r[5] for r in rows]  # the columns after the text are in place
    warning = _extra_warning(path, 173, 6, 8, "内容")
    assert [w for c in chunks for w in c.report.warnings if "列数多于表头" in w] == [warning]
    assert warning in whole.report.warnings
    assert sum("表头在第 2 行" in w for c in chunks for w in c.report.warnings) == 1


def test_csv_extra_fields_go_into_the_text_column_and_trailing_blanks_are_dropped(tmp_path):
    """Where the header names the text, an unquoted comma was most likely typed in the letter:
    the columns after the text stay in place; blank fields past the header (a,b,,) are dropped."""
    path = tmp_path / "wide.csv"
    path.write_text("编号,内容,人数,备注\nA1,工资,拖欠,三个月,2,无\nA2,正常,1,无,,\nA3,正常,1,无\n", encoding="utf-8")
    table = read_table(path)
    assert table.frame["text"].tolist() == ["工资,拖欠,三个月", "正常", "正常"]
    assert table.frame["num_people"].tolist() == [2, 1, 1] and table.frame["备注"].tolist() == ["无"] * 3
    assert [w for w in table.report.warnings if "列数多于表头" in w] == [_extra_warning(path, 2, 4, 6, "内容")]


@pytest.mark.parametrize("wide_row_before", [False, True])  # the fast reader, and the csv-module re-read
@pytest.mark.parametrize("chunksize", [None, 2])
def test_csv_unclosed_quote_names_its_line(tmp_path, wide_row_before, chunksize):
    path = tmp_path / "quote.csv"
    rows = ["A1,正常", "A2,多,了" if wide_row_before else "A2,正常", "A3,正常", 'A4,"他说工资拖欠', "A5,正常", "A6,正常"]
    path.write_text("编号,内容\n" + "\n".join(rows) + "\n", encoding="utf-8")
    if chunksize is None:
        err = _raises(read_table, path)
    else:
        err = _raises(lambda: list(iter_table(path, chunksize=chunksize)))
    assert err.message.startswith("引号不成对") and err.row == 5 and err.source == str(path)
    assert err.expected == "成对的英文双引号"


@pytest.mark.parametrize("sep", ["|", ";", "\t"])
def test_one_letter_full_of_other_delimiters_does_not_change_the_delimiter(tmp_path, sep):
    rows = [r.copy() for r in ROWS]
    rows[1][2] = sep.join(["诉求一", "诉求二", "诉求三", "诉求四", "诉求五", "诉求六", "诉求七", "诉求八", "诉求九", "诉求十"] * 3)
    path = tmp_path / "many.csv"
    path.write_text(_csv_text(rows=rows), encoding="utf-8")
    frame = read_table(path).frame
    assert frame.shape == (3, 6)
    assert frame["text"].tolist() == [r[2] for r in rows]
    tsv = tmp_path / "many.tsv"  # .tsv is always tab-separated
    tsv.write_text(_csv_text(rows=ROWS, sep="\t").replace("某建筑公司", "某,建,筑,公,司"), encoding="utf-8")
    assert read_table(tsv).frame["text"][0] == "某,建,筑,公,司拖欠农民工工资三个月，多次讨要无果。"


def test_banner_without_delimiters_above_a_semicolon_table(tmp_path):
    path = tmp_path / "banner.txt"
    path.write_text("某某县信访局来信登记表\n" + _csv_text(sep=";"), encoding="utf-8")
    table = read_table(path)
    assert table.header_row == 2 and table.frame["id"].tolist() == ["A001", "A002", "A003"]


# ---------------------------------------------------------------------------------- schema checks at the reading layer


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_missing_text_column_lists_found_and_accepted(tmp_path, kind):
    header = ["编号", "姓名", "地址"]
    rows = [header, ["1", "张三", "某村"]]
    path = tmp_path / f"notext.{kind}"
    if kind == "csv":
        path.write_text(_csv_text(header, rows[1:]), encoding="utf-8")
    else:
        _xlsx(path, {"S": rows})
    err = _raises(read_table, path)
    assert err.source == str(path)
    assert err.found == "编号、姓名、地址"
    for alias in ("标题", "留言详情", "content"):
        assert alias in err.expected


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_duplicate_ids_are_warned_with_file_row_column(tmp_path, kind):
    rows = [r.copy() for r in ROWS]
    rows[2][0] = "A001"
    path = tmp_path / f"dup.{kind}"
    if kind == "csv":
        path.write_text(_csv_text(rows=rows), encoding="utf-8")
    else:
        _xlsx(path, {"S": [HEADER, *rows]})
    warnings = read_table(path).report.warnings
    dup = [w for w in warnings if "编号重复" in w]
    assert dup == [f"文件 {path}，第 2 行，列 “编号”：编号重复（A001）", f"文件 {path}，第 4 行，列 “编号”：编号重复（A001）"]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_extra_columns_pass_through_untouched(tmp_path, kind):
    header = ["内容", "承办人", "办理意见", "编号"]
    rows = [["内容一", "王五", "  已转交 ", "007"], ["内容二", "", "0123", "008"]]
    path = tmp_path / f"extra.{kind}"
    if kind == "csv":
        path.write_text(_csv_text(header, rows), encoding="utf-8")
    else:
        _xlsx(path, {"S": [header, *rows]})
    table = read_table(path)
    assert table.report.passthrough == ["承办人", "办理意见"]
    assert table.frame["承办人"].tolist() == ["王五", ""]
    assert table.frame["办理意见"].tolist() == ["  已转交 ", "0123"]
    assert table.frame["id"].tolist() == ["007", "008"]  # leading zeros survive


# ---------------------------------------------------------------------------------- chunking


def _big_rows(n):
    rows = []
    for i in range(n):
        ident = f"C{i:05d}" if i % 97 else ""  # some blank ids
        title = "" if i % 50 == 7 else f"标题{i}"
        text = "" if i % 50 == 7 else f"第{i}件来信内容，反映情况。"
        date = "不是日期" if i % 41 == 3 else f"2026-11-{i % 28 + 1:02d}"
        rows.append([ident, title, text, date, str(i % 5), f"备注{i}"])
    rows[120][0] = rows[10][0]  # a duplicate across chunks
    return rows


def _read_whole_and_chunked(path, chunksize, lengths):
    """The file read whole and in chunks of ``lengths``: the chunks joined equal the whole."""
    whole = read_table(path)
    chunks = list(iter_table(path, chunksize=chunksize))
    assert [len(c.frame) for c in chunks] == lengths
    joined = pd.concat([c.frame for c in chunks])
    pd.testing.assert_frame_equal(joined, whole.frame)
    assert joined.index.tolist() == list(range(len(whole.frame)))
    return whole, chunks, joined


@pytest.mark.parametrize(
    ("chunksize", "lengths"),
    [(50, [50, 50, 50, 50, 30]), ([100, 30, 20], [100, 30, 20, 20, 20, 20, 20])],  # a sequence: its last size repeats
)
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_chunked_reading_matches_whole_reading(tmp_path, kind, chunksize, lengths):
    rows = _big_rows(230)
    rows[60] = [""] * 6  # a blank row in the middle
    path = tmp_path / f"big.{kind}"
    if kind == "csv":
        path.write_text(_csv_text(rows=rows), encoding="gb18030")
    else:
        _xlsx(path, {"S": [HEADER, *rows]})
    whole, chunks, joined = _read_whole_and_chunked(path, chunksize, lengths)
    row_errors = {}
    for c in chunks:
        row_errors.update(c.report.row_errors)
    assert row_errors == whole.report.row_errors and 60 in row_errors
    assert row_errors[60] == "第 62 行：标题和内容都为空，无法分拣"
    date_warnings = sorted(w for c in chunks for w in c.report.warnings if "日期无法识别" in w)
    assert date_warnings == sorted(w for w in whole.report.warnings if "日期无法识别" in w)
    assert f"文件 {path}，第 5 行，列 “来信日期”：日期无法识别（不是日期），应为 2026-11-26 之类的日期" in date_warnings
    cross = [w for c in chunks for w in c.report.warnings if "编号重复" in w]
    assert cross == [f"文件 {path}，第 122 行，列 “编号”：编号重复（C00010，与第 12 行相同）"]
    assert joined.loc[97, "id"] == "ROW000099"  # generated from the global row number


@pytest.mark.parametrize("chunksize", [0, [], [5, 0]])
def test_chunksize_must_be_positive(tmp_path, chunksize):
    path = tmp_path / "a.csv"
    path.write_text("内容\n来信\n", encoding="utf-8")
    with pytest.raises(ValueError, match="chunksize"):
        next(iter_table(path, chunksize=chunksize))


def test_chunksize_may_be_a_numpy_integer(tmp_path):
    import numpy as np

    path = tmp_path / "a.csv"
    path.write_text("内容\n" + "来信\n" * 5, encoding="utf-8")
    assert [len(t.frame) for t in iter_table(path, chunksize=np.int64(2))] == [2, 2, 1]
    assert [len(t.frame) for t in iter_table(path, chunksize=np.array([3, 1]))] == [3, 1, 1]


def test_warnings_of_the_caller_are_not_swallowed_while_a_csv_is_read(tmp_path):
    """The reader catches pandas' ParserWarning around its own reading only."""
    import warnings

    path = tmp_path / "a.csv"
    path.write_text("内容\n" + "来信\n" * 5, encoding="utf-8")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in iter_table(path, chunksize=2):
            warnings.warn("the caller's own", UserWarning)
    assert [str(w.message) for w in seen] == ["the caller's own"] * 3


def test_chunked_reading_without_id_column_generates_unique_ids(tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("".join(f"来信{i}\n" for i in range(12)).replace("来信0", "内容", 1), encoding="utf-8")
    ids = [i for c in iter_table(path, chunksize=4) for i in c.frame["id"]]
    assert ids == [f"ROW{r:06d}" for r in range(2, 13)]


# ---------------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\rx", "'\rx"),
        ("正常内容=没问题", "正常内容=没问题"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_guard_formula(value, expected):
    assert guard_formula(value) == expected


def test_formula_injection_guard_on_write(tmp_path):
    frame = pd.DataFrame({"编号": ["F1", "F2"], "内容": ["=HYPERLINK(\"http://x\",\"点我\")", "@cmd|' /C calc'!A0"], "人数": [1, -2]})
    xlsx = tmp_path / "out.xlsx"
    write_table(frame, xlsx)
    ws = openpyxl.load_workbook(xlsx).active
    cells = [ws.cell(row=r, column=2) for r in (2, 3)]
    assert all(c.data_type == "s" for c in cells)
    assert [c.value for c in cells] == ["'" + v for v in frame["内容"]]
    assert ws.cell(row=3, column=3).value == -2  # numbers stay numbers
    csv_path = tmp_path / "out.csv"
    write_table(frame, csv_path)
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "'=HYPERLINK" in raw.decode("utf-8-sig")


def test_dates_written_as_iso(tmp_path):
    frame = pd.DataFrame(
        {"内容": ["a", "b", "c"], "来信日期": pd.to_datetime(["2026-11-01", "2026-11-02 10:30", None], format="mixed"), "人数": pd.array([1, None, 3], dtype="Int64")}
    )
    for name in ("d.csv", "d.xlsx"):
        write_table(frame, tmp_path / name)
    assert (tmp_path / "d.csv").read_text(encoding="utf-8-sig").splitlines()[1:] == ["a,2026-11-01,1", "b,2026-11-02 10:30:00,", "c,,3"]
    ws = openpyxl.load_workbook(tmp_path / "d.xlsx").active
    assert [ws.cell(row=r, column=2).value for r in (2, 3, 4)] == ["2026-11-01", "2026-11-02 10:30:00", None]
    back = read_table(tmp_path / "d.xlsx").frame
    assert back["received_at"].tolist()[:2] == [pd.Timestamp("2026-11-01"), pd.Timestamp("2026-11-02 10:30")]


def test_long_letter_round_trip(tmp_path):
    letter = ("反映村集体土地被违规占用问题，" * 7143)[:100_000]
    assert len(letter) == 100_000
    frame = pd.DataFrame({"编号": ["L1", "L2"], "标题": ["长信", "短信"], "内容": [letter, "短"]})
    for enc_path in ("long.csv", "long.tsv"):
        assert write_table(frame, tmp_path / enc_path) == []
        back = read_table(tmp_path / enc_path)
        assert back.frame["text"].tolist() == [letter, "短"]
    chunks = list(iter_table(tmp_path / "long.csv", chunksize=1))
    assert chunks[0].frame["text"][0] == letter
    # Excel cannot hold it: truncated with a visible marker and a warning naming row and column.
    warnings = write_table(frame, tmp_path / "long.xlsx")
    assert len(warnings) == 1 and "第 2 行" in warnings[0] and "内容" in warnings[0]
    cell = read_table(tmp_path / "long.xlsx").frame["text"][0]
    assert len(cell) == EXCEL_CELL_LIMIT and cell.endswith(TRUNCATION_MARKER)
    assert cell.startswith(letter[:1000])


def test_xlsx_write_drops_code_points_xml_forbids(tmp_path):
    frame = pd.DataFrame({"编号": ["N1", "N2"], "内容": ["拖欠\ufffe工资\uffff", "噪音\ud800扰民\udfff"], "备注": ["控制\x01字符", ""]})
    path = tmp_path / "odd.xlsx"
    warnings = write_table(frame, path)
    rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [r[1] for r in rows] == ["内容", "拖欠工资", "噪音扰民"]
    assert rows[1][2] == "控制字符"
    assert [w for w in warnings if "U+FFFF" in w] == [
        "第 2 行，列 “内容”：含有 Excel 不允许的字符（U+FFFE、U+FFFF 或单独的代理码位），已删除",
        "第 3 行，列 “内容”：含有 Excel 不允许的字符（U+FFFE、U+FFFF 或单独的代理码位），已删除",
    ]
    assert any("第 2 行，列 “备注”" in w and "控制字符" in w for w in warnings)


def _patch_sheet(path, old: str, new: str):
    with zipfile.ZipFile(path) as zin:
        items = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            if info.filename == "xl/worksheets/sheet1.xml":
                assert old.encode() in data
                data = data.replace(old.encode(), new.encode())
            zout.writestr(info, data)


@pytest.mark.parametrize(
    ("row", "cell"),
    [
        (3, '<c r="A3" t="n"><v>12abc</v></c>'),  # a number cell holding text: ValueError
        (3, '<c r="A3" t="s"><v>999</v></c>'),  # a shared string that does not exist: IndexError
        (3, '<c r="A3" t="inlineStr"><is><t>拖欠&#xD800;工资</t></is></c>'),  # XML ParseError
        (2, '<c r="A2" t="d"><v>not-a-date</v></c>'),  # in the header scan
        (40, '<c r="A40" t="n"><v>12abc</v></c>'),  # after the header scan, in a later chunk
    ],
    ids=["text-in-number", "missing-shared-string", "bad-xml", "header-scan", "later-chunk"],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_damaged_xlsx_sheet_is_a_schema_error(tmp_path, row, cell, chunked):
    path = tmp_path / "bad.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "登记"
    ws.append(["编号", "内容"])
    for i in range(2, 51):
        ws.append([f"PLACE{i}", f"第{i}行来信内容"])
    wb.save(path)
    _patch_sheet(path, f'<c r="A{row}" t="inlineStr"><is><t>PLACE{row}</t></is></c>', cell)
    if not chunked:
        err = _raises(read_table, path)
    else:
        err = _raises(lambda: list(iter_table(path, chunksize=7)))
    assert err.message.startswith("工作簿内容损坏，无法读取") and "工作表“登记”" in err.message
    assert err.source == str(path) and err.row == row
    assert err.expected == "Excel 保存的 .xlsx 工作簿"


def test_write_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "sub" / "t.xlsx"
    write_table(pd.DataFrame({"内容": ["旧"]}), path)
    write_table(pd.DataFrame({"内容": ["新"]}), path)
    assert read_table(path).frame["text"].tolist() == ["新"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.xlsx"]  # no temp files left behind

    class Unwritable:
        pass

    with pytest.raises(ValueError):  # openpyxl cannot store it: the write fails half-way
        write_table(pd.DataFrame({"内容": ["好", Unwritable()]}), path)
    assert read_table(path).frame["text"].tolist() == ["新"]  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.xlsx"]


def test_write_rejects_unknown_suffix(tmp_path):
    err = _raises(write_table, pd.DataFrame({"内容": ["x"]}), tmp_path / "t.json")
    assert err.found == ".json"


def test_write_then_read_round_trip_keeps_rows(tmp_path):
    table = read_table(_xlsx(tmp_path / "in.xlsx", {"S": [HEADER, *ROWS, [None] * 6]}))
    for name in ("rt.csv", "rt.xlsx"):
        write_table(table.frame, tmp_path / name)
        back = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(back.frame, table.frame, check_dtype=False)
