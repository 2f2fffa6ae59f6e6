"""Pure text functions shared by every backend: normalisation and personal-data masking.

``normalize_text`` makes exports from different systems look alike (NFKC full-width to
half-width, HTML and Excel residue, whitespace, runs of punctuation).  ``mask_pii`` hides
resident ID numbers (checksum-validated), mobile and landline numbers, bank cards (Luhn)
and e-mail addresses; it is applied by default to everything written out or logged.
"""

from __future__ import annotations

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


def id_number_checksum_ok(s: str) -> bool:
    """GB 11643-1999 check digit of an 18-character resident ID number."""
    s = s.upper()
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != s[17]:
        return False
    month, day = int(s[10:12]), int(s[12:14])
    return 1 <= month <= 12 and 1 <= day <= 31


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


_NOT_DIGIT_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_DIGIT_AFTER = r"(?![0-9A-Za-z])"
_ID_RE = re.compile(_NOT_DIGIT_BEFORE + r"(\d{17}[\dXx])" + _NOT_DIGIT_AFTER)
_CARD_RE = re.compile(_NOT_DIGIT_BEFORE + r"((?:\d[ -]?){15,18}\d)" + _NOT_DIGIT_AFTER)
_MOBILE_RE = re.compile(_NOT_DIGIT_BEFORE + r"((?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4})" + _NOT_DIGIT_AFTER)
_LANDLINE_RE = re.compile(_NOT_DIGIT_BEFORE + r"((?:\(?0\d{2,3}\)?[- ]?)\d{7,8})" + _NOT_DIGIT_AFTER)
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Every number pattern above needs at least seven digits, at most one "-" or " " between two of
# them (a landline's 7-8 digits, a mobile's 3-4-4 groups, a card's, an ID's 18); a text with no
# such run and no "@" has nothing to mask, which is most letters: one scan instead of five.
_MAY_HOLD_NUMBER = re.compile(r"\d(?:[- ]?\d){6}")


def _mask_id(m: re.Match) -> str:
    s = m.group(1)
    if not id_number_checksum_ok(s):
        return s
    return s[:4] + "*" * 12 + s[-2:]


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
    """Mask resident IDs (valid checksum only), bank cards (Luhn), mobiles, landlines, e-mails."""
    if text is None:
        return ""
    s = str(text)
    if not s:
        return s
    if "@" not in s and not _MAY_HOLD_NUMBER.search(s):
        return s
    s = _EMAIL_RE.sub(_mask_email, s)
    s = _ID_RE.sub(_mask_id, s)
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


def mask_address(address: object) -> str:
    """Keep the place down to the township/village level, hide house numbers."""
    s = "" if address is None else str(address).strip()
    return re.sub(r"\d+\s*(号|栋|单元|室|幢|组|号楼)", lambda m: "*" + m.group(1), s)


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
