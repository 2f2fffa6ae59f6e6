"""The review queue's uncertainty measure (triage.active): matrix and per-letter forms agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triage import active


def test_margin_uncertainty_values_and_column_order():
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [1.0, 0.0, 0.0], [0.1, 0.45, 0.45]])
    u = active.margin_uncertainty(p)
    assert np.allclose(u, [0.5, 0.95, 0.0, 1.0])
    assert np.allclose(active.margin_uncertainty(p[:, ::-1]), u)  # which column is which does not matter
    assert np.allclose(active.margin_uncertainty(np.ones((3, 1))), 0.0)


def test_margin_and_least_confidence_rank_differently():
    # a: top 0.5 but a clear lead; b: top 0.6 but a close runner-up
    p = np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1], [0.6, 0.4, 0.0, 0.0, 0.0, 0.0]])
    assert active.least_confidence_uncertainty(p)[0] > active.least_confidence_uncertainty(p)[1]
    assert active.margin_uncertainty(p)[1] > active.margin_uncertainty(p)[0]


@pytest.mark.parametrize("bad", [np.array([0.5, 0.5]), np.zeros((2, 0))])
def test_bad_matrix_raises(bad):
    with pytest.raises(ValueError):
        active.margin_uncertainty(bad)
    with pytest.raises(ValueError):
        active.least_confidence_uncertainty(bad)


def test_head_margin_uncertainty():
    assert active.head_margin_uncertainty(0.8, None) == pytest.approx(0.4)  # two classes: runner-up 0.2
    assert active.head_margin_uncertainty(0.8, 0.15) == pytest.approx(0.35)
    assert active.head_margin_uncertainty(0.5, 0.9) == pytest.approx(1.0)  # a runner-up above the top is clipped
    assert active.head_margin_uncertainty(1.0, 0.0) == 0.0


def _records_like_the_scorer(p: np.ndarray, classes: list[str], head: str = "department") -> list[dict]:
    """What triage.model writes per letter: the top probability and the next three, as JSON."""
    out = []
    for row in p:
        order = np.argsort(-row, kind="stable")
        alts = [[classes[j], round(float(row[j]), 4)] for j in order[1:4]]
        out.append({f"{head}_confidence": round(float(row[order[0]]), 4), f"{head}_alternatives": json.dumps(alts, ensure_ascii=False)})
    return out


def test_letter_uncertainty_equals_matrix_measure():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(7, 0.4), size=50)
    classes = [f"单位{i}" for i in range(7)]
    per_letter = [active.letter_uncertainty(r) for r in _records_like_the_scorer(p, classes)]
    assert np.allclose(per_letter, active.margin_uncertainty(p), atol=1e-3)  # scorer rounds to 4 places
    assert np.argsort(per_letter)[-5:].tolist() == np.argsort(active.margin_uncertainty(p))[-5:].tolist()


def test_letter_uncertainty_takes_least_certain_head_and_alternatives_json():
    rec = {
        "track_confidence": 0.9,  # binary head, no alternatives: runner-up 0.1, uncertainty 0.2
        "department_confidence": 0.5,
        "alternatives": json.dumps({"department": [["乙", 0.45], ["丙", 0.05]]}, ensure_ascii=False),
    }
    assert active.letter_uncertainty(rec) == pytest.approx(0.95)
    rec["department_alternatives"] = [["乙", 0.1]]  # the head's own column wins over the combined JSON
    assert active.letter_uncertainty(rec) == pytest.approx(0.6)
    assert active.letter_uncertainty({"track_confidence": 0.9}) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "rec",
    [{}, {"track_confidence": None, "department_confidence": float("nan")}, {"department_confidence": "不是数字"}],
)
def test_letter_without_confidence_is_fully_uncertain(rec):
    assert active.letter_uncertainty(rec) == 1.0


def test_malformed_alternatives_fall_back_to_remaining_mass():
    for alts in ("{不是 JSON", "", [["乙"]], [["乙", "x"]], 5):
        rec = {"department_confidence": 0.7, "department_alternatives": alts, "alternatives": "坏"}
        assert active.letter_uncertainty(rec) == pytest.approx(0.6)
