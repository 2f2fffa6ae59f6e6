"""Escalation risk: the risk head's probabilities, the cue lexicon and metadata, combined.

``risk_score`` is the expected severity under the risk head (P(中)·0.5 + P(高)·1.0), which the
head learns from text, cue counts and metadata (number of people, repeat petitioning); the risk
queue sorts by it.  The level comes from configurable thresholds on the calibrated
probabilities; the reasons are what a supervisor can check: the cue
groups found in the text, plus metadata signs (a visit of five or more people is a collective
visit; a petitioner who recurs in the batch is repeat petitioning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cues import FRAME_DENIED, FRAME_PAST, FRAME_PLAN, find_cues, high_cue_frames
from .schema import RISK_REASONS

#: Default thresholds on the calibrated risk probabilities: 高 when P(高) reaches ``high``
#: (and, without any explicit high-risk sign in the text or metadata, ``high_without_cue``);
#: otherwise 中 when P(中) + P(高) reaches ``medium``; otherwise 低.
DEFAULT_THRESHOLDS = {"medium": 0.5, "high": 0.5, "high_without_cue": 0.85}
SEVERITY = {"低": 0.0, "中": 0.5, "高": 1.0}
#: 信访工作中，五人以上为集体访
COLLECTIVE_VISIT_PEOPLE = 5


@dataclass(frozen=True)
class RiskAssessment:
    score: float
    level: str
    reasons: tuple[str, ...]


def risk_score(proba: np.ndarray, classes) -> np.ndarray:
    """Expected severity per letter, in [0, 1]."""
    weights = np.array([SEVERITY[str(c)] for c in classes])
    return np.clip(np.asarray(proba) @ weights, 0.0, 1.0)


def thresholds(custom: dict | None = None) -> dict:
    t = {**DEFAULT_THRESHOLDS, **(custom or {})}
    for k, v in t.items():
        if not 0 <= float(v) <= 1:
            raise ValueError(f"风险阈值 {k} 应在 0 到 1 之间，实际为 {v}")
    return t


def level_for(
    p_high: float,
    p_medium_or_high: float,
    has_high_cue: bool,
    custom: dict | None = None,
    planned: bool = False,
) -> str:
    """高/中/低 from calibrated probabilities.

    The label definition (data/LABELS.md) makes 高 a matter of explicit signs — skip-level or
    Beijing petitioning, collective action, extreme acts — so without any such sign the model
    must be much surer before it calls a letter 高.  A sign stated as a plan, a condition or an
    act under way (``planned``, see :func:`triage.cues.planned_high_cues`) is 高 by definition
    once the model agrees the letter is at least 中.  A sign told only as history (a collective
    visit last year, a banner in 2019) does not count as ``has_high_cue``: the label rules make
    such a letter 中, so the model must be as sure as without any sign.  (A hard cap at 中 for
    history-only letters was tried and dropped: clause-framing errors cost it three true 高
    letters for one false one on our hand-labelled real tuning letters, and one true 高 on the
    synthetic holdout.)
    """
    return _level(p_high, p_medium_or_high, has_high_cue, planned, thresholds(custom))


def _level(p_high: float, p_medium_or_high: float, has_high_cue: bool, planned: bool, t: dict) -> str:
    """:func:`level_for` with the thresholds already checked."""
    if p_high >= (t["high"] if has_high_cue else max(t["high"], t["high_without_cue"])):
        return "高"
    if planned and p_medium_or_high >= t["medium"]:
        return "高"
    return "中" if p_medium_or_high >= t["medium"] else "低"


def reasons_for(text: str, num_people: float = 1, recurrence: float = 1, channel: str = "") -> tuple[str, ...]:
    """Risk reasons found in the text and the metadata.  A high-risk sign the writer disowns or
    that someone else threatens (:data:`triage.cues.FRAME_DENIED`) is not a reason."""
    return _reasons(text, high_cue_frames(text), num_people, recurrence, channel)


def _reasons(text: str, frames, num_people: float, recurrence: float, channel: str) -> tuple[str, ...]:
    """:func:`reasons_for`, given the text's :func:`~triage.cues.high_cue_frames`."""
    denied = {h for h, f in frames if f == FRAME_DENIED}
    found = {h.group for h in find_cues(text, "risk") if h not in denied}
    if num_people >= COLLECTIVE_VISIT_PEOPLE:
        found.add("群体利益")
        if channel == "来访":
            found.add("集体行动")
    if recurrence >= 2:
        found.add("重复长期")
    return tuple(r for r in RISK_REASONS if r in found)


def assess(
    proba_row: np.ndarray,
    classes,
    text: str,
    *,
    num_people: float = 1,
    recurrence: float = 1,
    channel: str = "",
    thresholds: dict | None = None,
) -> RiskAssessment:
    """Score, level and reasons of one letter (see :func:`assess_many`)."""
    return assess_many(np.asarray(proba_row, dtype=float)[None, :], classes, [text], [num_people], [recurrence], [channel], thresholds)[0]


def assess_many(proba, classes, texts, num_people, recurrence, channels, custom_thresholds: dict | None = None) -> list[RiskAssessment]:
    """:class:`RiskAssessment` of each letter: the risk head's probabilities ``proba`` (one row
    per letter, columns in ``classes`` order), its text, number of people, recurrence in the batch
    and channel.  The score is :func:`risk_score`; the level :func:`level_for`, where a high-risk
    sign counts when it is live (not told as history, not disowned) or a collective visit is
    under way; the reasons :func:`reasons_for`."""
    proba = np.asarray(proba, dtype=float)
    classes = [str(c) for c in classes]
    t = thresholds(custom_thresholds)
    scores = [round(float(v), 4) for v in risk_score(proba, classes)]
    zeros = [0.0] * len(texts)
    p_high = proba[:, classes.index("高")].tolist() if "高" in classes else zeros
    p_medium = proba[:, classes.index("中")].tolist() if "中" in classes else zeros
    out = []
    for i, text in enumerate(texts):
        people, channel = num_people[i], channels[i]
        hits = high_cue_frames(text)
        frames = [f for _, f in hits]
        collective_visit = people >= COLLECTIVE_VISIT_PEOPLE and channel == "来访"  # under way: they are here
        live = collective_visit or any(f not in (FRAME_PAST, FRAME_DENIED) for f in frames)
        level = _level(p_high[i], p_high[i] + p_medium[i], live, FRAME_PLAN in frames, t)
        out.append(RiskAssessment(scores[i], level, _reasons(text, hits, people, recurrence[i], channel)))
    return out
