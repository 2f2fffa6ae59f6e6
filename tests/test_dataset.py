"""Retraining data: near-duplicates, latest human decision only, overrides, skips, evaluation sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triage import schema
from triage.dataset import (
    Reviewed,
    build_training_data,
    jaccard,
    load_reviewed,
    near_duplicate_groups,
    recent_split,
    shingles,
    skeleton,
)
from triage.store import open_store

HEADS = schema.default_heads()
DEPTS = schema.department_labels()

LETTER = "本人家住东风村三组，去年修建村道时占用我家承包地一亩二分，至今没有给付任何补偿款，多次找村委会和镇政府都没有结果，请求依法处理。"
OTHERS = [
    "小区旁边的工厂夜间排放废气，气味刺鼻，影响附近居民休息和健康，请生态环境部门尽快查处。",
    "单位拖欠我们十几名工人八个月工资，老板一直推脱，请求劳动监察部门督促支付。",
    "孩子就读的学校以各种名义收取资料费和补课费，家长负担很重，请教育局调查处理。",
]


def test_skeleton_ignores_digits_space_and_punctuation():
    a = "我的电话是 13800000000，地址：东风村 3 组！"
    b = "我的电话是13912345678。地址东风村5组"
    assert skeleton(a) == skeleton(b) == "我的电话是地址东风村组"


def test_near_duplicates_grouped_and_distinct_letters_apart():
    variant = LETTER.replace("请求依法处理。", "请求依法处理，谢谢。")  # small edit, Jaccard >= 0.9
    assert jaccard(shingles(skeleton(LETTER)), shingles(skeleton(variant))) >= 0.9
    far = LETTER[: len(LETTER) // 2] + OTHERS[1]  # half the same: well below 0.9
    assert jaccard(shingles(skeleton(LETTER)), shingles(skeleton(far))) < 0.9
    texts = [LETTER, OTHERS[0], "电话13800000000 " + LETTER, variant, far, OTHERS[1]]
    g = near_duplicate_groups(texts)
    assert g[0] == g[2] == g[3]
    assert len({g[0], g[1], g[4], g[5]}) == 4


def _frame(texts, **labels):
    n = len(texts)
    df = pd.DataFrame({"id": [f"B{i}" for i in range(n)], "title": [""] * n, "text": texts})
    lab = {h: list(labels.get(h, [None] * n)) for h in ("track", "route", "department", "risk")}
    return df, lab


def _reviewed(rows, letters):
    labels = pd.DataFrame(rows, columns=["letter_id", "head", "label", "decided_at", "kind"])
    labels["decided_at"] = pd.to_datetime(labels["decided_at"])
    return Reviewed(labels, pd.DataFrame(letters, columns=["id", "title", "text"]))


def test_reviewed_label_overrides_base_label_of_near_duplicate_and_counts_once():
    base, lab = _frame(
        [LETTER, OTHERS[0], OTHERS[1], OTHERS[2]],
        track=["普通信访"] * 4,
        department=[DEPTS[0], DEPTS[1], DEPTS[2], DEPTS[3]],
        risk=["低"] * 4,
    )
    rev = _reviewed(
        [("R1", "department", DEPTS[5], "2026-11-01 10:00", "correct"), ("R2", "department", DEPTS[6], "2026-11-02 10:00", "accept")],
        [("R1", "", "联系电话 13900001111。" + LETTER), ("R2", "", "一封全新的来信，反映农村低保评定不公开不透明，要求民政部门复查。")],
    )
    td = build_training_data(base, lab, [], rev, HEADS, recent_fraction=0.0)
    assert len(td.frame) == 5  # R1 merged with B0
    row = td.frame.index[td.frame["id"] == "R1"][0]
    assert td.labels["department"][row] == DEPTS[5]
    assert td.labels["track"][row] == "普通信访"  # unreviewed heads keep the base label
    assert "B0" not in set(td.frame["id"])
    rep = td.report
    assert rep.overrides == {"department": 1}
    assert rep.reviewed_merged_into_base == 1
    assert rep.used == {"department": {DEPTS[5]: 1, DEPTS[6]: 1}}
    assert rep.corrected == {"department": {DEPTS[5]: 1}}


def test_unknown_labels_skipped_and_listed():
    base, lab = _frame(OTHERS, track=["普通信访"] * 3, department=DEPTS[:3], risk=["低"] * 3)
    rev = _reviewed(
        [("R1", "department", "已撤销的局", "2026-11-01", "correct"), ("R1", "risk", "高", "2026-11-01", "correct")],
        [("R1", "", "反映某某事项，请求处理。这是一封与其他信件都不一样的来信。")],
    )
    td = build_training_data(base, lab, [], rev, HEADS, recent_fraction=0.0)
    assert td.report.unknown_labels == [("R1", "department", "已撤销的局")]
    row = list(td.frame["id"]).index("R1")
    assert td.labels["department"][row] is None and td.labels["risk"][row] == "高"


def test_holdout_and_recent_are_kept_out_of_training_with_their_duplicates():
    texts = [LETTER, *OTHERS, "群众反映集贸市场占道经营严重，交通堵塞，请城管部门整治。"]
    base, lab = _frame(texts, track=["普通信访"] * 5, department=DEPTS[:5], risk=["低"] * 5)
    letters = [(f"R{i}", "", f"第{i}封复核信：" + t) for i, t in enumerate(["反映路灯长期不亮。" * 3, "反映自来水水质浑浊。" * 3, "反映垃圾清运不及时。" * 3, "反映公交线路取消。" * 3])]
    letters.append(("R9", "", "电话 13700000000 " + LETTER))  # near-duplicate of held-out B0
    rows = [(lid, "department", DEPTS[7], f"2026-11-0{i + 1}", "correct") for i, (lid, _, _) in enumerate(letters)]
    rev = _reviewed(rows, letters)
    td = build_training_data(base, lab, [0], rev, HEADS, recent_fraction=0.2)
    assert td.holdout_ids == ["B0"]
    assert td.recent_ids == ["R9"]  # newest 20 % of 5 reviewed letters = 1, decided last
    ids = set(td.frame["id"])
    assert "B0" not in ids and "R9" not in ids
    assert td.report.recent_letters == 1
    assert td.recent_labels["department"] == [DEPTS[7]]
    assert td.holdout_labels["department"] == [DEPTS[0]]


def test_route_only_for_litigation_letters():
    base, lab = _frame(OTHERS, track=["涉法涉诉", "普通信访", "涉法涉诉"], route=["诉讼", "诉讼", "执行"], department=DEPTS[:3], risk=["低"] * 3)
    td = build_training_data(base, lab, [], _reviewed([], []), HEADS, recent_fraction=0.0)
    by_id = dict(zip(td.frame["id"], td.labels["route"]))
    assert by_id == {"B0": "诉讼", "B1": None, "B2": "执行"}


def test_one_class_head_reported():
    base, lab = _frame(OTHERS, track=["普通信访"] * 3, department=DEPTS[:3], risk=["低"] * 3)
    td = build_training_data(base, lab, [], _reviewed([], []), HEADS, recent_fraction=0.0)
    assert td.report.one_class_heads["risk"] == ["低"]
    assert td.report.one_class_heads["track"] == ["普通信访"]
    assert "department" not in td.report.one_class_heads


def test_recent_split_is_newest_by_decision_time():
    rows = [(f"L{i}", "track", "普通信访", f"2026-11-{10 + (i * 7) % 10:02d}", "accept") for i in range(10)]
    rev = _reviewed(rows, [])
    when = {r[0]: r[3] for r in rows}
    newest = sorted(when, key=lambda k: when[k])[-3:]
    assert recent_split(rev, 0.3) == sorted(newest)


# ---- from a real review database ----------------------------------------------------


def _store_with_letters(url, n=3, taxonomy=None):
    st = open_store(url, taxonomy=taxonomy)
    recs = [{"id": f"L{i}", "title": f"标题{i}", "text": OTHERS[i % 3] + f"（第{i}件）", "track": "普通信访", "department": DEPTS[0], "risk": "低"} for i in range(n)]
    st.upsert_scored(recs, "m1", "batch-1")
    return st


def test_only_latest_human_decision_counts_and_suggestions_never_do(sqlite_url):
    st = _store_with_letters(sqlite_url)
    try:
        st.add_event("L0", "department", DEPTS[1], "clerk", "correct")
        st.add_event("L0", "department", DEPTS[2], "chief", "correct")  # latest wins
        st.add_event("L1", "risk", "中", "clerk", "accept")
        st.add_event("L1", None, None, "clerk", "note", note="待查")
        rev = load_reviewed(st)
    finally:
        st.close()
    got = {(r.letter_id, r.head): (r.label, r.kind) for r in rev.labels.itertuples()}
    assert got == {("L0", "department"): (DEPTS[2], "correct"), ("L1", "risk"): ("中", "accept")}
    assert sorted(rev.letters["id"]) == ["L0", "L1"]  # L2 has only a machine suggestion
    snap = rev.snapshot()
    assert list(snap.columns) == ["letter_id", "head", "label", "decided_at", "kind"]
    assert "text" not in snap.columns


def test_label_removed_from_taxonomy_is_skipped(tmp_path, sqlite_url):
    old = tmp_path / "old.toml"
    old.write_text(
        schema.DEFAULT_TAXONOMY.read_text(encoding="utf-8") + '\n[[department]]\nname = "老干部局"\nremit = "离退休干部"\ncategories = ["其他"]\n',
        encoding="utf-8",
    )
    st = _store_with_letters(sqlite_url, taxonomy=old)
    try:
        st.add_event("L0", "department", "老干部局", "clerk", "correct")
        st.add_event("L1", "department", DEPTS[3], "clerk", "correct")
        rev = load_reviewed(st)
    finally:
        st.close()
    base, lab = _frame([OTHERS[0] * 2], track=["普通信访"], department=[DEPTS[0]], risk=["低"])
    td = build_training_data(base, lab, [], rev, HEADS, recent_fraction=0.0)  # today's taxonomy
    assert td.report.unknown_labels == [("L0", "department", "老干部局")]
    assert td.report.used == {"department": {DEPTS[3]: 1}}


def test_sha256_changes_with_labels():
    base, lab = _frame(OTHERS, track=["普通信访"] * 3, department=DEPTS[:3], risk=["低"] * 3)
    a = build_training_data(base, lab, [], _reviewed([], []), HEADS, recent_fraction=0.0)
    lab2 = {**lab, "department": [DEPTS[0], DEPTS[0], DEPTS[2]]}
    b = build_training_data(base, lab2, [], _reviewed([], []), HEADS, recent_fraction=0.0)
    assert a.sha256() == build_training_data(base, lab, [], _reviewed([], []), HEADS, recent_fraction=0.0).sha256()
    assert a.sha256() != b.sha256()


def test_minhash_estimates_jaccard():
    from triage.dataset import _minhash

    a = shingles(skeleton(LETTER + OTHERS[0]))
    for keep in (0.3, 0.6, 0.92):
        b = set(sorted(a)[: int(len(a) * keep)]) | {f"新{i}" for i in range(5)}
        sig = _minhash([a, b])
        assert abs((sig[0] == sig[1]).mean() - jaccard(a, b)) < 0.12, keep
