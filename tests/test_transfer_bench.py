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
