import pytest

from triage.cues import find_cues


def groups(text, family="risk"):
    return {h.group for h in find_cues(text, family)}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("如果再不解决，我就去北京上访", {"越级进京"}),
        ("准备到省里上访讨个说法", {"越级进京"}),
        ("我们组织了五十多名工人到县政府门口拉横幅", {"集体行动", "群体利益"}),
        ("实在没办法只能跳楼了", {"极端言行"}),
        ("多次反映至今未解决", {"重复长期"}),
        ("要把这件事发到抖音上曝光", {"媒体曝光"}),
        ("我们已经走投无路", {"情绪激烈"}),
    ],
)
def test_risk_cues_found(text, expected):
    assert expected <= groups(text)


@pytest.mark.parametrize(
    "text, absent",
    [
        ("周末带孩子去游乐园坐了跳楼机", "极端言行"),
        ("儿子在北京打工，家里老人没人照顾", "越级进京"),
        ("进京看病需要转诊手续", "越级进京"),
        ("村集体经济收入分配不公开", "集体行动"),
        ("集体土地被占用", "集体行动"),
    ],
)
def test_risk_cue_false_hits_guarded(text, absent):
    assert absent not in groups(text)


@pytest.mark.parametrize(
    "text, route",
    [
        ("法院判决生效两年，对方拒不履行，申请强制执行没有结果", "执行"),
        ("不服二审判决，申请再审", "申诉再审"),
        ("劳动仲裁裁决公司支付工资", "仲裁"),
        ("对行政处罚决定不服，申请行政复议", "行政复议诉讼"),
        ("被网络诈骗，报案后派出所一直不立案", "公安检察"),
        ("朋友借款不还，准备起诉", "诉讼"),
    ],
)
def test_legal_cues(text, route):
    assert route in groups(text, "legal")


def test_spans_point_into_text():
    text = "我们多次反映，准备集体上访，再不解决就喝农药"
    for h in find_cues(text, "risk"):
        assert text[h.start : h.end] == h.term


@pytest.mark.parametrize(
    "text",
    ["下水道堵塞好几天了", "早高峰路口堵住了", "小区业主联名信反映物业问题", "我们一起做项目一共10人，到年底还没结账"],
)
def test_not_collective_action(text):
    assert "集体行动" not in groups(text)


def test_joint_letter_is_group_interest():
    assert "群体利益" in groups("小区业主联名信反映物业问题")


@pytest.mark.parametrize(
    "text, group",
    [
        ("受害者准备到省政府门口讨说法", "越级进京"),
        ("再不处理就会引发群体性事件", "集体行动"),
        ("大家商量上街游行", "集体行动"),
        ("我们被逼无奈只能做出极端行为", "极端言行"),
    ],
)
def test_general_escalation_phrasings(text, group):
    assert group in groups(text)


@pytest.mark.parametrize(
    "text, group",
    [
        ("如果诉求得不到答复，我们将采取合法途径集体维权。", "集体行动"),
        ("上周业主在售楼部门口拉横副维权。", "集体行动"),  # the common typo 横副
        ("当时大家拉过横幅。", "集体行动"),
        ("此事若再拖下去，极易引发群体性事件。", "集体行动"),
        ("我现在被逼得想死的心都有了。", "情绪激烈"),  # an idiom of despair, not a threat
        ("我们将会誓死捍卫自己的家园！", "极端言行"),
        ("我们只能跪在省政府门口喊冤。", "越级进京"),
        ("我们将继续向中央反映。", "越级进京"),
        ("我们多次维权无果。", "重复长期"),
    ],
)
def test_online_register_escalation_phrasings(text, group):
    assert group in {h.group for h in find_cues(text, "risk")}


@pytest.mark.parametrize(
    "text",
    ["我们只想依法维权，相信政府会公正处理。", "万一发生火灾，后果不堪设想。", "晚上吵得要死，孩子根本睡不着。",
     "油烟一天到晚熏死人。", "希望省里相关部门也能关注一下。", "近万居民出门、回家全堵路上。",
     "为了不激化矛盾，我向物业反映此事。", "信访部门的做法制造了社会不稳定因素。"],
)
def test_everyday_words_are_not_high_risk_signs(text):
    from triage.cues import HIGH_REASONS

    assert not HIGH_REASONS & {h.group for h in find_cues(text, "risk")}


# -- the first-character scan (cues._Scanner) -----------------------------------------------


@pytest.mark.parametrize(
    "pattern, starts",
    [
        (r"(?<![全都])堵(?:路|门)(?![口上])", "堵"),
        (r"(?:进京|赴京)|越级", "越赴进"),
        (r"(?:劳动|人事)?(?:争议)?仲裁", "人争仲劳"),
        (r"[0-9]{1,3}年", "0123456789"),
        (r"(?:多|几)?次", "几多次"),
    ],
)
def test_first_characters_of_a_pattern(pattern, starts):
    import re

    from triage.cues import _first_chars_class

    cls = _first_chars_class(re.compile(pattern))
    assert cls is not None and set(cls.pattern.strip("[]").replace("\\", "")) == set(starts)


@pytest.mark.parametrize("pattern", [r"[^，。]{0,6}政府", r".打", r"a*", r"(?:x)?", r"(?i:ab)c", r"\w+"])
def test_unbounded_or_empty_patterns_are_scanned_plainly(pattern):
    import re

    from triage.cues import _first_chars_class

    assert _first_chars_class(re.compile(pattern)) is None


def test_scanner_finds_exactly_what_finditer_finds():
    """Every cue pattern, on synthetic letters and on random strings made of the cue
    patterns' own characters (dense with whole and partial matches, overlaps and guards)."""
    import random
    import re

    from triage.cues import LEGAL_CUES, PASSING_LEGAL, RISK_CUES, _compiled
    from triage.synth import generate

    source = "".join(p for d in (RISK_CUES, LEGAL_CUES) for v in d.values() for p in v) + "".join(PASSING_LEGAL)
    words = sorted(set(re.findall(r"[\u4e00-\u9fff]+", source)))  # the patterns' literal runs
    chars = sorted(set("".join(words))) + list("，。；！ 12a")
    rng = random.Random(9)
    letters = generate(n=200, seed=3)
    texts = [f"{t}\n{b}" for t, b in zip(letters["title"], letters["text"])]
    texts += [
        "".join(rng.choice(words) if rng.random() < 0.5 else rng.choice(chars) for _ in range(rng.randint(1, 16)))
        for _ in range(4000)
    ]
    scanned = hits = 0
    for family, groups in _compiled().items():
        for group, scanner in groups.items():
            scanned += scanner.starts is not None
            for text in texts:
                want = [(m.start(), m.end()) for m in scanner.pattern.finditer(text) if m.end() > m.start()]
                assert [(m.start(), m.end()) for m in scanner.finditer(text)] == want, (family, group, text)
                hits += len(want)
    assert scanned == 14 and hits > 3000
