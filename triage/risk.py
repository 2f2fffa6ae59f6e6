"""Escalation risk: the risk head's probabilities, the cue lexicon and metadata, combined.

``risk_score`` is the expected severity under the risk head (P(中)·0.5 + P(高)·1.0), which the
head learns from text, cue counts and metadata (number of people, repeat petitioning).  The
level comes from configurable thresholds; the reasons are what a supervisor can check: the cue
groups found in the text, plus metadata signs (a visit of five or more people is a collective
visit; a petitioner who recurs in the batch is repeat petitioning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cues import find_cues

#: Default thresholds on risk_score: at or above ``high`` is 高, at or above ``medium`` is 中.
DEFAULT_THRESHOLDS = {"medium": 0.35, "high": 0.6}
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


def level_for(score: float, thresholds: dict | None = None) -> str:
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    if not 0 <= t["medium"] <= t["high"] <= 1:
        raise ValueError(f"风险阈值应满足 0 ≤ medium ≤ high ≤ 1，实际为 {t}")
    return "高" if score >= t["high"] else "中" if score >= t["medium"] else "低"


def reasons_for(text: str, num_people: float = 1, recurrence: float = 1, channel: str = "") -> tuple[str, ...]:
    found = {h.group for h in find_cues(text, "risk")}
    if num_people >= COLLECTIVE_VISIT_PEOPLE:
        found.add("群体利益")
        if channel == "来访":
            found.add("集体行动")
    if recurrence >= 2:
        found.add("重复长期")
    from .schema import RISK_REASONS

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
    score = float(risk_score(np.asarray(proba_row)[None, :], classes)[0])
    return RiskAssessment(round(score, 4), level_for(score, thresholds), reasons_for(text, num_people, recurrence, channel))
