"""The triage model: the configured heads over one backend.

``TriageModel.fit(frame)`` learns ``track``, ``route`` (涉法涉诉 letters only), ``department``
and ``risk`` (or any heads named in ``label_columns``); ``predict(frame)`` returns one row of
scorer output fields per input row: suggestions, confidences, alternatives, the legal channel
with its guidance, the risk score, level and reasons, and evidence spans into the original
letter text.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Mapping

import numpy as np
import pandas as pd
from json.encoder import encode_basestring as _enc

from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import risk as risk_mod
from .backends import backend_class
from .normalize import normalize_text
from .schema import MAX_TEXT_CHARS, ROUTE_GUIDANCE, TRACK_LITIGATION, letter_text

DEFAULT_HEADS = ("track", "route", "department", "risk")


def recurrence_keys(frame: pd.DataFrame) -> pd.Series:
    """Who wrote a letter, for counting repeat petitioning: the ID number, else the phone, else ""."""
    key = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    for col in ("phone", "id_number"):  # id_number wins where present
        if col in frame.columns:
            vals = frame[col].fillna("").astype(str).str.strip()
            key = key.where(vals == "", f"{col}:" + vals)
    return key


def recurrence_counts(frame: pd.DataFrame) -> np.ndarray:
    """How many letters in ``frame`` share this letter's id_number (or, without one, phone)."""
    key = recurrence_keys(frame)
    counts = key.map(key.value_counts()).astype(float)
    counts[key == ""] = 1.0
    return counts.to_numpy()


def prepare_docs(frame: pd.DataFrame) -> pd.DataFrame:
    """What a backend reads: normalised title + body (capped), number of people, recurrence."""
    title = frame["title"] if "title" in frame.columns else pd.Series([""] * len(frame), index=frame.index)
    body = frame["text"] if "text" in frame.columns else pd.Series([""] * len(frame), index=frame.index)
    texts = [normalize_text(letter_text(str(t or ""), str(b or "")))[:MAX_TEXT_CHARS] for t, b in zip(title.fillna(""), body.fillna(""))]
    people = pd.to_numeric(frame["num_people"], errors="coerce").fillna(1) if "num_people" in frame.columns else 1
    rec = frame["recurrence"] if "recurrence" in frame.columns else recurrence_counts(frame)
    return pd.DataFrame({"text": texts, "num_people": np.asarray(people, dtype=float) * np.ones(len(frame)), "recurrence": np.asarray(rec, dtype=float)})


class _NfkcByChar(dict):
    """``str.translate`` table: a character's NFKC form cut to one character (" " if empty)."""

    def __missing__(self, code: int) -> str:
        value = self[code] = unicodedata.normalize("NFKC", chr(code))[:1] or " "
        return value


_NFKC_BY_CHAR = _NfkcByChar()


def nfkc_by_char(original: str) -> str:
    """NFKC applied character by character: same length as ``original``, so indices carry over."""
    if original.isascii() or unicodedata.is_normalized("NFKC", original):
        return original  # every character of an NFKC-normal text is its own NFKC form
    return original.translate(_NFKC_BY_CHAR)


def place_term(term: str, normalized: str, taken) -> tuple[int, int] | None:
    """Where an evidence term (from the normalised text) sits in the original body.

    ``normalized`` is :func:`nfkc_by_char` of the body, so its indices are the body's; the
    first occurrence that does not overlap a span in ``taken`` wins.
    """
    if not term:
        return None
    size = len(term)
    start = normalized.find(term)
    while start >= 0:
        end = start + size
        for span in taken:
            if end > span[0] and start < span[1]:
                break
        else:
            return start, end
        start = normalized.find(term, start + 1)
    return None


# ``json.dumps(..., ensure_ascii=False)`` of the few fixed shapes the output columns hold,
# written directly (the same text, without the general encoder's per-call overhead)


def _json_pairs(pairs) -> str:
    """``[["label", 0.1234], ...]``"""
    return "[" + ", ".join(f"[{_enc(c)}, {float.__repr__(v) if type(v) is float and math.isfinite(v) else json.dumps(v)}]" for c, v in pairs) + "]"


def _json_alternatives(alts: dict) -> str:
    """``{"head": [["label", 0.1234], ...], ...}``"""
    return "{" + ", ".join(f"{_enc(h)}: {_json_pairs(a)}" for h, a in alts.items()) + "}"


def _json_spans(spans: dict) -> str:
    """``{"head": [[start, end, "term"], ...], ...}``"""
    return "{" + ", ".join(f"{_enc(h)}: [" + ", ".join(f"[{int(a)}, {int(b)}, {_enc(t)}]" for a, b, t in out) + "]" for h, out in spans.items()) + "}"


def _litigation_routes(labels: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Route evidence is shown for 涉法涉诉 letters only, so only they need it explained."""
    if "route" in labels and "track" in labels:
        return {"route": np.asarray(labels["track"]) == TRACK_LITIGATION}
    return {}


class TriageModel(BaseEstimator):
    """Heads from configuration over a versioned backend.

    Parameters
    ----------
    backend : versioned backend name, e.g. ``tfidf-linear.v1``.
    backend_params : keyword arguments for the backend.
    label_columns : head -> label column of the training frame (default: head name).
    risk_thresholds : {"medium": x, "high": y, "high_without_cue": z} on the calibrated risk
        probabilities (see :mod:`triage.risk`).
    review_threshold : a suggestion below this confidence sends the letter to 待复核.
    """

    def __init__(
        self,
        backend="tfidf-linear.v1",
        backend_params=None,
        label_columns=None,
        risk_thresholds=None,
        review_threshold=0.6,
        evidence_k=5,
    ):
        self.backend = backend
        self.backend_params = backend_params
        self.label_columns = label_columns
        self.risk_thresholds = risk_thresholds
        self.review_threshold = review_threshold
        self.evidence_k = evidence_k

    def _label_columns(self) -> dict[str, str]:
        return dict(self.label_columns) if self.label_columns else {h: h for h in DEFAULT_HEADS}

    def training_targets(self, frame: pd.DataFrame) -> dict[str, list]:
        cols = self._label_columns()
        missing = [c for c in cols.values() if c not in frame.columns]
        if missing:
            raise ValueError(f"训练数据缺少标签列：{', '.join(missing)}；实际列：{', '.join(map(str, frame.columns))}")
        y: dict[str, list] = {}
        for head, col in cols.items():
            vals = [None if (v is None or v != v or str(v).strip() == "") else str(v).strip() for v in frame[col]]
            y[head] = vals
        if "route" in y and "track" in y:  # route is a property of 涉法涉诉 letters only
            y["route"] = [r if t == TRACK_LITIGATION else None for r, t in zip(y["route"], y["track"])]
        return y

    def fit(self, frame: pd.DataFrame, y: Mapping[str, list] | None = None):
        docs = prepare_docs(frame)
        targets = dict(y) if y is not None else self.training_targets(frame)
        self.backend_ = backend_class(self.backend)(**(self.backend_params or {})).fit(docs, targets)
        self.classes_ = {h: np.asarray(c) for h, c in self.backend_.classes_.items()}
        self.heads_ = tuple(self.classes_)
        return self

    # ------------------------------------------------------------------------------------
    def prepare(self) -> "TriageModel":
        """Build the backend's lookup tables now (see :meth:`Backend.prepare`)."""
        check_is_fitted(self, "backend_")
        self.backend_.prepare()
        return self

    def predict_proba(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        check_is_fitted(self, "backend_")
        return self.backend_.predict_proba(prepare_docs(frame))

    def predict(self, frame: pd.DataFrame, *, version: str = "") -> pd.DataFrame:
        """One row of output fields per input row (same index)."""
        check_is_fitted(self, "backend_")
        docs = prepare_docs(frame)
        if hasattr(self.backend_, "predict_proba_and_explain"):
            proba, evidence = self.backend_.predict_proba_and_explain(docs, k=self.evidence_k, light=True, select=_litigation_routes)
        else:
            proba = self.backend_.predict_proba(docs)
            labels = {h: self.classes_[h][np.argmax(p, axis=1)] for h, p in proba.items()}
            evidence = self.backend_.explain(docs, labels, k=self.evidence_k)
        bodies = frame["text"].fillna("").astype(str).tolist() if "text" in frame.columns else [""] * len(frame)
        channels = frame["channel"].fillna("").astype(str).tolist() if "channel" in frame.columns else [""] * len(frame)
        return pd.DataFrame(self._columns(proba, evidence, docs, bodies, channels, version), index=frame.index)

    def _columns(self, proba, evidence, docs, bodies, channels, version) -> dict[str, list]:
        """The output fields as columns (one entry per letter); heads are ranked in numpy."""
        n = len(bodies)
        rows = np.arange(n)
        top: dict[str, list[str]] = {}
        conf: dict[str, list[float]] = {}
        alts: dict[str, list[list]] = {}
        for head, p in proba.items():
            order = np.argsort(-p, axis=1, kind="stable")
            classes = [str(c) for c in self.classes_[head]]
            first = order[:, 0].tolist()
            top[head] = [classes[j] for j in first]
            conf[head] = p[rows, order[:, 0]].tolist() if n else []
            rest = order[:, 1:4]
            vals = np.take_along_axis(p, rest, axis=1).tolist()
            alts[head] = [[[classes[j], round(v, 4)] for j, v in zip(js, vs)] for js, vs in zip(rest.tolist(), vals)]
        cols: dict[str, list] = {head: list(labels) for head, labels in top.items()}
        lit = [t == TRACK_LITIGATION for t in top["track"]] if "track" in top else [False] * n
        if "track" in top:
            cols["track_confidence"] = [round(c, 4) for c in conf["track"]]
        if "route" in top:
            routes = top["route"]
            cols["route"] = [r if li else "" for r, li in zip(routes, lit)]
            cols["route_confidence"] = [round(c, 4) if li else None for c, li in zip(conf["route"], lit)]
            cols["route_guidance"] = [ROUTE_GUIDANCE.get(r, "") if li else "" for r, li in zip(routes, lit)]
        if "department" in top:
            cols["department_confidence"] = [round(c, 4) for c in conf["department"]]
            cols["department_alternatives"] = [_json_pairs(a) for a in alts["department"]]
        if "risk" in proba:
            classes = self.classes_["risk"]
            texts = docs["text"].tolist()
            people = docs["num_people"].tolist()
            recurrence = docs["recurrence"].tolist()
            p_risk = proba["risk"]
            assessed = risk_mod.assess_many(p_risk, classes, texts, people, recurrence, channels, self.risk_thresholds)
            cols["risk"] = [a.level for a in assessed]
            cols["risk_score"] = [a.score for a in assessed]
            cols["risk_reasons"] = ["|".join(a.reasons) for a in assessed]
        evidence_col, alternatives_col, review_col = [], [], []
        heads = list(proba)
        for i in range(n):
            spans: dict[str, list] = {}
            body = bodies[i]
            normalized = None
            for head, per_letter in evidence.items():
                if head == "route" and not lit[i]:
                    continue
                out: list[list] = []
                for ev in per_letter[i]:
                    if normalized is None:
                        normalized = nfkc_by_char(body)
                    loc = place_term(ev.term, normalized, out)
                    if loc:
                        out.append([loc[0], loc[1], body[loc[0] : loc[1]]])
                spans[head] = sorted(out)
            evidence_col.append(_json_spans(spans))
            alternatives_col.append(_json_alternatives({h: alts[h][i] for h in heads if not (h == "route" and not lit[i])}))
            low = any(conf[h][i] < self.review_threshold and not (h == "route" and not lit[i]) for h in heads)
            review_col.append(low or (cols["risk"][i] == "高" if "risk" in cols else False))
        cols["evidence"] = evidence_col
        cols["alternatives"] = alternatives_col
        cols["needs_review"] = review_col
        cols["model_version"] = [version] * n
        return cols
