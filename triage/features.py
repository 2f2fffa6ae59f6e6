"""Vectorizers built from configuration.

``TextFeaturizer`` turns normalised letters into one sparse matrix: jieba word n-grams and
character n-grams (TF-IDF, sublinear tf), plus a small dense block of explicit cues (legal
procedure, escalation risk, passing mentions) and metadata (number of people, how often the
same petitioner recurs).  The learned vocabularies are stored as two numpy string arrays and
two idf arrays rather than as Python dicts: skops writes a dict of 100,000 terms as a huge
JSON tree that loads slowly, whereas a numpy array is one compact ``.npy`` entry.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from .cues import find_cues, legal_groups, risk_groups
from .tokenize import tokenize, tokenize_with_offsets

#: Columns a featurizer reads from a letters frame; only ``text`` is required.
DOC_COLUMNS = ("text", "num_people", "recurrence")


def as_docs(texts_or_frame) -> pd.DataFrame:
    """Accept a list of strings or a frame with a ``text`` column; fill metadata defaults."""
    if isinstance(texts_or_frame, pd.DataFrame):
        df = texts_or_frame
        if "text" not in df.columns:
            raise ValueError(f"featurizer needs a 'text' column, found {list(df.columns)}")
    else:
        df = pd.DataFrame({"text": list(texts_or_frame)})
    out = pd.DataFrame({"text": df["text"].fillna("").astype(str).to_numpy()})
    for col in ("num_people", "recurrence"):
        if col in df.columns:
            out[col] = pd.to_numeric(df[col], errors="coerce").fillna(1).clip(lower=1).to_numpy(dtype=float)
        else:
            out[col] = 1.0
    return out


def cue_names() -> list[str]:
    return (
        [f"legal:{g}" for g in legal_groups()]
        + ["legal:passing"]
        + [f"risk:{g}" for g in risk_groups()]
        + ["meta:log_people", "meta:many_people", "meta:log_recurrence", "meta:repeat"]
    )


def cue_matrix(docs: pd.DataFrame, names: list[str] | None = None) -> np.ndarray:
    """Dense cue and metadata block, one row per letter and one column per name; values in [0, ~2].

    ``names`` (default :func:`cue_names`) fixes the columns, so a model keeps the layout it was
    trained with even after new cues are added.
    """
    names = list(cue_names() if names is None else names)
    col = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(docs), len(names)), dtype=np.float64)

    def add(i: int, name: str, value: float = 1.0) -> None:
        j = col.get(name)
        if j is not None:
            out[i, j] += value

    for i, text in enumerate(docs["text"]):
        for h in find_cues(text, "legal"):
            add(i, f"legal:{h.group}")
        add(i, "legal:passing", len(find_cues(text, "passing")))
        for h in find_cues(text, "risk"):
            add(i, f"risk:{h.group}")
    np.minimum(out, 2.0, out=out)
    people = docs["num_people"].to_numpy(dtype=float)
    rec = docs["recurrence"].to_numpy(dtype=float)
    for name, values in (
        ("meta:log_people", np.log1p(people - 1) / 2),
        ("meta:many_people", (people >= 5).astype(float)),
        ("meta:log_recurrence", np.log1p(rec - 1) / 2),
        ("meta:repeat", (rec >= 2).astype(float)),
    ):
        if name in col:
            out[:, col[name]] = values
    return out


class TextFeaturizer(TransformerMixin, BaseEstimator):
    """Word + character TF-IDF with a cue/metadata block.

    Parameters are stored untouched by ``__init__``; everything learned ends in ``_``.
    """

    def __init__(
        self,
        word_ngram_range=(1, 2),
        char_ngram_range=(1, 3),
        max_word_features=60000,
        max_char_features=60000,
        min_df=2,
        cue_weight=1.0,
        tokenizer="jieba",
    ):
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.min_df = min_df
        self.cue_weight = cue_weight
        self.tokenizer = tokenizer

    # -- fitting -----------------------------------------------------------------------
    def _tokenize_fn(self):
        try:
            return TOKENIZERS[self.tokenizer]
        except KeyError:
            raise ValueError(f"未知的分词方式 “{self.tokenizer}”，可用：{', '.join(TOKENIZERS)}") from None

    def _new_vectorizers(self):
        word = TfidfVectorizer(
            tokenizer=self._tokenize_fn(),
            token_pattern=None,
            lowercase=False,
            ngram_range=tuple(self.word_ngram_range),
            min_df=self.min_df,
            max_features=self.max_word_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        char = TfidfVectorizer(
            analyzer="char",
            preprocessor=strip_spaces if self.tokenizer == "whitespace" else None,
            lowercase=False,
            ngram_range=tuple(self.char_ngram_range),
            min_df=self.min_df,
            max_features=self.max_char_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        return word, char

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        docs = as_docs(X)
        word, char = self._new_vectorizers()
        Xw = word.fit_transform(docs["text"])
        Xc = char.fit_transform(docs["text"])
        self.word_terms_ = _terms_array(word.vocabulary_)
        self.word_idf_ = word.idf_.astype(np.float32)
        self.char_terms_ = _terms_array(char.vocabulary_)
        self.char_idf_ = char.idf_.astype(np.float32)
        self.cue_names_ = np.array(cue_names())
        self.n_features_out_ = len(self.word_terms_) + len(self.char_terms_) + len(self.cue_names_)
        self._cache = (word, char)
        return self._stack(Xw, Xc, docs)

    # -- transforming ------------------------------------------------------------------
    def _vectorizers(self):
        check_is_fitted(self, "word_terms_")
        cache = getattr(self, "_cache", None)
        if cache is None:
            word, char = self._new_vectorizers()
            for vec, terms, idf in ((word, self.word_terms_, self.word_idf_), (char, self.char_terms_, self.char_idf_)):
                vec.vocabulary_ = {str(t): i for i, t in enumerate(terms)}
                vec.idf_ = idf.astype(np.float64)
                vec.fixed_vocabulary_ = True
            cache = self._cache = (word, char)
        return cache

    def transform(self, X, tokens: list[list[str]] | None = None, word_hits: list | None = None):
        """Features for letters.

        ``tokens`` (one word list per letter) skips re-tokenising; a list passed as ``word_hits``
        receives, per letter, the ``(column, first_token, n)`` of every word n-gram found, so an
        explanation can map features back to text without enumerating n-grams again.
        """
        word, char = self._vectorizers()
        docs = as_docs(X)
        if tokens is None:
            fn = self._tokenize_fn()
            tokens = [fn(t) for t in docs["text"]]
        return self._stack(self._word_matrix(tokens, word_hits), char.transform(docs["text"]), docs)

    def tokens_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """The featurizer's words with their character spans in ``text``."""
        if self.tokenizer == "whitespace":
            return [(m.group(0), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        self._tokenize_fn()
        return tokenize_with_offsets(text)

    def _word_matrix(self, token_lists: list[list[str]], word_hits: list | None = None) -> sp.csr_matrix:
        """Exactly TfidfVectorizer.transform (sublinear tf, idf, l2), from already-cut words."""
        index = self.word_index()
        nmin, nmax = self.word_ngram_range
        indptr, indices, values = [0], [], []
        for toks in token_lists:
            counts: dict[int, int] = {}
            hits = [] if word_hits is not None else None
            for n in range(nmin, nmax + 1):
                for j in range(len(toks) - n + 1):
                    col = index.get(toks[j] if n == 1 else " ".join(toks[j : j + n]))
                    if col is not None:
                        counts[col] = counts.get(col, 0) + 1
                        if hits is not None:
                            hits.append((col, j, n))
            if word_hits is not None:
                word_hits.append(hits)
            cols = sorted(counts)
            indices.extend(cols)
            values.extend(counts[c] for c in cols)
            indptr.append(len(indices))
        X = sp.csr_matrix(
            (np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(token_lists), len(self.word_terms_)),
        )
        X.data = (1.0 + np.log(X.data)) * self.word_idf_.astype(np.float64)[X.indices]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        X = sp.diags(1.0 / norms) @ X
        return X.astype(np.float32).tocsr()

    def _stack(self, Xw, Xc, docs):
        cues = sp.csr_matrix(cue_matrix(docs, [str(n) for n in self.cue_names_]).astype(np.float32) * self.cue_weight)
        return sp.hstack([Xw, Xc, cues], format="csr", dtype=np.float32)

    # -- introspection -----------------------------------------------------------------
    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "word_terms_")
        return np.concatenate(
            [np.char.add("w:", self.word_terms_), np.char.add("c:", self.char_terms_), np.char.add("x:", self.cue_names_)]
        )

    @property
    def blocks_(self) -> dict[str, tuple[int, int]]:
        """Column ranges of the word, char and cue blocks."""
        nw, nc = len(self.word_terms_), len(self.char_terms_)
        return {"word": (0, nw), "char": (nw, nw + nc), "cue": (nw + nc, nw + nc + len(self.cue_names_))}

    def word_index(self) -> dict[str, int]:
        return self._vectorizers()[0].vocabulary_

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        # parameters added after a model was saved take their defaults (the behaviour it had)
        defaults = {"tokenizer": "jieba", "cue_weight": 1.0}
        self.__dict__.update({**defaults, **state})


def split_whitespace(text: str) -> list[str]:
    """Tokenizer for text that is already segmented (words separated by spaces)."""
    return text.split()


def strip_spaces(text: str) -> str:
    """Character n-grams of pre-segmented text should not see the segmenting spaces."""
    return "".join(text.split())


#: word tokenizers by name (module-level functions, so they pickle by reference)
TOKENIZERS = {"jieba": tokenize, "whitespace": split_whitespace}


def _terms_array(vocabulary: dict[str, int]) -> np.ndarray:
    terms = [""] * len(vocabulary)
    for t, i in vocabulary.items():
        terms[i] = t
    return np.array(terms, dtype=str)
