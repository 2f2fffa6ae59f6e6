"""Pure text functions shared by every backend: normalisation and personal-data masking.

``normalize_text`` makes exports from different systems look alike (NFKC full-width to
half-width, HTML and Excel residue, whitespace, runs of punctuation).  ``mask_pii`` hides
resident ID numbers (18-digit checksum-validated, also grouped 6-8-4 by spaces or hyphens;
old 15-digit ones with a plausible area code and birth date), mobile and landline numbers,
bank cards (Luhn) and e-mail addresses, in ASCII or full-width digits; it is applied by
default to everything written out or logged.
"""

from __future__ import annotations

import calendar
import html
import re
import unicodedata

# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------

_EXCEL_RESIDUE = re.compile(r"_x000[dDaA9]_")
_TAG = re.compile(r"<\s*/?\s*(?:br|p|div|span|font|b|i|u|strong|em|img|a|table|tr|td|li|ul|ol|h\d)\b[^>]*>", re.I)
_ENTITY_LIKE = re.compile(r"&(?:nbsp|amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);?")
_SPACES = re.compile(r"[ \t\u00a0\u3000\u200b\ufeff]+")
_NEWLINES = re.compile(r"\s*\n\s*")
_PUNCT_RUN = re.compile(r"([!?。,，、;；:：.~～…\-—])\1{2,}")
_MIXED_PUNCT_RUN = re.compile(r"[!?！？]{3,}")


def normalize_text(text: object) -> str:
    """NFKC, strip HTML/Excel residue, collapse whitespace and punctuation runs.

    Keeps newlines (paragraphs help a reader) but never more than one in a row.
    """
    if text is None:
        return ""
    s = str(text)
    if not s:
        return ""
    s = _EXCEL_RESIDUE.sub("\n", s)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _TAG.sub("\n", s)
    # unescape twice: exports sometimes double-escape (&amp;nbsp;)
    for _ in range(2):
        if "&" not in s:
            break
        s = _ENTITY_LIKE.sub(lambda m: html.unescape(m.group(0) if m.group(0).endswith(";") else m.group(0) + ";"), s)
    s = unicodedata.normalize("NFKC", s)
    if not s.replace("\n", "").replace("\t", "").isprintable():  # printable: no control/format (C*) character
        s = "".join(ch for ch in s if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    s = _SPACES.sub(" ", s)
    s = _NEWLINES.sub("\n", s)
    s = _PUNCT_RUN.sub(r"\1\1\1", s)
    s = _MIXED_PUNCT_RUN.sub(lambda m: m.group(0)[:3], s)
    return s.strip()


# --------------------------------------------------------------------------------------
# Personal data
# --------------------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


# Full-width digits and X (as typed with a Chinese IME) to ASCII, one character for one.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789Xx")


def id_number_checksum_ok(s: str) -> bool:
    """GB 11643-1999 check digit of an 18-character resident ID number (ASCII or full-width)."""
    s = s.translate(_FULL_WIDTH).upper()
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != s[17]:
        return False
    month, day = int(s[10:12]), int(s[12:14])
    return 1 <= month <= 12 and 1 <= day <= 31


# First two digits of the area code (province level) on mainland resident ID numbers.
_PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65".split()
)


def old_id_number_plausible(s: str) -> bool:
    """An old 15-digit resident ID number (6-digit area code, yymmdd birth date in the 1900s,
    3-digit sequence): it has no check digit, so the area code's province and the date must be
    real.  About 1 in 90 random 15-digit numbers passes; a date or timestamp such as
    202611260000001 does not (there is no province 20)."""
    s = s.translate(_FULL_WIDTH)
    if len(s) != 15 or not s.isascii() or not s.isdigit() or s[:2] not in _PROVINCE_CODES or s[2:4] == "00":
        return False
    year, month, day = 1900 + int(s[6:8]), int(s[8:10]), int(s[10:12])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Number boundaries.  ``\d`` matches full-width digits too (Python's re is Unicode-aware), so
# only the literal digits in the patterns name both forms: [1１], [3-9３-９], [0０], [8８][6６].
# ID numbers (checksum) and mobiles (1[3-9] and exactly 11 digits) may touch an ASCII letter on
# either side (ID110105…, tel138…, 138…x): only a digit is a boundary, so a longer digit run is
# not a mobile.  Cards (Luhn alone passes one random number in ten), landlines and old 15-digit
# IDs (no check digit) still need a non-alphanumeric neighbour: 订单NO2026112600001 stays.
_NOT_ALNUM_AFTER = r"(?![\dA-Za-z])"
# A separator inside a number: "-" or " ", ASCII or full-width (as a Chinese IME types them).
_SEPARATORS = "- \uff0d\u3000"
_SEP = f"[{_SEPARATORS}]"
_DROP_SEPARATORS = str.maketrans("", "", _SEPARATORS)
# Each pattern starts with the character class of its first character and checks the boundary
# before it with a lookbehind over that character, ``\d(?<!\d\d)``: re then skips to candidate
# characters in C instead of trying every position (a leading lookbehind hides the class).
_ID_RE = re.compile(rf"(\d(?<!\d\d)\d{{5}}{_SEP}?\d{{8}}{_SEP}?\d{{3}}[\dXxＸｘ])(?!\d)")
_OLD_ID_RE = re.compile(rf"(\d(?<![\dA-Za-z]\d)\d{{5}}{_SEP}?\d{{6}}{_SEP}?\d{{3}})" + _NOT_ALNUM_AFTER)
_CARD_RE = re.compile(rf"(\d(?<![\dA-Za-z]\d)(?:{_SEP}?\d){{15,18}})" + _NOT_ALNUM_AFTER)
# [+＋]86, 86 or the 1 of the number itself, not after a digit
_MOBILE_RE = re.compile(
    rf"([+＋8８1１](?<!\d.)(?:(?<=[+＋])[8８][6６]{_SEP}?[1１]|(?<=[8８])[6６]{_SEP}?[1１]|(?<=[1１]))"
    rf"[3-9３-９]\d{_SEP}?\d{{4}}{_SEP}?\d{{4}})(?!\d)"
)
_LANDLINE_RE = re.compile(rf"([(0０](?<![\dA-Za-z].)(?:(?<=\()[0０]|(?<=[0０]))\d{{2,3}}\)?{_SEP}?\d{{7,8}})" + _NOT_ALNUM_AFTER)
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Every number pattern above needs at least seven digits (ASCII or full-width), at most one "-"
# or " " between two of them (a landline's 7-8 digits, a mobile's 3-4-4 groups, a card's, an
# ID's 6-8-4 or 6-6-3); a text with no such run and no "@" has nothing to mask, which is most
# letters: one scan instead of six.
_MAY_HOLD_NUMBER = re.compile(rf"\d(?:{_SEP}?\d){{6}}")


def _hide_middle(raw: str, head: int, tail: int) -> str:
    """Star every character of ``raw`` but the first ``head`` and last ``tail`` non-separators;
    separators (``_SEPARATORS``) stay where they are, so the length is the input's."""
    n = len(raw.translate(_DROP_SEPARATORS))
    out, i = [], 0
    for c in raw:
        if c in _SEPARATORS:
            out.append(c)
            continue
        out.append(c if i < head or i >= n - tail else "*")
        i += 1
    return "".join(out)


def _mask_id(m: re.Match) -> str:
    s = m.group(1)
    return _hide_middle(s, 4, 2) if id_number_checksum_ok(s.translate(_DROP_SEPARATORS)) else s


def is_id_number_or_mobile(s: str) -> bool:
    """``s``, as a whole (outer whitespace aside), is a resident ID number with a valid check
    digit or a mobile number, the numbers :func:`mask_pii` finds (separators and full-width
    digits allowed): personal data used where an identifier was expected."""
    s = s.strip()
    return id_number_checksum_ok(s.translate(_DROP_SEPARATORS)) or _MOBILE_RE.fullmatch(s) is not None


def _mask_old_id(m: re.Match) -> str:
    s = m.group(1)
    return _hide_middle(s, 4, 2) if old_id_number_plausible(s.translate(_DROP_SEPARATORS)) else s


def _mask_card(m: re.Match) -> str:
    raw = m.group(1)
    digits = re.sub(r"\D", "", raw)
    if not (16 <= len(digits) <= 19) or not luhn_ok(digits):
        return raw
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def _mask_mobile(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group(1))[-11:]
    return digits[:3] + "****" + digits[-4:]


def _mask_landline(m: re.Match) -> str:
    raw = m.group(1)
    digits = re.sub(r"\D", "", raw)
    return digits[:4] + "-" + "*" * (len(digits) - 6) + digits[-2:] if len(digits) > 8 else "*" * (len(digits) - 2) + digits[-2:]


def _mask_email(m: re.Match) -> str:
    user = m.group(1)
    return (user[:1] or "*") + "***@" + m.group(2)


def mask_pii(text: object) -> str:
    """Mask resident IDs (valid checksum, or old 15-digit ones with a real area code and birth
    date), bank cards (Luhn), mobiles, landlines, e-mails.  Full-width digits are masked like
    ASCII ones, in place (a full-width mobile or ID keeps its length and its visible digits)."""
    if text is None:
        return ""
    s = str(text)
    if not s:
        return s
    if "@" not in s and not _MAY_HOLD_NUMBER.search(s):
        return s
    if "@" in s:
        s = _EMAIL_RE.sub(_mask_email, s)
    s = _ID_RE.sub(_mask_id, s)
    s = _OLD_ID_RE.sub(_mask_old_id, s)
    s = _CARD_RE.sub(_mask_card, s)
    s = _MOBILE_RE.sub(_mask_mobile, s)
    s = _LANDLINE_RE.sub(_mask_landline, s)
    return s


def mask_name(name: object) -> str:
    """张三丰 -> 张**: keep the surname only."""
    s = "" if name is None else str(name).strip()
    if not s:
        return s
    return s[0] + "*" * (len(s) - 1)


_HOUSE_NUMBER = re.compile(r"\d+\s*(号|栋|单元|室|幢|组|号楼)")


def mask_address(address: object) -> str:
    """Keep the place down to the township/village level, hide house numbers, and mask any ID
    number, phone, card or e-mail written into the address cell (``mask_pii``)."""
    s = mask_pii("" if address is None else str(address).strip())
    return _HOUSE_NUMBER.sub(lambda m: "*" + m.group(1), s)


def mask_field(name: str, value: object) -> str:
    """Mask one schema field's value for export: IDs and phones entirely, names, addresses."""
    if value is None:
        return ""
    s = str(value)
    if not s:
        return s
    if name == "id_number":
        s = s.strip()
        return s[:4] + "*" * max(len(s) - 6, 0) + s[-2:] if len(s) > 6 else "*" * len(s)
    if name == "phone":
        digits = re.sub(r"\D", "", s)
        return digits[:3] + "*" * max(len(digits) - 7, 0) + digits[-4:] if len(digits) > 7 else "*" * len(digits)
    if name == "petitioner":
        return mask_name(s)
    if name == "address":
        return mask_address(s)
    return mask_pii(s)
