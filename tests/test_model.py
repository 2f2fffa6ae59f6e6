import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from _corpus import SMALL_FEATURES, corpus, small_model
from triage.backends.tfidf_linear import LinearHead, OneClassError
from triage.model import TriageModel, nfkc_by_char, place_term, recurrence_counts
from triage.schema import OUTPUT_FIELDS, ROUTE_LABELS, TRACK_LITIGATION, default_heads

pytestmark = pytest.mark.slow


def test_init_only_stores_params_and_clone():
    m = TriageModel(backend_params={"C": 0.3}, review_threshold=0.7)
    assert m.get_params()["review_threshold"] == 0.7
    c = clone(m)
    assert c.get_params() == m.get_params()
    assert not hasattr(c, "backend_")
    assert not any(k.endswith("_") for k in vars(c))


def test_unfitted_raises():
    with pytest.raises(NotFittedError):
        TriageModel().predict(pd.DataFrame({"text": ["你好"]}))
    with pytest.raises(NotFittedError):
        TriageModel().prepare()


def test_prepare_builds_the_tokenizer_tables_through_the_backend(monkeypatch):
    from triage import tokenize as tokenize_mod

    m, _ = small_model()
    seg = tokenize_mod.segmenter()
    monkeypatch.setattr(seg, "_arrays", None)
    monkeypatch.delitem(m.backend_.featurizer_.__dict__, "_fast", raising=False)
    assert m.prepare() is m
    assert seg._arrays
    assert set(m.backend_.featurizer_.__dict__["_fast"]) == {"word", "char"}  # the n-gram indexes too
    # a whitespace-tokenised featurizer has no tables to build
    monkeypatch.setattr(seg, "_arrays", None)
    monkeypatch.setattr(m.backend_.featurizer_, "tokenizer", "whitespace")
    m.prepare()
    assert seg._arrays is None


def test_fit_returns_self_and_classes():
    frame = corpus(300, 5)
    m = TriageModel(backend_params=SMALL_FEATURES)
    assert m.fit(frame) is m
    assert set(m.classes_) == {"track", "route", "department", "risk"}
    heads = default_heads()
    for head, classes in m.classes_.items():
        assert set(classes) <= set(heads[head].labels)


def test_predict_proba_follows_classes():
    model, frame = small_model()
    proba = model.predict_proba(frame.head(50))
    out = model.predict(frame.head(50))
    for head, p in proba.items():
        assert p.shape == (50, len(model.classes_[head]))
        assert np.allclose(p.sum(axis=1), 1.0)
    top = model.classes_["department"][proba["department"].argmax(axis=1)]
    assert (out["department"].to_numpy() == top).all()


def test_output_fields_and_route_only_for_litigation():
    model, frame = small_model()
    out = model.predict(frame.head(200), version="v-test")
    for col in ("track", "track_confidence", "route", "department", "department_confidence", "risk", "risk_score", "risk_reasons", "evidence"):
        assert col in out.columns and col in OUTPUT_FIELDS
    lit = out["track"] == TRACK_LITIGATION
    assert (out.loc[~lit, "route"] == "").all()
    assert out.loc[lit, "route"].isin(ROUTE_LABELS).all()
    assert out["risk_score"].between(0, 1).all()
    assert (out["model_version"] == "v-test").all()
    alts = json.loads(out["department_alternatives"].iloc[0])
    assert len(alts) == 3 and alts[0][0] != out["department"].iloc[0]


def test_learns_something_on_unseen_seed():
    model, _ = small_model()
    test = corpus(400, 99)
    out = model.predict(test)
    assert (out["department"] == test["department"]).mean() > 0.5
    assert (out["track"] == test["track"]).mean() > 0.8


def test_determinism_for_seed():
    frame = corpus(300, 5)
    a = TriageModel(backend_params=SMALL_FEATURES).fit(frame).predict_proba(frame.head(40))
    b = TriageModel(backend_params=SMALL_FEATURES).fit(frame).predict_proba(frame.head(40))
    for head in a:
        np.testing.assert_allclose(a[head], b[head])


def test_evidence_points_at_real_spans():
    model, frame = small_model()
    sub = frame.head(100)
    out = model.predict(sub)
    n_spans = 0
    for body, ev in zip(sub["text"], out["evidence"]):
        for head, spans in json.loads(ev).items():
            terms = [term for _, _, term in spans]
            assert len(terms) == len(set(terms)), f"repeated evidence terms: {terms}"
            for start, end, term in spans:
                assert body[start:end] == term
                n_spans += 1
            for (s1, e1, _), (s2, e2, _) in zip(spans, spans[1:]):
                assert e1 <= s2, f"overlapping highlights {spans}"
    assert n_spans > 100


def test_one_class_head_is_a_clear_error():
    frame = corpus(100, 6).assign(department="住建局")
    with pytest.raises(OneClassError, match="department"):
        TriageModel(backend_params=SMALL_FEATURES).fit(frame)


def test_linear_head_contract():
    from scipy.sparse import random as sprandom

    X = sprandom(60, 30, density=0.3, random_state=0, format="csr")
    y = np.array(["a", "b", "c"] * 20)
    h = LinearHead()
    with pytest.raises(NotFittedError):
        h.predict_proba(X)
    assert h.fit(X, y) is h
    assert list(h.classes_) == ["a", "b", "c"]
    assert h.predict_proba(X).shape == (60, 3)


def test_recurrence_counts_batch_wide():
    f = pd.DataFrame({"id_number": ["A", "A", "", ""], "phone": ["", "", "139", "139"]})
    assert recurrence_counts(f).tolist() == [2, 2, 2, 2]
    f = pd.DataFrame({"id_number": ["A", "B", "", ""], "phone": ["", "", "", ""]})
    assert recurrence_counts(f).tolist() == [1, 1, 1, 1]


def test_place_term_skips_taken_spans():
    assert place_term("工资", "拖欠工资，工资", [[0, 4, "拖欠工资"]]) == (5, 7)
    assert place_term("工资", "拖欠工资", [[0, 4, "拖欠工资"]]) is None


def test_place_term_handles_full_width():
    body = "看ＡＢＣ仲裁"
    assert nfkc_by_char(body) == "看ABC仲裁"
    assert place_term("ABC仲裁", nfkc_by_char(body), []) == (1, 6)
    assert place_term("无", nfkc_by_char("有"), []) is None


def test_nfkc_by_char_fast_path_matches_the_per_character_map():
    """Text that is NFKC-normal is returned as is; it must be what the per-character map gives."""
    import random
    import unicodedata

    from triage.model import _NFKC_BY_CHAR

    rng = random.Random(2)
    pool = list("信访局仲裁abc ＡＢ１２①ﬁé\u0301\u0308e\u212b\u1100\u1161가\u3000，。")
    normal = 0
    for _ in range(3000):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(1, 10)))
        assert nfkc_by_char(s) == s.translate(_NFKC_BY_CHAR), repr(s)
        normal += unicodedata.is_normalized("NFKC", s) and not s.isascii()
    assert normal > 100


def test_risk_thresholds_configurable():
    model, frame = small_model()
    strict = clone(model).set_params(risk_thresholds={"medium": 0.0, "high": 0.0, "high_without_cue": 0.0})
    strict.backend_, strict.classes_, strict.heads_ = model.backend_, model.classes_, model.heads_
    assert (strict.predict(frame.head(20))["risk"] == "高").all()


def test_output_json_is_exactly_json_dumps():
    from triage.model import _json_alternatives, _json_pairs, _json_spans

    pairs = [["住建局", 0.0268], ['引"号\\', 1e-05], ["零", 0.0], ["非数", float("nan")]]
    assert _json_pairs(pairs) == json.dumps(pairs, ensure_ascii=False)
    alts = {"track": [["涉法涉诉", 0.0034]], "route": [], "risk": pairs}
    assert _json_alternatives(alts) == json.dumps(alts, ensure_ascii=False)
    spans = {"track": [[5, 7, "反映"], [8, 12, '滨"江\n\x01']], "risk": []}
    assert _json_spans(spans) == json.dumps(spans, ensure_ascii=False)
    assert _json_spans({}) == "{}"


def test_fast_explanation_path_matches_the_public_explain():
    model, frame = small_model()
    from triage.model import prepare_docs

    docs = prepare_docs(frame.iloc[:120])
    backend = model.backend_
    proba, light = backend.predict_proba_and_explain(docs, k=5, light=True)
    labels = {h: backend.classes_[h][np.argmax(p, axis=1)] for h, p in proba.items()}
    full = backend.explain(docs, labels, k=5)
    assert set(light) == set(full)
    for head in full:
        assert [[tuple(e) for e in row] for row in light[head]] == [
            [(e.start, e.end, e.term, e.weight) for e in row] for row in full[head]
        ]
    assert sum(len(row) for row in full["department"]) > 0


def test_backend_regularisation_per_head():
    from triage.backends.tfidf_linear import DEFAULT_C, DEFAULT_C_OTHER, TfidfLinearBackend

    default = TfidfLinearBackend()
    assert default._C("track") == DEFAULT_C["track"] != DEFAULT_C_OTHER
    assert default._C("department") == DEFAULT_C_OTHER
    assert TfidfLinearBackend(C=2.0)._C("track") == 2.0  # a number applies to every head
    partial = TfidfLinearBackend(C={"risk": 1.5})  # a mapping leaves unnamed heads to the defaults
    assert (partial._C("risk"), partial._C("track"), partial._C("route")) == (1.5, DEFAULT_C["track"], DEFAULT_C_OTHER)


def test_fitted_heads_use_their_own_C():
    model, _ = small_model()
    heads = model.backend_.heads_
    assert heads["track"].C == model.backend_._C("track")
    assert heads["department"].C == model.backend_._C("department")
