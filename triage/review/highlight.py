"""Evidence highlighting: split a letter into plain segments, each tagged with the heads whose
evidence covers it.  Templates print every segment escaped; nothing here builds HTML.

Evidence is JSON ``{head: [[start, end, term], ...]}`` with character offsets into the
letter's text.  Offsets into the model's reading text (``schema.letter_text``: title + "。" +
body) are accepted too and shifted onto the body.  A span whose text does not match its term
is dropped rather than shown in the wrong place.

When the text must be masked (a clerk may not see personal data), each segment is masked
on its own; a highlight that would cut through a phone or ID number (so that masking the
pieces differs from masking the whole) is dropped, so masking always wins over highlighting.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

from triage import schema


def parse_evidence(raw: Any) -> dict[str, list[tuple[int, int, str | None]]]:
    """The evidence JSON as {head: [(start, end, term|None)]}; malformed parts are skipped."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[tuple[int, int, str | None]]] = {}
    for head, spans in raw.items():
        if not isinstance(spans, list):
            continue
        for sp in spans:
            if not isinstance(sp, (list, tuple)) or len(sp) < 2:
                continue
            try:
                start, end = int(sp[0]), int(sp[1])
            except (TypeError, ValueError):
                continue
            term = str(sp[2]) if len(sp) > 2 and sp[2] is not None else None
            out.setdefault(str(head), []).append((start, end, term))
    return out


def resolve_spans(title: str, text: str, evidence: Any) -> list[tuple[int, int, str]]:
    """Spans (start, end, head) into ``text`` that really point at their terms."""
    title, text = title or "", text or ""
    combined = schema.letter_text(title, text)
    body = text.strip()
    shift = (len(combined) - len(body)) - (len(text) - len(text.lstrip())) if body else 0
    out = []
    for head, spans in parse_evidence(evidence).items():
        for start, end, term in spans:
            if not (0 <= start < end):
                continue
            if end <= len(text) and (term is None or text[start:end] == term):
                out.append((start, end, head))
                continue
            if term is not None and end <= len(combined) and combined[start:end] == term:
                s, e = start - shift, end - shift
                if 0 <= s < e <= len(text) and text[s:e] == term:
                    out.append((s, e, head))
    return sorted(set(out))


def segments(text: str, spans: Iterable[tuple[int, int, str]]) -> list[tuple[str, tuple[str, ...]]]:
    """Cut ``text`` at every span boundary: [(piece, heads covering it)], pieces in order."""
    spans = [(s, e, h) for s, e, h in spans if 0 <= s < e <= len(text)]
    cuts = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out: list[tuple[str, tuple[str, ...]]] = []
    for a, b in zip(cuts, cuts[1:]):
        heads = tuple(sorted({h for s, e, h in spans if s <= a and b <= e}))
        if out and out[-1][1] == heads:
            out[-1] = (out[-1][0] + text[a:b], heads)
        else:
            out.append((text[a:b], heads))
    return out


def masked_segments(
    text: str, spans: list[tuple[int, int, str]], mask: Callable[[str], str] | None
) -> list[tuple[str, tuple[str, ...]]]:
    """Segments of ``text`` with ``mask`` applied; never shows what ``mask(text)`` would hide."""
    if mask is None:
        return segments(text, spans)
    whole = mask(text)
    if whole == text:
        return segments(text, spans)
    kept: list[tuple[int, int, str]] = []
    for sp in spans:
        trial = kept + [sp]
        if "".join(mask(piece) for piece, _ in segments(text, trial)) == whole:
            kept = trial
    return [(mask(piece), heads) for piece, heads in segments(text, kept)]
