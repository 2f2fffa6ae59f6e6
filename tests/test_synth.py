"""The seeded synthetic corpus: determinism, label validity, metadata, distributions, the clerk
sample workbook, and a check that the corpus is learnable but not trivially separable."""

from __future__ import annotations

import re
import time
import unicodedata

import numpy as np
import openpyxl
import pandas as pd
import pytest

from triage import schema, synth

N = 4000


@pytest.fixture(scope="module")
def corpus() -> tuple[pd.DataFrame, np.ndarray]:
    return synth.generate(N, 20261126, return_noise_mask=True)


@pytest.fixture(scope="module")
def df(corpus) -> pd.DataFrame:
    return corpus[0]


# ------------------------------------------------------------------ determinism


def test_same_seed_same_frame_and_file(tmp_path):
    a = synth.generate(400, 11)
    b = synth.generate(400, 11)
    pd.testing.assert_frame_equal(a, b)
    p1, p2 = tmp_path / "a.csv", tmp_path / "b.csv"
    synth.write_corpus(p1, 400, 11)
    synth.write_corpus(p2, 400, 11)
    raw = p1.read_bytes()
    assert raw == p2.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV must be UTF-8 with BOM"
    back = pd.read_csv(p1, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(back.columns) == list(synth.CORPUS_COLUMNS)
    assert len(back) == 400
    assert back["text"].tolist() == a["text"].tolist()  # multi-line letters survive the round trip


def test_different_seed_different_frame():
    a = synth.generate(200, 1)
    b = synth.generate(200, 2)
    assert (a["text"] != b["text"]).mean() > 0.9


def test_noise_mask_is_private_and_seeded():
    df1, m1 = synth.generate(1000, 3, return_noise_mask=True)
    df2, m2 = synth.generate(1000, 3, return_noise_mask=True)
    assert m1.dtype == bool and len(m1) == 1000
    assert np.array_equal(m1, m2)
    assert 20 <= m1.sum() <= 40
    pd.testing.assert_frame_equal(df1, synth.generate(1000, 3))
    assert list(df1.columns) == list(synth.CORPUS_COLUMNS)  # nothing about noise in the frame


# ------------------------------------------------------------------ labels


def test_labels_inside_schema_label_sets(df):
    heads = schema.default_heads()
    for name, head in heads.items():
        values = df[name][df[name] != ""]
        assert set(values) <= set(head.labels), (name, set(values) - set(head.labels))
        schema.validate_labels(df[name], head)  # raises on an unknown label
    for reasons in df["risk_reasons"]:
        tags = [t for t in reasons.split("|") if t]
        assert set(tags) <= set(schema.RISK_REASONS)
        assert tags == [r for r in schema.RISK_REASONS if r in tags], "reasons in schema order"
    assert set(df["channel"]) <= set(schema.CHANNELS)
    assert set(df["track"]) == set(schema.TRACK_LABELS)
    assert set(df["department"]) == set(schema.department_labels()), "every department occurs"
    assert set(df["route"][df["route"] != ""]) == set(schema.ROUTE_LABELS), "every route occurs"


def test_route_empty_iff_ordinary(df):
    ordinary = df["track"] == schema.TRACK_ORDINARY
    assert (df.loc[ordinary, "route"] == "").all()
    assert (df.loc[~ordinary, "route"] != "").all()


def test_risk_and_reasons_agree(df):
    high_tags = {"越级进京", "集体行动", "极端言行"}
    for risk, reasons in zip(df["risk"], df["risk_reasons"]):
        tags = set(t for t in reasons.split("|") if t)
        assert (risk == "低") == (not tags)
        assert (risk == "高") == bool(tags & high_tags)


def test_litigation_departments_follow_the_coordination_rule(corpus):
    df, noise = corpus
    clean = df[~noise & (df["track"] == schema.TRACK_LITIGATION)]
    by_route = clean.groupby("route")["department"].agg(set).to_dict()
    assert by_route["仲裁"] == {"人社局"}
    assert by_route["行政复议诉讼"] == {"司法局"}
    assert by_route["执行"] == by_route["诉讼"] == by_route["申诉再审"] == {"政法委"}
    assert by_route["公安检察"] == {"公安局", "政法委"}


def test_no_unfilled_slots_in_text(df):
    for col in ("title", "text", "address"):
        assert not df[col].str.contains(r"[{}]", regex=True).any(), col


# ------------------------------------------------------------------ metadata


def test_id_checksum_known_values():
    # GB 11643 worked example: 11010519491231002 -> X
    assert synth.id_checksum("11010519491231002") == "X"
    assert synth.valid_id_number("11010519491231002X")
    assert not synth.valid_id_number("110105194912310021")  # wrong check digit
    assert not synth.valid_id_number("11010519491332002X")  # month 13
    assert not synth.valid_id_number("1101051949123100")  # too short


def test_metadata_is_plausible(corpus):
    df, noise = corpus
    ids = df["id_number"][df["id_number"] != ""]
    assert len(ids) > 0.8 * len(df)
    assert ids.map(synth.valid_id_number).all()
    assert ids.str[:6].value_counts().index[0] == "431226"  # mostly the county's own area code
    assert df["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    when = pd.to_datetime(df["received_at"], format="%Y-%m-%d %H:%M")
    assert (when.dt.year == 2026).all()
    assert df["received_at"].is_monotonic_increasing
    assert df["id"].is_unique
    assert (df["num_people"] >= 1).all() and (df["num_people"] == 1).mean() > 0.85
    big_visits = df[(df["channel"] == "来访") & (df["num_people"] >= 5) & ~noise]
    assert len(big_visits) > 0 and (big_visits["risk"] == "高").all()
    assert big_visits["risk_reasons"].str.contains("集体行动").all()
    named = df[df["petitioner"] != "匿名"]
    assert named["address"].str.contains("柳川县|省").mean() > 0.95


def test_repeat_petitioners(df):
    with_id = df[df["id_number"] != ""]
    repeated = with_id[with_id.duplicated("id_number", keep="first")]
    share = len(repeated) / len(df)
    assert 0.04 < share < 0.12, share
    for idn, group in with_id[with_id["id_number"].isin(repeated["id_number"])].groupby("id_number"):
        assert group["petitioner"].nunique() == 1 and group["phone"].nunique() == 1
    assert (repeated["risk_reasons"].str.contains("重复长期")).mean() > 0.6
    assert repeated["text"].str.contains("第[二三四五]次|反映过一次|上次来信|留过言").mean() > 0.4


# ------------------------------------------------------------------ distributions


def test_label_distribution_in_range(df):
    lit = (df["track"] == schema.TRACK_LITIGATION).mean()
    assert 0.10 <= lit <= 0.15, lit
    risk = df["risk"].value_counts(normalize=True)
    assert 0.03 <= risk["高"] <= 0.07, risk.to_dict()
    assert 0.18 <= risk["中"] <= 0.29, risk.to_dict()
    ch = df["channel"].value_counts(normalize=True)
    assert ch.index[0] == "网上"
    dep = df["department"].value_counts(normalize=True)
    assert {"住建局", "乡镇人民政府", "人社局"} <= set(dep.index[:5])
    assert dep["纪委监委"] < 0.02 and dep["退役军人事务局"] < 0.02
    assert dep.iloc[0] / dep.iloc[-1] > 8, "departments should be imbalanced"


def test_lengths_and_registers_vary(df):
    n = df["text"].str.len()
    assert n.min() < 40 and n.max() > 400
    assert df["text"].str.startswith("尊敬的").sum() > 100  # formal letters
    assert df["text"].str.contains("^来访|来访", regex=True).sum() > 300  # transcribed visits
    assert df["text"].str.contains("来电").sum() > 200  # telephone records
    assert (df["title"] == "").sum() > 20


def test_distractors_present_with_correct_labels(corpus):
    df, noise = corpus
    clean = df[~noise]
    fair = clean[clean["text"].str.contains("跳楼机")]
    assert len(fair) > 5 and (fair["risk"] == "低").any()
    assert (fair["risk"] == "高").mean() < 0.2  # a fairground ride is not a threat to jump
    court_passing = clean[clean["text"].str.contains("要去法院告他")]
    # (a litigation letter may carry the same sentence in a second, ordinary issue it raises)
    assert len(court_passing) > 20 and (court_passing["track"] == schema.TRACK_ORDINARY).mean() > 0.9
    collective_word = clean[clean["text"].str.contains("集体经济|集体户|集体宿舍|集体土地")]
    assert len(collective_word) > 0
    assert not collective_word["risk_reasons"].str.contains("集体行动").all()
    wages = clean[clean["text"].str.contains("工资|工钱") & (clean["track"] == schema.TRACK_ORDINARY)]
    assert (wages["department"] == "人社局").mean() > 0.5


def test_legal_words_and_group_signs_do_not_decide_labels(corpus):
    """Real-letter failure modes: legal words in ordinary petitions, plain-worded police cases,
    group signs that are not escalation, and requests that name the responsible office."""
    df, noise = corpus
    clean = df[~noise]
    lit = clean[clean["track"] == schema.TRACK_LITIGATION]
    assert 0.2 < (lit["route"] == "公安检察").mean() < 0.4, "police cases are the commonest legal route"
    legal_words = clean["text"].str.contains("起诉|打官司|申诉|强制拆除|查封|诈骗|报了警|判决|行政复议")
    assert legal_words.sum() > 200
    assert (clean.loc[legal_words, "track"] == schema.TRACK_ORDINARY).mean() > 0.5, "legal words alone do not make 涉法涉诉"
    group = clean["risk_reasons"].str.contains("群体利益")
    assert group.sum() > 100 and (clean.loc[group, "risk"] == "高").mean() < 0.2, "many people affected is mostly 中"
    named_ask = clean["text"].str.contains(r"(?:请|希望|恳请)[^，。！？]{0,6}(?:局|委|分局)")
    assert named_ask.mean() < 0.25, "most letters do not name the responsible office"


# ------------------------------------------------------------------ taxonomy


def test_custom_taxonomy_restricts_departments(tmp_path):
    toml = tmp_path / "tax.toml"
    toml.write_text(
        "\n".join(
            f'[[department]]\nname = "{n}"\nremit = "职责"\ncategories = ["城乡建设"]\n'
            for n in ("住建局", "人社局", "政法委", "乡镇人民政府")
        ),
        encoding="utf-8",
    )
    df = synth.generate(300, 5, taxonomy=toml)
    assert set(df["department"]) <= {"住建局", "人社局", "政法委", "乡镇人民政府"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[department]]\nname = "甲"\nremit = "x"\ncategories = []\n[[department]]\nname = "乙"\nremit = "y"\ncategories = []\n', encoding="utf-8")
    with pytest.raises(schema.SchemaError):
        synth.generate(10, 1, taxonomy=bad)


def test_default_taxonomy_loads():
    deps = schema.load_taxonomy()
    names = [d.name for d in deps]
    assert len(names) >= 18
    for must in ("住建局", "自然资源局", "人社局", "农业农村局", "教育局", "卫健委", "市场监管局", "生态环境分局", "交通运输局",
                 "公安局", "民政局", "医保局", "水利局", "城管局", "乡镇人民政府", "纪委监委", "司法局", "政法委",
                 "退役军人事务局", "文旅局"):
        assert must in names
    assert all(d.full_name and d.remit and d.categories for d in deps)


# ------------------------------------------------------------------ sample workbook


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "letters.xlsx"
    synth.write_sample_workbook(path, n=300, seed=7)
    return path


def test_sample_workbook_layout(sample):
    wb = openpyxl.load_workbook(sample)
    ws = wb.active
    header = [c.value for c in ws[1]]
    assert header[0] == "信访件编号" and "备注" in header
    canon = [schema.canonical_column(h) for h in header]
    assert canon[:10] == ["id", "title", "text", "received_at", "channel", "petitioner", "id_number", "phone", "address", "num_people"]
    assert canon[10] is None  # pass-through column
    assert not set(canon) & set(schema.LABEL_FIELDS), "the sample is unlabelled"
    assert not ws.merged_cells.ranges
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    blank = [i for i, r in enumerate(rows) if all(v is None for v in r)]
    assert len(blank) == 1 and 0 < blank[0] < len(rows) - 1
    data = [r for r in rows if any(v is not None for v in r)]
    assert len(data) == 300


def test_sample_workbook_messy_rows(sample):
    wb = openpyxl.load_workbook(sample)
    ws = wb.active
    rows = [r for r in ws.iter_rows(min_row=2) if any(c.value is not None for c in r)]
    texts = [r[2].value or "" for r in rows]
    titles = [r[1].value or "" for r in rows]
    ids = [r[0].value for r in rows]
    assert any(t == "" and ti == "" and r[0].value for t, ti, r in zip(texts, titles, rows)), "a row with empty content"
    assert any(re.search("[０-９]", t) and "\u3000" in (ti + t) for t, ti in zip(texts, titles)), "full-width digits and spaces"
    assert any("_x000D_" in t and "&nbsp;" in t and "<br>" in t for t in texts), "HTML residue"
    assert len(ids) - len(set(ids)) == 1, "one duplicate id"
    formula = [r[2] for r in rows if (r[2].value or "").startswith("=cmd|")]
    assert len(formula) == 1 and formula[0].data_type == "s", "stored as text, not as a formula"
    assert max(len(t) for t in texts) > 2000, "a very long rambling letter"
    for r in rows:  # ID numbers and phones are text, never numbers in scientific notation
        assert r[6].value is None or isinstance(r[6].value, str)
        assert r[7].value is None or isinstance(r[7].value, str)


def test_sample_workbook_passes_schema_validation(sample):
    raw = pd.read_excel(sample, dtype=object)
    out, report = schema.validate_frame(raw, str(sample))
    assert report.passthrough == ["备注"]
    assert report.row_errors, "the empty-content row (and the blank row) cannot be scored"
    assert any("编号重复" in w for w in report.warnings)
    assert len(out) == len(raw)


def test_sample_workbook_deterministic(tmp_path):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    synth.write_sample_workbook(a, n=40, seed=3)
    synth.write_sample_workbook(b, n=40, seed=3)
    va = [[c.value for c in r] for r in openpyxl.load_workbook(a).active.iter_rows()]
    vb = [[c.value for c in r] for r in openpyxl.load_workbook(b).active.iter_rows()]
    assert va == vb


# ------------------------------------------------------------------ not trivially separable


@pytest.mark.slow
def test_bag_of_words_baseline_is_good_but_not_perfect():
    """A plain character n-gram + logistic regression model trained on one seed and scored on
    another must learn every head (well above the majority class) but must not separate
    departments perfectly: boundary matters, mixed letters and label noise keep it honest."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.time()
    train = synth.generate(4000, 1)
    test = synth.generate(2000, 2)

    def texts(frame):
        return [unicodedata.normalize("NFKC", f"{a}。{b}") for a, b in zip(frame["title"], frame["text"])]

    vec = CountVectorizer(analyzer="char", ngram_range=(1, 2), min_df=3, binary=True)
    xtr, xte = vec.fit_transform(texts(train)), vec.transform(texts(test))
    acc, majority = {}, {}
    for head in ("track", "department", "risk"):
        clf = LogisticRegression(C=1.0, max_iter=300, tol=1e-3).fit(xtr, train[head])
        acc[head] = float((clf.predict(xte) == test[head].to_numpy()).mean())
        majority[head] = float(test[head].value_counts(normalize=True).iloc[0])
    lit_tr, lit_te = (train["track"] == schema.TRACK_LITIGATION).to_numpy(), (test["track"] == schema.TRACK_LITIGATION).to_numpy()
    clf = LogisticRegression(C=1.0, max_iter=300, tol=1e-3).fit(xtr[lit_tr], train["route"][lit_tr])
    acc["route"] = float((clf.predict(xte[lit_te]) == test["route"][lit_te].to_numpy()).mean())
    majority["route"] = float(test["route"][lit_te].value_counts(normalize=True).iloc[0])
    for head in acc:
        print(f"{head}: accuracy {acc[head]:.3f} (majority {majority[head]:.3f})")
    print(f"baseline took {time.time() - t0:.1f}s")
    assert 0.5 < acc["department"] < 0.98
    for head in ("track", "risk", "route"):
        assert acc[head] > majority[head] + 0.03, head
