"""How uncertain the model is about a letter: the review queue's order, defined once.

The queue puts the letters the model is least sure of first, so that every correction a
clerk makes teaches the model as much as possible.  The measure is *margin* uncertainty:
one minus the gap between the two most probable classes of a head.  A letter's uncertainty
is that of its least certain head.

``bench/learning_curve.py`` simulates clerks labelling in this order against random order
on real letters and imports the same functions, so the per-letter measure the bench shows
works is the one the queue sorts by.  On the bench, margin beats least confidence
(``1 - p_top1``, the queue's earlier measure).  The bench's default is plain margin order,
exactly the queue's; ``--strategy diverse`` adds a diversity step (k-means over the most
uncertain letters) that a queue sorted per letter at insert time cannot do, and did no better
on the reported seeds: see the bench's docstring for both sets of figures.

Two entry points on the same measure:

* :func:`margin_uncertainty` on a probability matrix (rows = letters, columns = classes);
* :func:`letter_uncertainty` on one scored letter as the scorer writes it (the top
  probability ``<head>_confidence`` and the runners-up in ``<head>_alternatives`` or in the
  ``alternatives`` JSON), which is what the store has at insert time.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import numpy as np

#: heads whose uncertainty orders the queue (risk has its own rank ahead of uncertainty)
QUEUE_HEADS: tuple[str, ...] = ("track", "department")


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """``1 - (p_top1 - p_top2)`` per row, in [0, 1]; larger = less sure.  A one-column
    matrix (a single class) is certain: 0."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"概率矩阵应为二维（信件 × 类别），实际维数为 {p.ndim}")
    if p.shape[1] == 0:
        raise ValueError("概率矩阵没有类别列")
    if p.shape[1] == 1:
        return np.zeros(p.shape[0])
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0)


def least_confidence_uncertainty(proba: np.ndarray) -> np.ndarray:
    """``1 - p_top1`` per row (the queue's measure before margin; kept for the bench's comparison)."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"概率矩阵应为二维且至少一列，实际形状为 {p.shape}")
    return np.clip(1.0 - p.max(axis=1), 0.0, 1.0)


def head_margin_uncertainty(confidence: float, runner_up: float | None) -> float:
    """Margin uncertainty of one head from its top probability and the runner-up's.  Without
    a runner-up the remaining mass ``1 - confidence`` is taken as the runner-up: exact for a
    two-class head, and never less uncertain than the truth otherwise."""
    second = 1.0 - confidence if runner_up is None else runner_up
    second = min(max(second, 0.0), confidence)
    return float(min(max(1.0 - (confidence - second), 0.0), 1.0))


def _loaded(value: Any) -> Any:
    """``value`` itself, or the value of its JSON text (None for blank or broken JSON)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else None
    except ValueError:
        return None


def _runner_up(alts: Any) -> float | None:
    """Best probability among ``[[label, p], ...]`` (a list or its JSON text); None if absent."""
    alts = _loaded(alts)
    if not isinstance(alts, (list, tuple)):
        return None
    best = None
    for item in alts:
        if isinstance(item, (list, tuple)) and len(item) >= 2:
            p = _num(item[1])
            if p is not None and (best is None or p > best):
                best = p
    return best


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def letter_uncertainty(record: Mapping[str, Any], heads: Sequence[str] = QUEUE_HEADS) -> float:
    """Margin uncertainty of a scored letter's least certain head, in [0, 1].

    Per head: ``<head>_confidence`` is the top probability; the runner-up comes from
    ``<head>_alternatives`` or ``alternatives[<head>]`` (``[[label, p], ...]``, list or JSON).
    A letter with no confidence at all (not scored, or failed) is fully uncertain: 1.
    """
    all_alts = _loaded(record.get("alternatives"))
    values = []
    for h in heads:
        conf = _num(record.get(f"{h}_confidence"))
        if conf is None:
            continue
        conf = min(max(conf, 0.0), 1.0)
        alts = record.get(f"{h}_alternatives")
        second = _runner_up(alts)
        if second is None and isinstance(all_alts, Mapping):
            second = _runner_up(all_alts.get(h))
        values.append(head_margin_uncertainty(conf, second))
    return max(values) if values else 1.0
