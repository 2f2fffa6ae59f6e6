import pytest

from triage.normalize import (
    id_number_checksum_ok,
    luhn_ok,
    mask_field,
    mask_pii,
    normalize_text,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ＡＢＣ１２３", "ABC123"),  # full width to half width
        ("你好&nbsp;世界", "你好 世界"),
        ("第一段_x000D_第二段", "第一段\n第二段"),
        ("一<br/>二<p>三</p>", "一\n二\n三"),
        ("&amp;nbsp;双重转义", "双重转义"),
        ("  多个   空格\t和\u3000全角空格 ", "多个 空格 和 全角空格"),
        ("太过分了！！！！！！", "太过分了!!!"),
        ("怎么办？？！？！？", "怎么办??!"),
        ("。。。。。。", "。。。"),
        ("\n\n\n段落\n\n\n段落\n", "段落\n段落"),
        ("零宽\u200b字符\ufeff", "零宽字符"),
        ("", ""),
        (None, ""),
        ("正常的一句话，不变。", "正常的一句话,不变。"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_control_characters_dropped_with_or_without_the_printable_fast_path():
    """normalize_text skips the per-character filter when the text is printable; the result
    must be what the filter gives on any text (control, format, private-use, surrogate,
    unassigned and separator characters mixed with CJK and ASCII)."""
    import random
    import unicodedata

    import triage.normalize as n

    def filtered(text):  # the filter applied unconditionally, as before the fast path
        s = n._EXCEL_RESIDUE.sub("\n", text).replace("\r\n", "\n").replace("\r", "\n")
        s = unicodedata.normalize("NFKC", n._TAG.sub("\n", s))
        s = "".join(ch for ch in s if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
        s = n._PUNCT_RUN.sub(r"\1\1\1", n._NEWLINES.sub("\n", n._SPACES.sub(" ", s)))
        return n._MIXED_PUNCT_RUN.sub(lambda m: m.group(0)[:3], s).strip()

    rng = random.Random(4)
    pool = "信访局abc 123\t\n\r\x00\x07\x1b\x7f\x85\xa0\xad\u200b\u200e\u2028\u2029\u3000\ufeff\ue000\U000f0000\u0378\ufff0"
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 20))) for _ in range(3000)]
    changed = 0
    for text in texts:
        assert normalize_text(text) == filtered(text), repr(text)
        changed += not text.replace("\n", "").replace("\t", "").isprintable()
    assert changed > 1000  # most of them needed the filter


def _make_id(body17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights)) % 11]


VALID_ID = _make_id("33010619850312123")
VALID_ID_X = "11010519491231002X"


def test_id_checksum():
    assert id_number_checksum_ok(VALID_ID)
    assert id_number_checksum_ok(VALID_ID_X)
    bad = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")
    assert not id_number_checksum_ok(bad)
    assert not id_number_checksum_ok("123456789012345678")  # random digits, wrong check digit
    assert not id_number_checksum_ok("1234")


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    "raw, must_not_contain, must_contain",
    [
        (f"我的身份证号{VALID_ID}，请核实", VALID_ID, VALID_ID[:4] + "*" * 12),
        (f"身份证{VALID_ID_X}", VALID_ID_X, "1101"),
        ("电话13812345678联系", "13812345678", "138****5678"),
        ("电话 +86 138-1234-5678", "1234-5678", "138****5678"),
        ("座机0571-88886666", "88886666", "0571-"),
        ("银行卡号4111111111111111被扣款", "4111111111111111", "4111********1111"),
        ("邮箱 zhangsan@example.com", "zhangsan@", "z***@example.com"),
    ],
)
def test_mask_pii_masks(raw, must_not_contain, must_contain):
    masked = mask_pii(raw)
    assert must_not_contain not in masked
    assert must_contain in masked


@pytest.mark.parametrize(
    "raw",
    [
        "订单号123456789012345678不是身份证",  # 18 digits, invalid checksum
        "卡号4111111111111112不过Luhn",  # 16 digits, fails Luhn (not a mobile either)
        "2026年11月26日来信，金额35000元",
    ],
)
def test_mask_pii_leaves_non_pii(raw):
    assert mask_pii(raw) == raw


def test_mask_field():
    assert mask_field("id_number", VALID_ID) == VALID_ID[:4] + "*" * 12 + VALID_ID[-2:]
    assert mask_field("phone", "13812345678") == "138****5678"
    assert mask_field("petitioner", "张三丰") == "张**"
    assert "12" not in mask_field("address", "青川县城关镇人民路12号")
    assert mask_field("phone", "") == ""


def _mask_pii_every_pattern(s: str) -> str:
    """mask_pii without its prefilter: all five patterns, always."""
    from triage import normalize as n

    s = n._EMAIL_RE.sub(n._mask_email, s)
    s = n._ID_RE.sub(n._mask_id, s)
    s = n._CARD_RE.sub(n._mask_card, s)
    s = n._MOBILE_RE.sub(n._mask_mobile, s)
    return n._LANDLINE_RE.sub(n._mask_landline, s)


def test_mask_pii_prefilter_never_changes_the_result():
    import random

    rng = random.Random(20261127)
    alphabet = "0123456789０１２３４５６７８９ -@()+.xX信访a"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(20000)]
    texts += ["电话138 1234 5678", "卡号6222-0212-3456-7890-128", "座机(0731)8888123", "a@b.cn"]
    changed = 0
    for t in texts:
        assert mask_pii(t) == _mask_pii_every_pattern(t), t
        changed += mask_pii(t) != t
    assert changed > 50  # the fuzz really exercises masking, not only the early exit
