import pytest

from triage.normalize import (
    id_number_checksum_ok,
    is_id_number_or_mobile,
    luhn_ok,
    mask_address,
    mask_field,
    mask_pii,
    normalize_text,
    old_id_number_plausible,
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
    """mask_pii without its prefilter: all six patterns, always."""
    from triage import normalize as n

    s = n._EMAIL_RE.sub(n._mask_email, s)
    s = n._ID_RE.sub(n._mask_id, s)
    s = n._OLD_ID_RE.sub(n._mask_old_id, s)
    s = n._CARD_RE.sub(n._mask_card, s)
    s = n._MOBILE_RE.sub(n._mask_mobile, s)
    return n._LANDLINE_RE.sub(n._mask_landline, s)


def test_mask_pii_prefilter_never_changes_the_result():
    import random

    rng = random.Random(20261127)
    alphabet = "0123456789０１２３４５６７８９ -@()+.xX信访a"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(20000)]
    texts += ["电话138 1234 5678", "卡号6222-0212-3456-7890-128", "座机(0731)8888123", "a@b.cn", "110105 900307 123"]
    changed = 0
    for t in texts:
        assert mask_pii(t) == _mask_pii_every_pattern(t), t
        changed += mask_pii(t) != t
    assert changed > 50  # the fuzz really exercises masking, not only the early exit


PHONE = "13800138000"
ID18 = _make_id("11010519900307123")


@pytest.mark.parametrize(
    "raw, hidden, shown",
    [
        (f"ID{ID18}", ID18, "ID" + ID18[:4] + "*" * 12 + ID18[-2:]),
        (f"tel{PHONE}", PHONE, "tel138****8000"),
        (f"wechat{PHONE}，", PHONE, "wechat138****8000，"),
        (f"微信号wx{PHONE}", PHONE, "wx138****8000"),
        # and right before one
        (f"{PHONE}x", PHONE, "138****8000x"),
        (f"手机{PHONE}abc转", PHONE, "138****8000abc"),
        (f"{ID18}abc", ID18, ID18[:4] + "*" * 12 + ID18[-2:] + "abc"),
        (f"{PHONE}号", PHONE, "138****8000号"),
    ],
)
def test_id_and_mobile_touching_an_ascii_letter_are_masked(raw, hidden, shown):
    masked = mask_pii(raw)
    assert hidden not in masked and shown in masked


@pytest.mark.parametrize(
    "raw",
    [
        "订单号NO2026112600001已签收",  # 13 digits after letters: neither a mobile nor an ID
        f"流水号2{PHONE}",  # a 12-digit run holding a mobile's digits is not a mobile
        f"流水号{PHONE}2",
        f"编号A{PHONE}9B",
        "编号ID123456789012345678",  # 18 digits after letters, wrong check digit
        "件号X202611260000001",  # 15 digits after a letter: no check digit, left alone
    ],
)
def test_letters_around_digits_do_not_make_other_numbers_pii(raw):
    assert mask_pii(raw) == raw


def test_full_width_mobile_and_id_are_masked_in_place():
    fw = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    phone, id18, id_x = PHONE.translate(fw), ID18.translate(fw), VALID_ID_X.translate(fw)
    for raw, hidden in (
        (f"电话{phone}联系", phone),
        (f"身份证{id18}。", id18),
        (f"身份证{id_x}", id_x),
        (f"tel{phone}", phone),
    ):
        masked = mask_pii(raw)
        assert hidden not in masked and "*" in masked, raw
        assert len(masked) == len(raw)  # in place: nothing around it moves
    assert mask_pii(f"电话{phone}联系") == "电话１３８****８０００联系"
    assert mask_pii(f"身份证{id18}。") == "身份证" + id18[:4] + "*" * 12 + id18[-2:] + "。"
    assert id_number_checksum_ok(id18) and not id_number_checksum_ok(id18[:17] + "Ｘ")
    # full-width digits that are not PII stay as they are
    assert mask_pii("２０２６年１１月２６日来信，金额３５０００元") == "２０２６年１１月２６日来信，金额３５０００元"
    # a full-width digit is a digit: a 16-digit run is not a 15-digit old ID followed by a letter
    assert mask_pii("卡号４１１１１１１１１１１１１１１１") == "卡号４１１１********１１１１"


@pytest.mark.parametrize("sep", [" ", "-"])
def test_id_grouped_6_8_4_is_masked_with_its_separators(sep):
    grouped = sep.join((ID18[:6], ID18[6:14], ID18[14:]))
    masked = mask_pii(f"身份证号 {grouped} 请核实")
    assert masked == f"身份证号 {ID18[:4]}**{sep}********{sep}**{ID18[-2:]} 请核实"
    bad = ID18[:17] + ("1" if ID18[17] == "0" else "0")  # wrong check digit
    bad_grouped = sep.join((bad[:6], bad[6:14], bad[14:]))
    assert not id_number_checksum_ok(bad)
    if not luhn_ok(bad):  # (a Luhn-valid one would be masked as a card, rightly)
        assert mask_pii(f"编号 {bad_grouped} 号") == f"编号 {bad_grouped} 号"


def test_old_15_digit_id():
    assert old_id_number_plausible("110105900307123")
    assert old_id_number_plausible("１１０１０５９００３０７１２３")
    assert old_id_number_plausible("440301960229123")  # 1996 was a leap year
    for implausible in (
        "440301970229123",  # 29 February 1997
        "110105901307123",  # month 13
        "110105900300123",  # day 0
        "202611260000001",  # a date-stamped serial number: no province 20
        "991005900307123",  # no province 99
        "110005900307123",  # city code 00
        "11010590030712",  # 14 digits
    ):
        assert not old_id_number_plausible(implausible), implausible
    assert mask_pii("身份证110105900307123，") == "身份证1101*********23，"
    assert mask_pii("老身份证 110105-900307-123") == "老身份证 1101**-******-*23"
    for left in ("订单202611260000001", "单号110105901307123。", "编号1101059003071234"):  # last: 16 digits
        assert mask_pii(left) == left


def test_mask_address_masks_pii_written_into_the_address():
    raw = f"城关镇 身份证{ID18} 手机{PHONE}"
    for masked in (mask_address(raw), mask_field("address", raw)):
        assert ID18 not in masked and PHONE not in masked
        assert masked.startswith("城关镇 身份证" + ID18[:4]) and "138****8000" in masked
    masked = mask_address(f"青川县城关镇人民路12号 电话{PHONE}")
    assert masked == "青川县城关镇人民路*号 电话138****8000"
    assert mask_address("柳川县城关镇幸福村3组") == "柳川县城关镇幸福村*组"


def test_fast_patterns_find_what_the_plain_patterns_find():
    """The number patterns begin with their first character's class and look behind it (so re
    skips to candidates in C); they must find the very spans of the plain patterns that state
    the boundaries with a leading lookbehind."""
    import random
    import re

    from triage import normalize as n

    plain = {
        n._ID_RE: r"(?<!\d)(\d{6}[- ]?\d{8}[- ]?\d{3}[\dXxＸｘ])(?!\d)",
        n._OLD_ID_RE: r"(?<![\dA-Za-z])(\d{6}[- ]?\d{6}[- ]?\d{3})(?![\dA-Za-z])",
        n._CARD_RE: r"(?<![\dA-Za-z])((?:\d[ -]?){15,18}\d)(?![\dA-Za-z])",
        n._MOBILE_RE: r"(?<!\d)((?:[+＋]?[8８][6６][- ]?)?[1１][3-9３-９]\d[- ]?\d{4}[- ]?\d{4})(?!\d)",
        n._LANDLINE_RE: r"(?<![\dA-Za-z])((?:\(?[0０]\d{2,3}\)?[- ]?)\d{7,8})(?![\dA-Za-z])",
    }
    rng = random.Random(27)
    alphabet = "0123456789" * 3 + "０１３６８ -+＋()xXa信\n"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(8000)]
    for fast, pattern in plain.items():
        ref, found = re.compile(pattern), 0
        for t in texts:
            spans = [m.span(1) for m in fast.finditer(t)]
            assert spans == [m.span(1) for m in ref.finditer(t)], (pattern, t)
            found += len(spans)
        assert found > 20, pattern  # the fuzz reaches every pattern


@pytest.mark.parametrize(
    "raw, hidden",
    [
        ("１３８－１２３４－５６７８", "１２３４"),  # full-width hyphens (U+FF0D), as a Chinese IME types them
        ("电话138－1234－5678", "1234"),
        ("电话138\u30001234\u30005678", "1234"),  # ideographic spaces
        ("座机０５７１－８８８８６６６６", "８８８８"),
    ],
)
def test_numbers_with_full_width_separators_are_masked(raw, hidden):
    masked = mask_pii(raw)
    assert hidden not in masked and "*" in masked


@pytest.mark.parametrize(
    "value, expected",
    [
        (PHONE, True),
        ("１３８００１３８０００", True),
        ("+86 138-0013-8000", True),
        (f" {ID18} ", True),
        ("110105-19900307-1239", True),
        ("2026112700000002", False),  # a serial that passes the card (Luhn) check is not personal
        (f"ab{PHONE}cd", False),  # a code holding a mobile's digits, not a mobile
        (ID18[:-1] + ("0" if ID18[-1] != "0" else "1"), False),  # wrong check digit
        ("1380013800", False),
    ],
)
def test_is_id_number_or_mobile_takes_the_whole_value(value, expected):
    assert is_id_number_or_mobile(value) is expected
