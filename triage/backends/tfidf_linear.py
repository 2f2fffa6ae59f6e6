"""Classical backend ``tfidf-linear.v1``: word + char TF-IDF and cues, calibrated linear heads.

Each head is a :class:`LinearHead`: a class-weighted ``LinearSVC`` whose scores are calibrated
by cross-validation (``CalibratedClassifierCV(ensemble=False)``: one linear model on all the
data, one calibrator learned on out-of-fold scores), so the file holds a single coefficient
matrix per head.  Explanations are exact for a linear model: a term's contribution to a class
is its feature value times the class coefficient; word n-grams and cue matches are mapped back
to character spans of the letter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from ..cues import find_cues
from ..features import TextFeaturizer, as_docs
from .base import Backend, Evidence

MODEL_FILE = "model.skops"


class OneClassError(ValueError):
    pass


class LinearHead(ClassifierMixin, BaseEstimator):
    """One calibrated linear classifier over a precomputed feature matrix."""

    def __init__(self, C=0.5, class_weight="balanced", calibration="sigmoid", cv=3, random_state=0):
        self.C = C
        self.class_weight = class_weight
        self.calibration = calibration
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y):
        y = np.asarray(y, dtype=object).astype(str)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise OneClassError(f"只有一个类别（{classes[0] if len(classes) else '无'}），无法训练：每个分类头至少需要两个类别")
        svc = LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state, dual="auto", max_iter=5000)
        n_splits = int(min(self.cv, counts.min()))
        if self.calibration and n_splits >= 2:
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
            self.estimator_ = CalibratedClassifierCV(svc, method=self.calibration, cv=cv, ensemble=False).fit(X, y)
            base = self.estimator_.calibrated_classifiers_[0].estimator
        else:  # too few examples of some class to cross-validate a calibrator
            self.estimator_ = LogisticRegression(C=self.C * 10, class_weight=self.class_weight, max_iter=2000).fit(X, y)
            base = self.estimator_
        # float32 halves the model file; decisions are unchanged at this precision
        base.coef_ = base.coef_.astype(np.float32)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def linear_(self):
        """The underlying linear model (``coef_``, ``intercept_``)."""
        check_is_fitted(self, "estimator_")
        est = self.estimator_
        return est.calibrated_classifiers_[0].estimator if hasattr(est, "calibrated_classifiers_") else est

    def class_weights_for(self, label: str) -> np.ndarray:
        """Coefficient vector that pushes towards ``label``."""
        lin = self.linear_
        coef = np.asarray(lin.coef_)
        if coef.shape[0] == 1:  # binary: positive side is classes_[1]
            return coef[0] if label == self.classes_[1] else -coef[0]
        return coef[list(self.classes_).index(label)]


class TfidfLinearBackend(Backend):
    name = "tfidf-linear.v1"

    def __init__(self, featurizer_params=None, C=None, calibration="sigmoid", random_state=0):
        self.featurizer_params = featurizer_params
        self.C = C
        self.calibration = calibration
        self.random_state = random_state

    def _C(self, head: str) -> float:
        C = self.C if self.C is not None else 0.5
        return float(C[head]) if isinstance(C, Mapping) else float(C)

    def fit(self, docs, y):
        docs = as_docs(docs)
        self.featurizer_ = TextFeaturizer(**(self.featurizer_params or {}))
        X = self.featurizer_.fit_transform(docs)
        self.heads_ = {}
        for head, labels in y.items():
            labels = np.asarray(list(labels), dtype=object)
            mask = np.array([v is not None and v == v and str(v) != "" for v in labels])
            if mask.sum() == 0:
                raise OneClassError(f"分类头 “{head}” 没有任何标签")
            try:
                self.heads_[head] = LinearHead(
                    C=self._C(head), calibration=self.calibration, random_state=self.random_state
                ).fit(X[mask], labels[mask])
            except OneClassError as exc:
                raise OneClassError(f"分类头 “{head}”：{exc}") from None
        self.classes_ = {h: m.classes_ for h, m in self.heads_.items()}
        return self

    def _features(self, docs):
        check_is_fitted(self, "heads_")
        return self.featurizer_.transform(as_docs(docs))

    def predict_proba(self, docs):
        X = self._features(docs)
        return {h: m.predict_proba(X) for h, m in self.heads_.items()}

    def predict_proba_and_explain(self, docs, k: int = 5, heads=None):
        """Probabilities and, for each head's top label, evidence spans; tokenises once."""
        check_is_fitted(self, "heads_")
        docs = as_docs(docs)
        toks = [self.featurizer_.tokens_with_offsets(t) for t in docs["text"]]
        hits: list = []
        X = self.featurizer_.transform(docs, tokens=[[w for w, _, _ in tk] for tk in toks], word_hits=hits)
        proba = {h: m.predict_proba(X) for h, m in self.heads_.items()}
        labels = {h: self.classes_[h][np.argmax(p, axis=1)] for h, p in proba.items()}
        return proba, self._explain(docs, X, labels, k, heads, toks, hits)

    def explain(self, docs, labels, k=5):
        check_is_fitted(self, "heads_")
        docs = as_docs(docs)
        toks = [self.featurizer_.tokens_with_offsets(t) for t in docs["text"]]
        hits: list = []
        X = self.featurizer_.transform(docs, tokens=[[w for w, _, _ in tk] for tk in toks], word_hits=hits)
        return self._explain(docs, X, labels, k, None, toks, hits)

    def _explain(self, docs, X, labels, k, heads, all_tokens, word_hits):
        feat = self.featurizer_
        w0, w1 = feat.blocks_["word"]
        c0, _ = feat.blocks_["cue"]
        cue_pos = {str(n): i for i, n in enumerate(feat.cue_names_)}
        heads = heads or list(labels)
        out: dict[str, list[list[Evidence]]] = {h: [] for h in heads}
        weights = {h: {lab: np.asarray(self.heads_[h].class_weights_for(lab), dtype=np.float64) for lab in self.classes_[h]} for h in heads}
        X = X.tocsr()
        for i, text in enumerate(docs["text"]):
            lo, hi = X.indptr[i], X.indptr[i + 1]
            cols, vals = X.indices[lo:hi], X.data[lo:hi].astype(np.float64)
            keep = (cols < w1) | (cols >= c0)  # words and cues map to text; char n-grams do not
            cols, vals = cols[keep], vals[keep]
            # per head, the few features that pushed hardest towards its label (vectorised)
            ranked: dict[str, list[tuple[int, float]]] = {}
            wanted: set[int] = set()
            for h in heads:
                contrib = vals * weights[h][labels[h][i]][cols]
                top = np.argsort(-contrib, kind="stable")[: 4 * k]
                ranked[h] = [(int(cols[t]), float(contrib[t])) for t in top if contrib[t] > 0]
                wanted.update(f for f, _ in ranked[h])
            spans: dict[int, list[tuple[int, int, str]]] = {}
            toks = all_tokens[i]
            for f, j, n in word_hits[i]:
                if w0 + f not in wanted or (n == 1 and len(toks[j][0]) < 2):
                    continue  # single characters make poor highlights
                window = toks[j : j + n]
                if not all(t[0].isalnum() for t in window):
                    continue  # nor does punctuation
                s0, e0 = window[0][1], window[-1][2]
                spans.setdefault(w0 + f, []).append((s0, e0, text[s0:e0]))
            for family, prefix in (("legal", "legal:"), ("risk", "risk:")):
                for hit in find_cues(text, family):
                    pos = cue_pos.get(prefix + hit.group)  # a model keeps the cue layout it was trained with
                    if pos is not None and c0 + pos in wanted and hit.term.strip():
                        spans.setdefault(c0 + pos, []).append((hit.start, hit.end, hit.term))
            for h in heads:
                chosen: list[Evidence] = []
                for f, weight in ranked[h]:
                    for s0, e0, term in spans.get(f, ()):
                        if any(term == c.term or not (e0 <= c.start or s0 >= c.end) for c in chosen):
                            continue  # distinct terms in disjoint places: one highlight per reason
                        chosen.append(Evidence(s0, e0, term, round(weight, 4)))
                        break
                    if len(chosen) == k:
                        break
                out[h].append(sorted(chosen, key=lambda ev: ev.start))
        return out

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory):
        check_is_fitted(self, "heads_")
        from ..persist import dump_skops

        return dump_skops(self, Path(directory) / MODEL_FILE)

    @classmethod
    def load(cls, directory):
        path = Path(directory) / MODEL_FILE
        from ..persist import load_skops

        obj = load_skops(path)
        if not isinstance(obj, cls):
            raise TypeError(f"{path} 不是 {cls.name} 模型（实际为 {type(obj).__name__}）")
        return obj
