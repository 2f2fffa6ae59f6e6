"""Explicit cue lexicons: escalation-risk signs and legal-procedure signs, with spans.

The statistical heads see these cues as extra features (so a cue the synthetic corpus phrases
one way still counts when a real letter phrases it another), and the risk head reports the
reasons it found.  Each cue is a regular expression with its own false-hit guards: 跳楼机 is a
fairground ride, 集体土地 is not a collective visit, 进京看病 is not 进京访.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# --------------------------------------------------------------------------------------
# Escalation-risk cues, one pattern list per reason (schema.RISK_REASONS)
# --------------------------------------------------------------------------------------

_NUM = r"[0-9一二两三四五六七八九十百几数上近多]"

RISK_CUES: dict[str, tuple[str, ...]] = {
    "越级进京": (
        r"(?:进京|赴京|上京)(?!务工|打工|看病|就医|治疗|求学|读书|参加|旅游|探亲)",
        r"(?:去|到|跑|上)北京(?:去)?(?:上访|信访|反映|告状|讨说法|找)",
        r"国家信访局|中央巡视组",
        r"(?:去|到|赴|前往)[^，。；]{0,8}省(?:政府|委|信访局)",
        r"上访(?:到)?(?:省|市)(?:政府|委|里)",
        r"(?:去|到|跑|上)(?:省里|省城|省政府|省信访|省委|市里|市政府|市委|市信访)(?:去)?(?:上访|信访|反映|告|讨说法|找领导|闹)",
        r"越级(?:上访|信访|反映)?",
        r"(?:一直|继续|再)(?:往上|向上)(?:告|访|反映)",
        r"(?:省|市)长信箱.{0,6}(?:还|再|继续)",
        r"(?:跪|坐|守|睡)在[^，。；]{0,6}(?:省|市)(?:政府|委|信访局)(?:的)?(?:大)?门口",
        r"(?:到|去|上|赴)(?:省里|省城|省政府|省委|北京|首都|中央)(?:去)?(?:讨(?:个)?说法|讨(?:个)?公道|维权|喊冤)",
        r"(?:向|到|去)(?:中央|国务院|国家信访局|国家有关部门)(?:去)?(?:反映|上访|申诉|讨说法)",
    ),
    "集体行动": (
        r"集体(?:上访|信访|访|请愿|去|到|讨薪|维权|静坐)",
        r"联名上访",
        r"(?:组织|召集|带领|发动|叫上|约上|一起)[^，。；]{0,10}(?:村民|业主|工友|工人|农民工|乡亲|家长|老人|群众|大家)[^，。；]{0,10}(?:去|到|围|堵|上访|讨)[^，。；]{0,6}(?:政府|县委|信访|镇里|乡里|市里|省里|北京|门口|广场|大门|公司|工地|上访|说法|讨薪)",
        r"(?<![全都])堵(?:路|门)(?![口上])|堵住(?:大门|路口|政府|公司|工地)|围堵(?:政府|大门|领导|工地|公司)|拦(?:路|车)(?!杆)|拉(?:起)?横幅|打横幅|举牌|静坐|聚集(?:在|到)[^，。；]{0,6}(?:政府|门口|广场|信访)",
        r"(?:几十|上百|数十|数百|一百多|几百)(?:人|名|号人)[^，。；]{0,8}(?:去|到|围|堵|聚)",
        r"群体(?:性)?(?:上访|事件)|上街|游行|示威|聚集[^，。；]{0,10}(?:政府|门口|广场|信访)",
        r"集体维权|(?:组织|发动|号召|召集)[^，。；]{0,10}(?:维权|讨说法)|(?:维权|讨薪)(?:活动|行动)|上门(?:维权|讨薪|讨说法)",
        r"拉(?:起|过|了|着)?横[幅副]|挂(?:起|过|了)?横幅|在[^，。；]{0,8}(?:政府|县委|门口)(?:坐|跪|睡)了|(?:到|去|在)[^，。；]{0,10}(?:门口|现场|售楼部|售楼处|项目部|政府|大门)[^，。；]{0,4}(?:维权|讨薪|讨说法|聚集)",
        r"(?:引发|引起|酿成|导致)[^，,。；]{0,6}(?:冲突|骚乱)",
    ),
    "极端言行": (
        r"跳楼(?!机)|跳河|跳江|卧轨|自焚|喝农药|服毒|吃药自杀|自杀|轻生|上吊|割腕",
        r"极端(?:行为|行动|手段|事件|的事)|被逼(?:无奈)?(?:做出|采取)|以命相搏|豁出去",
        r"同归于尽|以死相逼|以死明志|拼(?:了)?(?:这条)?(?:老)?命|鱼死网破|死给(?:你们|他们)看|不想活|活不下去|死路一条|一死了之",
        r"(?:炸|烧)(?:了|掉)?(?:他|你|政府|公司|厂|房)|(?:砍|杀)(?:了|死)(?:他|他们|你)",
        r"(?:如果|若|要是|再)[^。！!]{0,20}(?:不|没)(?:解决|处理|答复|给说法)[^。！!]{0,20}(?:后果自负|采取极端|不择手段|采取行动|什么事都做得出)",
        r"(?:被逼|逼得?)[^，。；]{0,8}(?:做出|采取|走)[^，。；]{0,6}(?:极端|过激|绝路)|过激(?:行为|行动|的事|手段)",
        r"(?:誓死|拼死|以死)(?:捍卫|维护|抗争|保卫|维权)|(?:不惜|豁出)(?:一切|性命|这条命)",
        r"(?:采取|走)[^，。；]{0,8}(?:一切|非常|激烈|极端)(?:的)?(?:措施|行动|手段|方式)",
    ),
    "重复长期": (
        r"(?:多次|反复|屡次|一再|数次|几次|无数次|三番五次)(?:向|到|去|找|给)?[^，。；]{0,12}(?:反映|上访|投诉|来信|来访|打电话|信访|举报|求助|维权)",
        r"(?:多|几|好几|十几|" + _NUM + r"{1,3})年(?:了|来|多|以来)?[^，。；]{0,10}(?:未|没|不)(?:有)?(?:得到)?(?:解决|处理|落实|答复|兑现|给)",
        r"至今(?:仍)?(?:未|没有?|不)(?:解决|处理|答复|落实|到位)|石沉大海|踢皮球|互相推诿|推来推去|投诉无门|求助无门|维权无门|(?:苦于|求告)无门|一直(?:没|无)人(?:管|理|处理)",
        r"第(?:[二三四五六七八九十]|[2-9]|1[0-9])次(?:来信|来访|上访|反映|投诉|写信)",
        r"(?:12345|市长热线|热线)[^，。；]{0,6}(?:打了|反映了)[^，。；]{0,6}(?:多次|好几次|无数次|" + _NUM + r"+次)",
    ),
    "群体利益": (
        r"(?:[1-9][0-9]{1,3}|[两二三四五六七八九]十|[一二两三四五六七八九]百|几十|数十|上百|数百|几百|近百|百余|十几)多?(?:户|名|位|个|家)(?:村民|业主|农民工|工人|群众|家庭|居民|职工|学生|家长|老人|住户|人)?",
        r"全村(?:人|村民|老少|群众)?|全组|全体(?:村民|业主|职工|工人|住户)|整个(?:小区|村|组)",
        r"联名(?:信|签字|反映|举报)",
        r"(?:农民工|业主|村民|工友|家长)们",
    ),
    "媒体曝光": (
        r"(?:找|联系|向|让|请|发给)(?:媒体|记者|电视台|报社|新闻)|(?:媒体|网络|网上)曝光|曝光(?:到|给|出去)?|发(?:到)?(?:抖音|快手|微博|朋友圈|头条|网上)|上(?:热搜|新闻|电视)",
    ),
    "情绪激烈": (
        r"忍无可忍|走投无路|逼(?:上|到)绝路|走上绝路|想死的心(?:都)?有|生不如死|欺人太甚|天理何在|天理难容|无法无天|官官相护|哭诉无门|求求(?:你们|领导|政府)|绝望|愤怒|气愤至极|太欺负人|没有王法|不给活路",
    ),
}

#: Reasons that on their own make a letter high risk (GUIDE: explicit escalation or extreme threat).
HIGH_REASONS: frozenset[str] = frozenset({"越级进京", "集体行动", "极端言行"})

# --------------------------------------------------------------------------------------
# Legal-procedure cues, one pattern list per legal channel (schema.ROUTE_LABELS)
# --------------------------------------------------------------------------------------

LEGAL_CUES: dict[str, tuple[str, ...]] = {
    "执行": (
        r"申请(?:强制)?执行|(?:法院|法官|判决|裁定)[^，,。；]{0,10}(?:强制)?执行|执行(?:局|庭|法官|款|案|难|回来)|拒不(?:履行|执行)|终结本次执行|终本|失信被执行人|被执行人|限制高消费",
        r"(?:判决|裁定|调解书|判了|判决书|生效)[^。]{0,20}(?:不履行|未履行|没有履行|不执行|未执行|没执行|拒不|一分钱(?:都|也)?没|至今未(?:给|付|还))",
    ),
    "申诉再审": (
        r"申诉|再审|抗诉|错案|冤案|假案|改判|判决不公|裁判不公|枉法裁判|枉法|审判不公|二审|上诉|发回重审|不服(?:一审|二审|判决|裁定|法院)",
    ),
    "诉讼": (
        r"起诉|诉讼|立案庭|(?:法院|法庭)[^，。]{0,6}(?:立案|不予立案|开庭|审理|受理)|打官司|告到法院|向法院|法院判|民事(?:纠纷|判决|调解)|律师(?:函|代理)",
        r"借(?:款|钱)(?:纠纷|不还|给)|欠款不还|合同纠纷|离婚|抚养权|继承|遗产|赔偿纠纷|交通事故(?:赔偿|责任)",
    ),
    "仲裁": (
        r"(?:劳动|劳动人事|人事)?(?:争议)?仲裁(?:委|委员会|院|庭|裁决|申请|结果|书)?|劳动争议|裁决书",
    ),
    "行政复议诉讼": (
        r"行政复议|复议决定|申请复议|行政诉讼|行政(?:起诉|案件)|告(?:政府|县政府|局里)|撤销[^，。]{0,8}(?:处罚|决定)|行政处罚决定",
    ),
    "公安检察": (
        r"报(?:了)?案|立案侦查|不予立案|不立案|刑事(?:案件|立案|责任)?|诈骗|经侦|刑警|嫌疑人|取保候审|逮捕|撤案|检察院|检察机关|公诉|办案(?:民警|人员|不公|拖延)|案件(?:至今|久拖|一直)",
        r"派出所[^。]{0,12}(?:不管|不作为|不立案|拖|推|包庇|和稀泥)",
    ),
}

#: Mentions that point at a legal actor only in passing; counted separately so the model can weigh them.
PASSING_LEGAL = (
    r"(?:说|扬言|威胁|准备|打算|可能|要|想)(?:去)?(?:法院|起诉|告)",
    r"律师(?:说|讲|朋友|咨询)|咨询(?:了)?律师|法律援助",
    r"(?:法院|派出所|公安局|检察院)(?:旁边|附近|对面|门口的|隔壁)",
    r"(?:在|是)(?:法院|派出所|检察院)(?:工作|上班)",
)


@dataclass(frozen=True)
class CueHit:
    group: str  # a risk reason or a legal channel
    start: int
    end: int
    term: str


@lru_cache(maxsize=1)
def _compiled() -> dict[str, dict[str, "_Scanner"]]:
    def comp(d):
        return {k: _Scanner(re.compile("|".join(f"(?:{p})" for p in v))) for k, v in d.items()}

    return {
        "risk": comp(RISK_CUES),
        "legal": comp(LEGAL_CUES),
        "passing": {"passing": _Scanner(re.compile("|".join(f"(?:{p})" for p in PASSING_LEGAL)))},
    }


def find_cues(text: str, family: str) -> tuple[CueHit, ...]:
    """All cue hits of one family ('risk', 'legal' or 'passing') in ``text``, in text order.

    Cached: featurising, explaining and the risk reasons all ask for the same letter's cues.
    """
    return _find_cues(text or "", family)


@lru_cache(maxsize=8192)
def _find_cues(text: str, family: str) -> tuple[CueHit, ...]:
    hits = []
    for group, scanner in _compiled()[family].items():
        for m in scanner.finditer(text):
            hits.append(CueHit(group, m.start(), m.end(), m.group(0)))
    hits.sort(key=lambda h: (h.start, h.end))
    return tuple(hits)


class _Scanner:
    """``pattern.finditer`` for a pattern that cannot match the empty string, about three
    times faster: Python's ``re`` tries a long alternation at every position of a letter, so the
    positions where a match could start (the pattern's possible first characters, worked out
    from its parse tree) are found with one character class, and the pattern is tried only
    there.  Same matches, in the same order (tested); a pattern whose first characters cannot
    be bounded, or that can match empty, is scanned the plain way.  Empty matches are dropped.
    """

    def __init__(self, pattern: re.Pattern):
        self.pattern = pattern
        self.starts = _first_chars_class(pattern)

    def finditer(self, text: str) -> list[re.Match]:
        pat = self.pattern
        if self.starts is None:
            return [m for m in pat.finditer(text) if m.end() > m.start()]
        out, end, match = [], 0, pat.match
        for s in self.starts.finditer(text):
            p = s.start()
            if p < end:
                continue
            m = match(text, p)  # lookbehinds still see the text before p
            if m is not None:
                out.append(m)
                end = m.end()
        return out


def _first_chars_class(pattern: re.Pattern) -> re.Pattern | None:
    """A one-character class of every character a match of ``pattern`` can start with, or
    None when that set is unbounded or the pattern can match the empty string."""
    try:
        import re._constants as c
        import re._parser as parser

        chars, can_be_empty = _first_chars(list(parser.parse(pattern.pattern, pattern.flags)), c)
    except Exception:  # noqa: BLE001 - a private module changed: scan the plain way
        return None
    if chars is None or can_be_empty or pattern.flags & re.IGNORECASE:
        return None
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(chars)) + "]")


def _first_chars(items: list, c) -> tuple[set[str] | None, bool]:
    """(possible first characters, whether the sequence can match empty) of parsed items."""
    out: set[str] = set()
    for op, av in items:
        if op is c.LITERAL:
            return out | {chr(av)}, False
        if op is c.IN:
            for o, a in av:
                if o is c.LITERAL:
                    out.add(chr(a))
                elif o is c.RANGE and a[1] - a[0] <= 5000:
                    out.update(map(chr, range(a[0], a[1] + 1)))
                else:  # a negated class, a category, a huge range
                    return None, False
            return out, False
        if op is c.SUBPATTERN:
            if av[1] & re.IGNORECASE:  # (?i:...) inside
                return None, False
            alternatives = [av[3]]
        elif op is c.BRANCH:
            alternatives = av[1]
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            alternatives = [av[2]] if av[0] >= 1 else [av[2], []]
        elif op in (c.ASSERT, c.ASSERT_NOT, c.AT):
            continue  # zero-width: the next item consumes the first character
        else:
            return None, False
        may_skip = False
        for alt in alternatives:
            chars, empty = _first_chars(list(alt), c)
            if chars is None:
                return None, False
            out |= chars
            may_skip |= empty
        if not may_skip:
            return out, False
    return out, True


def risk_groups() -> tuple[str, ...]:
    return tuple(RISK_CUES)


def legal_groups() -> tuple[str, ...]:
    return tuple(LEGAL_CUES)


# --------------------------------------------------------------------------------------
# Planned escalation: a high-risk sign stated as a plan, a condition or an act under way
# --------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"[^。！？!?；;\n,，]+")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+")
_PLAN = re.compile(
    r"准备|打算|计划|将要|将会|就要|要去|就去|就到|只能|只好|不得不|被迫|必将|马上|立即|明天|后天|下周|下个月|"
    r"如果|若是|倘若|若问题|要是|再不|否则|不然|逼(?:我|我们)|正准备|已经组织|已组织|联系好|约好|"
    r"(?:我们|大家|业主|村民|工友|全体|他们)[^，,。；]{0,6}(?:将|会|要)|之日就是|"
    # a warning of what will follow, and an act under way now
    r"担心[^，,。；]{0,10}会|(?:可能|极易|容易|势必|必然)(?:会)?(?:引发|引起|导致|造成|出现)|以(?:免|避免)|"
    r"今天|今日|目前|现在|正在|当前|眼下|此刻"
)
#: a clause that narrates a finished event: a date, an explicit past time word, or 曾/过 aspect
_PAST = re.compile(
    r"曾经|曾|去年|前年|上次|以前|当年|过去|之前|那次|那年|年前|当时|那天|此前|后来|"
    r"(?:19|20)\d{2}年|\d{1,2}月\d{1,2}[日号]|[一二三四五六七八九十]{1,3}月(?:份|初|中旬|底)|"
    r"(?:上访|维权|静坐|横幅|聚集|反映)过"
)

#: a sign the writer disowns (我们不想越级上访, 从没想过去北京) or one that another party threatens
#: (对方扬言要砍死你们): both are said right before the sign, in its own clause
_NEGATION = re.compile(
    r"(?<!会)不会|不想|不愿|不打算|无意|绝不|决不|并不想|并非要|不是要|没(?:有)?(?:打算|想过|想要)|从(?:来)?没(?:有)?想过"
)
#: words between a negation and the sign that turn it into resolve, not refusal (我们不会再忍了
#:明天就去北京上访, 绝不善罢甘休), or a second negation
_NEGATION_UNDONE = re.compile(r"忍|等|拖|罢休|甘休|退缩|放弃|妥协|让步|了|就|直接|一定|坚决|明天|马上|立即|准备|只能|不")
_THREAT_VERB = re.compile(r"扬言|威胁|恐吓|放话|叫嚣")
#: before a threat verb: the writer threatening, or being threatened (受到威胁, 被他们威胁, 不怕威胁)
_NOT_OTHERS = re.compile(r"(?:我们|我|被|受到|遭到|不怕|不顾|面对|无视|顶住|的)[^，,。；]{0,4}$")
#: a clause with its own subject: the sign belongs to it, not to a threat in the clause before
_SUBJECT = re.compile(r"我|大家|们|业主|村民|工友|全体|工人|职工|家长|群众|居民|乡亲|老百姓")
#: how far before a sign a disowning word may stand (characters, within the clause)
_DENIED_WINDOW = 12
_DENIED_GAP = 8


def _denied(lead: str, previous: str | None) -> bool:
    """Is the sign at the end of ``lead`` (its clause up to the sign) disowned by the writer or
    threatened by someone else?  ``previous`` is the clause before, in the same sentence."""
    window = lead[-_DENIED_WINDOW:]
    negations = list(_NEGATION.finditer(window))
    if negations:
        gap = window[negations[-1].end() :]
        if len(gap) <= _DENIED_GAP and not _NEGATION_UNDONE.search(gap):
            return True
    zone = lead if previous is None or _SUBJECT.search(lead) else previous + "，" + lead
    return any(not _NOT_OTHERS.search(zone[: m.start()]) for m in _THREAT_VERB.finditer(zone))


#: how a high-risk sign is told: as a plan, a condition or an act under way; as history;
#: disowned or threatened by someone else; or none of these
FRAME_PLAN, FRAME_PAST, FRAME_DENIED, FRAME_OPEN = "plan", "past", "denied", "open"


def _frame(clauses: list[re.Match], sentences: list[re.Match], start: int) -> str:
    """The clause (comma to comma) around a hit decides; failing that, the clause before it in
    the same sentence (如果……，我们将…… / 2019年5月，业主……).  A sign disowned or threatened by
    another party just before it, in its own clause, is :data:`FRAME_DENIED` whatever else the
    clause says."""
    k = next((i for i, m in enumerate(clauses) if m.start() <= start < m.end()), None)
    if k is None:
        return FRAME_OPEN
    clause = clauses[k].group(0)
    sentence = next((m for m in sentences if m.start() <= start < m.end()), None)
    same_sentence = k > 0 and sentence is not None and clauses[k - 1].start() >= sentence.start()
    lead = clause[: start - clauses[k].start()]
    if _denied(lead, clauses[k - 1].group(0) if same_sentence else None):
        return FRAME_DENIED
    if _PLAN.search(clause) and not _PAST.search(clause):
        return FRAME_PLAN
    if _PAST.search(clause):
        return FRAME_PAST
    if same_sentence:
        before = clauses[k - 1].group(0)
        if _PLAN.search(before) and not _PAST.search(before):
            return FRAME_PLAN
        if _PAST.search(before):
            return FRAME_PAST
    return FRAME_OPEN


@lru_cache(maxsize=8192)
def _high_cue_frames(text: str) -> tuple[tuple[CueHit, str], ...]:
    hits = [h for h in find_cues(text, "risk") if h.group in HIGH_REASONS]
    if not hits:
        return ()
    clauses, sentences = list(_CLAUSE.finditer(text)), list(_SENTENCE.finditer(text))  # once per letter
    return tuple((h, _frame(clauses, sentences, h.start)) for h in hits)


def high_cue_frames(text: str) -> tuple[tuple[CueHit, str], ...]:
    """Each high-risk cue hit (越级进京, 集体行动, 极端言行) with how it is told.

    The label rules (data/LABELS.md, after the public GUIDE) make a collective visit or a
    skip-level petition *told as history* a medium risk, and one *planned, threatened or under
    way* a high risk; the clause around each hit decides (:data:`FRAME_PLAN`,
    :data:`FRAME_PAST` or :data:`FRAME_OPEN` when the clause says neither).
    """
    return _high_cue_frames(text or "")


def planned_high_cues(text: str) -> tuple[CueHit, ...]:
    """High-risk cue hits stated as a plan, a condition or an act under way."""
    return tuple(h for h, f in high_cue_frames(text) if f == FRAME_PLAN)
