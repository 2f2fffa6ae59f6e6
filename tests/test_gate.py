"""The promotion gate on hand-made metrics: tolerance, primary metric, refusals with numbers."""

from __future__ import annotations

from triage.gate import decide, decision_text


def m(**f1):
    """metrics with macro-F1 per head; ``n`` via a tuple (f1, n)."""
    heads = {}
    for h, v in f1.items():
        f, n = v if isinstance(v, tuple) else (v, 100)
        heads[h] = {"macro_f1": f, "accuracy": f, "n": n}
    return {"heads": heads}


def test_no_champion_promotes():
    d = decide(None, {"holdout": m(track=0.8), "recent": m()})
    assert d.promote and "没有冠军" in d.reasons[0]


def test_better_everywhere_promotes_on_holdout_when_recent_is_small():
    champ = {"holdout": m(track=0.90, department=0.70), "recent": m(track=(0.5, 10))}
    chall = {"holdout": m(track=0.905, department=0.76), "recent": m(track=(0.4, 10))}
    d = decide(champ, chall, recent_letters=10, min_recent=30)
    assert d.promote, d.reasons
    assert d.primary_set == "holdout"
    assert abs(d.gain - ((0.905 + 0.76) / 2 - 0.80)) < 1e-12
    # the recent set (10 letters) is shown but not checked
    assert any(r["set"] == "recent" and not r["checked"] for r in d.table)


def test_one_head_dropping_beyond_tolerance_refuses_with_numbers():
    champ = {"holdout": m(track=0.90, department=0.70), "recent": m()}
    chall = {"holdout": m(track=0.87, department=0.90), "recent": m()}
    d = decide(champ, chall, tolerance=0.01)
    assert not d.promote
    text = " ".join(d.reasons)
    assert "办理类别" in text and "0.030" in text and "0.900" in text and "0.870" in text
    # within a looser tolerance the same challenger passes
    assert decide(champ, chall, tolerance=0.05).promote


def test_primary_metric_uses_recent_set_when_large_enough():
    champ = {"holdout": m(track=0.80, department=0.70), "recent": m(track=(0.80, 60), department=(0.70, 60))}
    chall = {"holdout": m(track=0.80, department=0.71), "recent": m(track=(0.80, 60), department=(0.70, 60))}
    d = decide(champ, chall, recent_letters=60, min_recent=30)
    assert d.primary_set == "recent"
    assert not d.promote  # no gain on the primary (recent) set, even though holdout improved
    assert "最近复核集" in d.reasons[-1] and "+0.0000" in d.reasons[-1]


def test_min_gain_is_required():
    champ = {"holdout": m(track=0.80), "recent": m()}
    chall = {"holdout": m(track=0.805), "recent": m()}
    assert decide(champ, chall).promote
    d = decide(champ, chall, min_gain=0.01)
    assert not d.promote and "0.010" in d.reasons[-1]


def test_recent_set_drop_is_checked_for_heads_with_enough_letters():
    champ = {"holdout": m(track=0.80), "recent": m(track=(0.90, 40))}
    chall = {"holdout": m(track=0.85), "recent": m(track=(0.80, 40))}
    d = decide(champ, chall, recent_letters=40, min_recent=30)
    assert not d.promote
    assert any("最近复核集" in r and "下降 0.100" in r for r in d.reasons)


def test_missing_head_and_unloadable_champion_refuse():
    champ = {"holdout": m(track=0.8, risk=0.5), "recent": m()}
    chall = {"holdout": m(track=0.9), "recent": m()}
    d = decide(champ, chall)
    assert not d.promote and "风险等级" in d.reasons[0]
    d = decide(None, chall, required_heads=("track", "risk"))
    assert not d.promote and "risk" in d.reasons[0]
    d = decide(None, chall, champion_error="校验值与清单不符")
    assert not d.promote and "校验值与清单不符" in d.reasons[0]


def test_decision_text_is_chinese_table():
    champ = {"holdout": m(track=0.80), "recent": m()}
    chall = {"holdout": m(track=0.70), "recent": m()}
    text = decision_text(decide(champ, chall))
    assert text.startswith("结论：保留原冠军")
    assert "0.800" in text and "0.700" in text and "-0.100" in text


def test_heads_with_few_letters_are_not_checked_nor_averaged():
    champ = {"holdout": m(track=(0.80, 200), route=(0.90, 4)), "recent": m()}
    chall = {"holdout": m(track=(0.82, 200), route=(0.50, 4)), "recent": m()}
    d = decide(champ, chall)
    assert d.promote, d.reasons
    assert d.champion_primary == 0.80 and d.challenger_primary == 0.82  # route (4 letters) left out
    assert [r["checked"] for r in d.table if r["head"] == "route"] == [False]
    assert "件数不足" in decision_text(d)
