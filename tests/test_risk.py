import numpy as np
import pytest

from triage.risk import assess, level_for, reasons_for, risk_score


def test_risk_score_is_expected_severity():
    assert risk_score(np.array([[0.2, 0.5, 0.3]]), ["低", "中", "高"])[0] == pytest.approx(0.55)
    assert risk_score(np.array([[1.0, 0.0, 0.0]]), ["低", "中", "高"])[0] == 0


@pytest.mark.parametrize(
    "p_high, p_mh, cue, expected",
    [
        (0.6, 0.9, True, "高"),
        (0.6, 0.9, False, "中"),  # no explicit sign: 0.6 is not sure enough for 高
        (0.9, 0.95, False, "高"),
        (0.1, 0.6, False, "中"),
        (0.1, 0.3, True, "低"),
    ],
)
def test_level_for(p_high, p_mh, cue, expected):
    assert level_for(p_high, p_mh, cue) == expected


def test_thresholds_validated():
    with pytest.raises(ValueError, match="0 到 1"):
        level_for(0.5, 0.5, True, {"high": 1.5})


def test_reasons_from_text_and_metadata():
    assert "越级进京" in reasons_for("再不解决就去北京上访")
    assert reasons_for("来访反映噪音问题", num_people=8, channel="来访") == ("集体行动", "群体利益")
    assert reasons_for("你好", recurrence=3) == ("重复长期",)
    assert reasons_for("周末去坐跳楼机") == ()


def test_assess_combines():
    a = assess(np.array([0.1, 0.2, 0.7]), ["低", "中", "高"], "我们准备集体上访")
    assert a.level == "高" and "集体行动" in a.reasons and 0 <= a.score <= 1


def test_planned_escalation_is_high_once_the_model_agrees_it_is_not_low():
    assert level_for(0.2, 0.7, True, planned=True) == "高"
    assert level_for(0.2, 0.3, True, planned=True) == "低"  # the model must still see risk
    assert level_for(0.2, 0.7, True, planned=False) == "中"


def test_plan_vs_history():
    from triage.cues import planned_high_cues

    assert planned_high_cues("如果再不解决，我们就去北京上访。")
    assert planned_high_cues("我们准备组织村民到县政府门口拉横幅")
    assert not planned_high_cues("去年我们曾集体上访过一次。")
    assert not planned_high_cues("周末带孩子坐了跳楼机，准备下周再去")


@pytest.mark.parametrize(
    "text, frame",
    [
        ("如果再不解决，我们就去北京上访。", "plan"),  # condition in the clause before
        ("我们全体业主将采取合法途径集体维权。", "plan"),
        ("开盘之日就是我们集体上访之日。", "plan"),
        ("今天出现了业主车辆堵门的情况。", "plan"),  # under way
        ("2019年5月，业主在幼儿园门口聚集维权，后来被劝回。", "past"),
        ("去年我们曾集体上访过一次。", "past"),
        ("当时大家拉过横幅。", "past"),
        ("他们说如果再拖，就要去跳楼。", "plan"),
        ("大家拉横幅的事谁都知道。", "open"),
        ("我们不想越级上访，只希望县里重视。", "denied"),  # disowned by the writer
        ("我们从来没有想过要去北京上访。", "denied"),
        ("那伙人扬言，再敢举报就砍死你们全家。", "denied"),  # a threat against the writer
        ("老板放话说谁再闹就砍死他。", "denied"),
        ("他们威胁我们，我们就只能去省政府上访。", "plan"),  # the sign's own clause is the writer's
        ("不会让步也不想越级上访", "denied"),  # the negation nearest the sign decides
        ("我们不会就此罢休，下周就去北京上访。", "plan"),
        ("这样下去会不会引发群体性事件？", "open"),
    ],
)
def test_high_cue_frames(text, frame):
    from triage.cues import high_cue_frames

    frames = high_cue_frames(text)
    assert frames, text
    assert frames[0][1] == frame, (text, frames)


@pytest.mark.parametrize(
    "text",
    [
        "我们不会再忍了明天就去北京上访",  # a negation undone by resolve (了, 就, 明天 …)
        "我们不想再等了要去北京上访",
        "实在不想再拖了直接进京上访",
        "不会罢休要去北京上访",
        "如果不解决，我们绝不会善罢甘休集体上访",
        "我们不怕威胁，一定要进京上访",  # the writer threatened, not threatening
        "我们受到威胁要去北京上访",
        "我们被他们威胁后准备集体上访",
        "公司老板威胁工人如果讨薪就开除，工人们明天准备集体上访",  # the sign's clause has its own subject
        "我不想活了要跳楼",
    ],
)
def test_live_signs_are_not_taken_for_denials(text):
    from triage.cues import high_cue_frames

    frames = [f for _, f in high_cue_frames(text)]
    assert frames and "denied" not in frames, (text, frames)


def test_disowned_sign_is_neither_a_reason_nor_a_live_sign():
    classes = ["中", "低", "高"]
    row = np.array([0.35, 0.05, 0.60])
    denied = assess(row, classes, "我们不想越级上访，也不想把事情闹大，只希望县里重视。")
    live = assess(row, classes, "再不解决，我们就越级上访。")
    assert denied.reasons == () and denied.level == "中"
    assert live.reasons == ("越级进京",) and live.level == "高"
    both = assess(row, classes, "我们不想越级上访。但明天大家就去县政府门口静坐。")
    assert both.reasons == ("集体行动",) and both.level == "高"


def test_sign_told_as_history_needs_a_sure_model():
    # a collective visit told as history is not an explicit live sign (label rule: at most 中)
    classes = ["中", "低", "高"]
    row = np.array([0.35, 0.05, 0.60])
    past = assess(row, classes, "去年我们曾集体上访过一次，问题至今没有解决。")
    live = assess(row, classes, "如果再不解决，我们就集体上访。")
    assert "集体行动" in past.reasons and "集体行动" in live.reasons
    assert past.level == "中" and live.level == "高"


def test_assess_many_is_assess_letter_by_letter():
    from triage.risk import assess_many

    texts = [
        "请求解决拖欠工资问题",
        "再不解决我们就去北京上访",
        "去年我们曾经集体上访过一次",
        "我们不想越级上访，只求尽快处理",
        "全村五十多户的土地补偿款被截留",
        "",
    ]
    rng = np.random.default_rng(3)
    for classes in (["中", "低", "高"], ["低", "中"]):
        proba = rng.dirichlet(np.ones(len(classes)), size=len(texts))
        people = [1, 1, 1, 8, 50, 6]
        recurrence = [1, 2, 1, 1, 3, 1]
        channels = ["来信", "网上", "来访", "来访", "来信", "来访"]
        for custom in (None, {"high": 0.3, "high_without_cue": 0.4, "medium": 0.2}):
            many = assess_many(proba, classes, texts, people, recurrence, channels, custom)
            one = [
                assess(proba[i], classes, texts[i], num_people=people[i], recurrence=recurrence[i], channel=channels[i], thresholds=custom)
                for i in range(len(texts))
            ]
            assert many == one
            # each letter's own score, reasons and level, not its neighbour's
            for i, a in enumerate(many):
                assert a.score == round(float(risk_score(proba[i : i + 1], classes)[0]), 4)
                assert a.reasons == reasons_for(texts[i], people[i], recurrence[i], channels[i])
    with pytest.raises(ValueError):
        assess_many(np.array([[0.5, 0.5]]), ["低", "中"], ["x"], [1], [1], [""], {"high": 2})
