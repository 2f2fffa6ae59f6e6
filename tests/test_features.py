import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from triage.features import TextFeaturizer, as_docs, cue_matrix, cue_names

TEXTS = ["我们多次越级上访，要求解决农民工工资", "劳动仲裁裁决后公司不执行", "小区噪音扰民请城管处理", "法院判决对方拒不履行"]


def test_contract_and_shapes():
    f = TextFeaturizer(min_df=1)
    assert clone(f).get_params() == f.get_params()
    with pytest.raises(NotFittedError):
        f.transform(TEXTS)
    assert f.fit(TEXTS) is f
    X = f.transform(TEXTS)
    assert X.shape == (4, f.n_features_out_)
    assert len(f.get_feature_names_out()) == f.n_features_out_
    assert f.word_terms_.dtype.kind == "U"  # vocabulary stored as an array, not a dict


def test_transform_after_pickle_round_trip_is_identical():
    f = TextFeaturizer(min_df=1).fit(TEXTS)
    g = pickle.loads(pickle.dumps(f))
    assert "_cache" not in g.__dict__
    assert (f.transform(TEXTS) != g.transform(TEXTS)).nnz == 0


def test_fit_transform_equals_fit_then_transform():
    f = TextFeaturizer(min_df=1)
    a = f.fit_transform(TEXTS)
    b = f.transform(TEXTS)
    assert np.allclose(a.toarray(), b.toarray(), atol=1e-6)


def test_cue_block_counts_cues_and_metadata():
    docs = as_docs(["去北京上访", "你好"])
    docs["num_people"] = [30, 1]
    docs["recurrence"] = [3, 1]
    m = cue_matrix(docs)
    names = cue_names()
    assert m[0, names.index("risk:越级进京")] == 1
    assert m[1].sum() == 0
    assert m[0, names.index("meta:many_people")] == 1
    assert m[0, names.index("meta:repeat")] == 1


def test_docs_need_text_column():
    import pandas as pd

    with pytest.raises(ValueError, match="text"):
        as_docs(pd.DataFrame({"body": ["x"]}))


def test_whitespace_tokenizer_for_presegmented_text():
    f = TextFeaturizer(tokenizer="whitespace", min_df=1).fit(["城乡 建设 问题", "劳动 保障 问题"])
    assert "城乡 建设" in set(f.word_terms_)
    assert f.tokens_with_offsets("城乡  建设") == [("城乡", 0, 2), ("建设", 4, 6)]
    assert not any(" " in t for t in f.char_terms_)  # segmenting spaces are not characters


def test_unknown_tokenizer_is_a_clear_error():
    with pytest.raises(ValueError, match="分词方式"):
        TextFeaturizer(tokenizer="bpe").fit(TEXTS)


def test_cue_layout_is_fixed_by_the_model_not_the_code():
    """A model keeps the cue columns it was trained with, even if the code's list changes."""
    f = TextFeaturizer(min_df=1).fit(TEXTS)
    trained = [n for n in cue_names() if n != "legal:passing"] + ["legal:a-cue-this-code-no-longer-has"]
    f.cue_names_ = np.array(trained)
    f.n_features_out_ = len(f.word_terms_) + len(f.char_terms_) + len(trained)
    assert f.transform(TEXTS).shape[1] == f.n_features_out_
    docs = as_docs(["去北京上访"])
    m = cue_matrix(docs, trained)
    assert m.shape == (1, len(trained))
    assert m[0, trained.index("risk:越级进京")] == 1
    assert m[0, -1] == 0
