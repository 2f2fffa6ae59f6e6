"""Transfer bench helpers on made-up strings (no real letters): near-copy detection that keeps a
tuning letter which is a repost of an evaluation letter out of the tuning scores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
_spec = importlib.util.spec_from_file_location("transfer_bench", ROOT / "bench" / "transfer.py")
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)


def test_near_copies_finds_reposts_not_shared_topics():
    evaluation = [
        "我家楼下的烧烤店每天营业到凌晨两点，油烟和噪音让全楼住户无法休息，多次投诉没有结果。",
        "村里的道路去年修好后又被重车压坏了，雨天根本走不了，请交通部门来看一看。",
    ]
    tuning = [
        # the first letter reposted with a new opening line and a small edit
        "再次反映：我家楼下的烧烤店每天营业到凌晨两点，油烟和噪音让全楼住户无法休息，多次投诉都没有结果。",
        # same topic, different words: not a copy
        "小区门口的夜宵摊半夜还在营业，吵得孩子睡不着觉，希望城管管一管。",
        "",
    ]
    assert tb.near_copies(tuning, evaluation).tolist() == [True, False, False]
    assert tb.near_copies(tuning, []).tolist() == [False, False, False]


def _segment(text: str) -> str:
    """What train_segmented.csv does to a letter: words split by spaces, punctuation and the
    commonest one-character function words gone."""
    import re

    kept = re.sub(r"[的了我们在是都也就把被和让很有]", "", text)
    return " ".join(re.findall(r"[\u4e00-\u9fff]{1,2}|[A-Za-z0-9]+", kept))


EVAL_LETTER = ("我家楼下的烧烤店每天营业到凌晨两点，油烟和噪音让全楼住户都无法休息，"
               "我们多次打电话投诉也没有结果，希望环保和城管部门把这件事管起来。")


def test_segmented_repost_is_found_on_word_shingles_only():
    seg = _segment("再次反映：" + EVAL_LETTER).replace(" ", "")
    other_topic = _segment("小区门口的夜宵摊半夜还在营业，吵得孩子睡不着觉，希望城管管一管。").replace(" ", "")
    kw = {"containment": tb.SEG_CONTAINMENT, "k": tb.SEG_SHINGLE, "words_only": True}
    assert tb.near_copies([seg, other_topic], [EVAL_LETTER], **kw).tolist() == [True, False]
    # the raw letters' test would miss the repost: its 6-character windows are broken by the dropped words
    assert tb.near_copies([seg], [EVAL_LETTER]).tolist() == [False]


def _data_dir(tmp_path):
    import pandas as pd

    d = tmp_path / "teddy2020"
    d.mkdir()
    pd.DataFrame({"id": ["r1", "r2"], "title": ["路灯不亮", "公交改线"],
                  "body": ["村口的路灯坏了半年，晚上走路看不见。", "希望恢复原来的公交线路。"],
                  "time": ["2019-01-02", "2019-01-03"]}).to_csv(d / "raw_unlabeled.csv", index=False)
    pd.DataFrame({"id": ["e1"], "title": ["烧烤店扰民"], "body": [EVAL_LETTER], "lit": ["0"], "route": [""],
                  "risk": ["1"], "reasons": [""], "conf": ["sure"]}).to_csv(d / "lit_risk_dev.csv", index=False)
    tokens = [_segment("学校门口的道路坑坑洼洼，下雨天孩子们上学很不方便，请交通局来修一修。"),
              _segment("烧烤店扰民　再次反映：" + EVAL_LETTER),
              _segment("借给朋友五万元，约定一年归还，到期后他一直不还，我该怎么办。")]
    pd.DataFrame({"tokens": tokens, "label": ["交通运输", "环境保护", "城乡建设"]}).to_csv(
        d / "train_segmented.csv", index=False)
    return tmp_path


def test_gold_mixes_raw_ids_and_segmented_rows_in_label_order(tmp_path, capsys):
    import pandas as pd

    data = _data_dir(tmp_path)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["seg:2", "r2", "seg:1", "seg:0", "r1"], "lit": ["1", "0", "0", "0", "0"],
                  "route": ["诉讼", "", "", "", ""], "risk": ["0", "0", "1", "0", "0"]}).to_csv(labels, index=False)
    gold, frame = tb._gold_from_raw(data, labels)
    # seg:1 is a repost of the evaluation letter and is left out; the others keep the labels' order
    assert gold["id"].tolist() == ["seg:2", "r2", "seg:0", "r1"]
    assert frame["id"].tolist() == gold["id"].tolist()
    assert frame["title"].tolist()[0] == "" and frame["title"].tolist()[1] == "公交改线"
    assert frame["text"].tolist()[0] == _segment(
        "借给朋友五万元，约定一年归还，到期后他一直不还，我该怎么办。").replace(" ", "")
    assert " " not in "".join(frame["text"])
    assert "1 letters" in capsys.readouterr().err


def test_gold_rejects_segmented_rows_that_do_not_exist(tmp_path):
    import pandas as pd
    import pytest

    data = _data_dir(tmp_path)
    for bad in ("seg:3", "seg:x"):
        labels = tmp_path / "labels.csv"
        pd.DataFrame({"id": ["r1", bad], "lit": ["0", "0"], "route": ["", ""], "risk": ["0", "0"]}).to_csv(
            labels, index=False)
        with pytest.raises(SystemExit) as e:
            tb._gold_from_raw(data, labels)
        assert e.value.code == 2
