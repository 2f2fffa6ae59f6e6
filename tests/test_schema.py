"""The letter schema: header aliases, errors, label sets, taxonomy, display names, validate_frame."""

from __future__ import annotations

import pandas as pd
import pytest

from triage import schema
from triage.schema import (
    INPUT_FIELDS,
    LABEL_FIELDS,
    MAX_PEOPLE,
    OUTPUT_FIELDS,
    SchemaError,
    canonical_column,
    default_heads,
    display_name,
    field_from_display,
    load_taxonomy,
    validate_frame,
    validate_labels,
)

SMALL_TAXONOMY = """
[[department]]
name = "人社局"
full_name = "县人力资源和社会保障局"
remit = "劳动就业、工资支付、社会保险"
categories = ["拖欠工资", "社保"]

[[department]]
name = "住建局"
remit = "房屋建设、物业管理"
categories = ["物业", "施工"]
"""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("内容", "text"),
        ("信访内容：", "text"),  # full-width colon
        ("留言详情:", "text"),
        ("＊内容", "text"),  # full-width asterisk (required-field marker)
        ("内 容", "text"),
        ("ＣＯＮＴＥＮＴ", "text"),  # full-width Latin
        ("Content", "text"),
        ("BODY ", "text"),
        ("留言主题", "title"),
        ("Subject", "title"),
        ("信访件编号", "id"),
        ("Letter_ID", "id"),
        ("来信日期：", "received_at"),
        ("身份证号码", "id_number"),
        ("人数", "num_people"),
        ("承办人", None),
        ("", None),
        (3, None),
    ],
)
def test_alias_matching(header, expected):
    assert canonical_column(header) == expected


def test_aliases_are_unambiguous():
    seen: dict[str, str] = {}
    for f in INPUT_FIELDS:
        for a in (f.name, *f.aliases):
            key = schema._header_key(a)
            assert seen.setdefault(key, f.name) == f.name, f"alias {a!r} claimed by {seen[key]} and {f.name}"


def test_schema_error_message_names_everything():
    err = SchemaError("标签不在标签集中", source="letters.xlsx", row=7, column="风险等级", expected="低 / 中 / 高", found="很高")
    text = str(err)
    for part in ("letters.xlsx", "第 7 行", "风险等级", "低 / 中 / 高", "很高", "标签不在标签集中"):
        assert part in text
    assert (err.source, err.row, err.column, err.expected, err.found) == ("letters.xlsx", 7, "风险等级", "低 / 中 / 高", "很高")
    assert isinstance(err, ValueError)
    assert str(SchemaError("只有说明")) == "只有说明"


def test_validate_labels_unknown_label(tmp_path):
    heads = default_heads(_taxonomy(tmp_path))
    assert validate_labels(["高", "", None, float("nan"), " 中 "], heads["risk"]) == ["高", None, None, None, "中"]
    with pytest.raises(SchemaError) as info:
        validate_labels(["低", "高", "特别高"], heads["risk"], source="train.csv", column="风险等级")
    err = info.value
    assert (err.source, err.row, err.column, err.found) == ("train.csv", 4, "风险等级", "特别高")
    assert err.expected == "低 / 中 / 高"
    with pytest.raises(SchemaError) as info:
        validate_labels(["人社局", "教育局"], heads["department"], first_row=10)
    assert info.value.row == 11 and info.value.expected == "人社局 / 住建局"


def _taxonomy(tmp_path, text=SMALL_TAXONOMY, name="taxonomy.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_taxonomy(tmp_path):
    deps = load_taxonomy(_taxonomy(tmp_path))
    assert [d.name for d in deps] == ["人社局", "住建局"]
    assert deps[0].full_name == "县人力资源和社会保障局" and deps[1].full_name == "住建局"
    assert deps[0].categories == ("拖欠工资", "社保")
    assert schema.department_labels(tmp_path / "taxonomy.toml") == ("人社局", "住建局")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[department]\nname = ", "格式错误"),
        ('[[department]]\nname = "人社局"\nremit = "劳动"\n', "缺少字段"),
        (SMALL_TAXONOMY.replace("住建局", "人社局"), "唯一"),
        (SMALL_TAXONOMY.split("[[department]]")[0] + "[[department]]" + SMALL_TAXONOMY.split("[[department]]")[1], "至少两个"),
    ],
)
def test_load_taxonomy_bad_toml(tmp_path, text, words):
    path = _taxonomy(tmp_path, text, name=f"bad_{words}.toml")
    with pytest.raises(SchemaError) as info:
        load_taxonomy(path)
    assert words in str(info.value) and str(path) in str(info.value)


def test_load_taxonomy_missing_file(tmp_path):
    with pytest.raises(SchemaError) as info:
        load_taxonomy(tmp_path / "none.toml")
    assert "找不到" in str(info.value)


def test_display_names_one_to_one():
    fields = list(OUTPUT_FIELDS) + [f.name for f in INPUT_FIELDS]
    displays = [display_name(f) for f in fields]
    assert len(set(displays)) == len(displays)
    for f in fields:
        assert field_from_display(display_name(f)) == f
    for name, disp in LABEL_FIELDS.items():
        assert display_name(name) == disp
    assert display_name("承办人") == "承办人" and field_from_display("承办人") == "承办人"


def test_heads_match_label_sets(tmp_path):
    heads = default_heads(_taxonomy(tmp_path))
    assert set(heads) == {"track", "route", "department", "risk"}
    assert heads["route"].labels == tuple(schema.ROUTE_GUIDANCE) and heads["route"].only_for_litigation
    assert heads["department"].labels == ("人社局", "住建局")
    for name, head in heads.items():
        assert display_name(name) == head.display


# ---------------------------------------------------------------------------------- validate_frame


def test_validate_frame_maps_keeps_rows_and_reports():
    df = pd.DataFrame(
        {
            "留言编号": ["1", "1", ""],
            "留言主题：": ["工资", "", ""],
            "留言详情": ["拖欠工资", "噪音", ""],
            "内容": ["重复的内容列", "", ""],
            "来信日期": ["2026-11-01", "昨天", ""],
            "人数": ["3", "很多", ""],
            "承办人": ["甲", "乙", "丙"],
        }
    )
    out, report = validate_frame(df, "in.csv")
    assert len(out) == 3
    assert report.column_map == {"留言编号": "id", "留言主题：": "title", "留言详情": "text", "来信日期": "received_at", "人数": "num_people"}
    assert report.passthrough == ["内容", "承办人"]
    assert out["内容"].tolist() == ["重复的内容列", "", ""] and out["承办人"].tolist() == ["甲", "乙", "丙"]
    assert out["id"].tolist() == ["1", "1", "ROW000004"]
    assert report.row_errors == {2: "第 4 行：标题和内容都为空，无法分拣"}
    w = "\n".join(report.warnings)
    assert "文件 in.csv，第 2 行，列 “留言编号”：编号重复（1）" in w and "第 3 行，列 “留言编号”：编号重复" in w
    assert "第 3 行，列 “来信日期”：日期无法识别（昨天）" in w
    assert f"第 3 行，列 “人数”：人数应为 0 到 {MAX_PEOPLE} 的整数，实际为 很多" in w
    assert out["num_people"].tolist()[0] == 3


def test_validate_frame_counts_of_people_that_are_not_whole_numbers_warn_and_stay_blank():
    """1.5, -2, 1e12 or inf people used to stop the whole chunk with a TypeError from the
    integer cast; each is now a warning naming its row and a blank count, like 很多."""
    df = pd.DataFrame(
        {
            "内容": ["信"] * 8,
            "人数": ["3", "1.5", "-2", "1e12", "inf", "", "4.0", str(MAX_PEOPLE)],
        }
    )
    out, report = validate_frame(df, "in.csv")
    assert out["num_people"].tolist() == [3, pd.NA, pd.NA, pd.NA, pd.NA, pd.NA, 4, MAX_PEOPLE]
    assert str(out["num_people"].dtype) == "Int64"
    w = [x for x in report.warnings if "人数应为" in x]
    assert [x.split("，")[1] for x in w] == ["第 3 行", "第 4 行", "第 5 行", "第 6 行"]  # the blank cell is not a warning
    assert w[0].endswith("实际为 1.5") and report.row_errors == {}


def test_validate_frame_dates_outside_the_range_warn_and_stay_blank():
    """9999-12-30 parses, but its acceptance deadline (15 days later) overflowed and stopped the run."""
    df = pd.DataFrame({"内容": ["信"] * 5, "来信日期": ["9999-12-30", "0001-01-01", "1899-12-31", "1900-01-01", "2099-12-31 23:59"]})
    out, report = validate_frame(df, "in.csv")
    assert out["received_at"].isna().tolist() == [True, True, True, False, False]
    w = [x for x in report.warnings if "日期超出范围" in x]
    assert [x.split("，")[1] for x in w] == ["第 2 行", "第 3 行", "第 4 行"]
    assert "（9999-12-30），应在 1900 年到 2099 年之间，已留空" in w[0]


def test_validate_frame_dates_with_time_zones_full_width_digits_and_words():
    """A zone (alone or mixed with plain dates) used to stop the chunk with pandas' "Mixed
    timezones detected"; now, today and a bare time were read as the moment of the run."""
    dates = ["2026-11-26T10:00:00+08:00", "2026-11-26T20:00:00Z", "2026-11-26 10:00 UTC", "2026-11-26",
             "now", "10:30:00", "２０２６－１１－２６", "２０２６年１１月２６日", "today", ""]
    out, report = validate_frame(pd.DataFrame({"内容": ["信"] * len(dates), "来信日期": dates}), "in.csv")
    got = [None if pd.isna(v) else str(v) for v in out["received_at"]]
    assert got == ["2026-11-26 10:00:00", "2026-11-27 04:00:00", "2026-11-26 18:00:00", "2026-11-26 00:00:00",
                   None, None, "2026-11-26 00:00:00", "2026-11-26 00:00:00", None, None]
    bad = [w for w in report.warnings if "日期无法识别" in w]
    assert [w.split("，")[1] for w in bad] == ["第 6 行", "第 7 行", "第 10 行"]
    zoned = validate_frame(pd.DataFrame({"内容": ["信"], "来信日期": ["2026-11-26T05:00:00+08:00"]}), "in.csv")[0]
    assert zoned["received_at"].tolist() == [pd.Timestamp("2026-11-26 05:00")]  # China time, not UTC's 25th


def test_validate_frame_a_header_and_its_own_canonical_name_both_kept():
    """标题 and title (or 编号 and id) used to make two columns named title and fail."""
    df = pd.DataFrame({"标题": ["甲"], "title": ["乙"], "内容": ["信"], "编号": [" A1 "], "id": ["B"]})
    out, report = validate_frame(df, "in.csv")
    assert out["title"].tolist() == ["甲"] and out["title（重复）"].tolist() == ["乙"]
    assert out["id"].tolist() == ["A1"] and out["id（重复）"].tolist() == ["B"]  # ids are stripped
    assert report.passthrough == ["title（重复）", "id（重复）"]
    assert report.column_map == {"标题": "title", "内容": "text", "编号": "id"}
    assert any("“title”原样保留（改名为“title（重复）”）" in w for w in report.warnings)


def test_validate_frame_lists_the_rows_whose_id_it_made():
    out, report = validate_frame(pd.DataFrame({"编号": ["A", "", " "], "内容": ["信"] * 3}), "in.csv")
    assert out["id"].tolist() == ["A", "ROW000003", "ROW000004"] and report.generated_ids == [1, 2]
    out, report = validate_frame(pd.DataFrame({"内容": ["信"] * 2}), "in.csv")
    assert report.generated_ids == [0, 1]


def test_validate_frame_blank_text_dates_and_counts_from_mixed_cells():
    """Cells as a workbook gives them (numbers, datetimes, None) and as pandas' string dtype
    gives them (pd.NA): blank title and text are a row error; 年月日 dates parse; a blank date
    or count is no warning."""
    import datetime as dt

    df = pd.DataFrame(
        {
            "标题": ["a", "", " ", None, pd.NA],
            "内容": [5, "\t", "", "y", pd.NA],
            "来信日期": ["2026年11月26日 9时30分", None, "", dt.datetime(2026, 1, 2, 3, 4), "昨天"],
            "人数": [2.0, None, pd.NA, "", "二"],
        },
        dtype=object,
    )
    out, report = validate_frame(df, "in.xlsx")
    assert report.row_errors == {1: "第 3 行：标题和内容都为空，无法分拣", 2: "第 4 行：标题和内容都为空，无法分拣", 4: "第 6 行：标题和内容都为空，无法分拣"}
    assert out["received_at"].tolist()[0] == pd.Timestamp("2026-11-26 09:30") and out["received_at"].tolist()[3] == pd.Timestamp("2026-01-02 03:04")
    assert out["received_at"].isna().tolist() == [False, True, True, False, True]
    assert out["num_people"].tolist() == [2, pd.NA, pd.NA, pd.NA, pd.NA]
    w = "\n".join(report.warnings)
    assert "第 6 行，列 “来信日期”：日期无法识别（昨天）" in w and "第 6 行，列 “人数”" in w
    assert "第 3 行，列 “来信日期”" not in w and "第 4 行，列 “人数”" not in w


def test_validate_frame_missing_text_column():
    with pytest.raises(SchemaError) as info:
        validate_frame(pd.DataFrame({"编号": ["1"], "电话": ["1"]}), "x.xlsx")
    err = info.value
    assert err.source == "x.xlsx" and err.found == "编号、电话"
    assert "留言详情" in err.expected and "title" in err.expected


def test_validate_frame_row_numbers_follow_the_index():
    """Chunked readers pass frames whose index is the global row position."""
    df = pd.DataFrame({"内容": ["a", "", "b"]}, index=pd.RangeIndex(100, 103))
    out, report = validate_frame(df, "big.csv")
    assert out["id"].tolist() == ["ROW000102", "ROW000103", "ROW000104"]
    assert report.row_errors == {101: "第 103 行：标题和内容都为空，无法分拣"}
    out, report = validate_frame(df, "big.csv", header_row=3)
    assert out["id"].tolist()[0] == "ROW000104"


def test_missing_text_cells_become_empty_strings_whatever_the_column_dtype():
    """A frame from an API or pandas' string dtype may hold NaN/None in text columns."""
    import numpy as np
    import pandas as pd

    from triage.schema import validate_frame

    for dtype in (object, "string"):
        df = pd.DataFrame({"标题": ["欠薪", None], "内容": ["老板拖欠工资", np.nan], "编号": ["A1", "A2"]}).astype(dtype)
        out, report = validate_frame(df, "api")
        assert out["text"].tolist() == ["老板拖欠工资", ""] and out["title"].tolist() == ["欠薪", ""]
        assert out["text"].dtype == object and report.row_errors and 1 in report.row_errors
