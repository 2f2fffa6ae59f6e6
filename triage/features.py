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
from itertools import repeat

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from .cues import find_cues, legal_groups, risk_groups
from .tokenize import prepare as prepare_tokenizer
from .tokenize import tokenize, tokenize_spans, tokenize_with_offsets

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
        self.__dict__.pop("_fast", None)
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

    def prepare(self) -> None:
        """Build the lookup tables now: the vocabularies' n-gram indexes, and the jieba
        tokenizer's dictionary and segmenter tables (whitespace tokenising has none)."""
        self._index("word")
        self._index("char")
        if self.tokenizer == "jieba":
            prepare_tokenizer()

    def transform(self, X, tokens: list[list[str]] | None = None, word_hits: list | None = None):
        """Features for letters.

        ``tokens`` (one word list per letter) skips re-tokenising; a list passed as ``word_hits``
        receives, per letter, the ``(column, first_token, n)`` of every word n-gram found, so an
        explanation can map features back to text without enumerating n-grams again.
        """
        docs = as_docs(X)
        if tokens is None:
            fn = self._tokenize_fn()
            tokens = [fn(t) for t in docs["text"]]
        return self._stack(self._word_matrix(tokens, word_hits), self._char_matrix(docs["text"]), docs)

    def transform_words(self, docs, words: "WordSpans"):
        """Features from already-cut words (:class:`WordSpans`); returns ``(X, hits)`` where
        ``hits`` (:class:`WordHits`) locates every word n-gram feature in the letters' words."""
        docs = as_docs(docs)
        Xw, hits = self._word_counts(words.words, words.counts)
        return self._stack(self._word_tfidf(Xw), self._char_matrix(docs["text"]), docs), hits

    def tokens_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """The featurizer's words with their character spans in ``text``."""
        if self.tokenizer == "whitespace":
            return [(m.group(0), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        self._tokenize_fn()
        return tokenize_with_offsets(text)

    def word_spans(self, texts) -> "WordSpans":
        """The featurizer's words of many letters with their character spans, as flat arrays."""
        texts = list(texts)
        if self.tokenizer == "whitespace":
            per = [self.tokens_with_offsets(t) for t in texts]
            words = [w for p in per for w, _, _ in p]
            starts = np.fromiter((s for p in per for _, s, _ in p), dtype=np.int64, count=len(words))
            ends = np.fromiter((e for p in per for _, _, e in p), dtype=np.int64, count=len(words))
            counts = np.fromiter(map(len, per), dtype=np.int64, count=len(per))
            return WordSpans(words, starts, ends, counts)
        self._tokenize_fn()
        return WordSpans(*tokenize_spans(texts))

    # -- fast exact n-gram counting ----------------------------------------------------
    def _index(self, kind: str) -> "_NgramIndex | None":
        """Lookup tables for the word or char vocabulary (built once, not saved)."""
        check_is_fitted(self, "word_terms_")
        cache = self.__dict__.setdefault("_fast", {})
        if kind not in cache:
            if kind == "word":
                cache[kind] = _NgramIndex.build([t.split(" ") for t in self.word_terms_.tolist()], self.word_ngram_range)
            else:
                cache[kind] = _NgramIndex.build([list(t) for t in self.char_terms_.tolist()], self.char_ngram_range)
        return cache[kind]

    def _word_counts(self, words: list[str], counts: np.ndarray):
        """Word n-gram counts (CSR, float64) and where each counted n-gram starts."""
        index = self._index("word")
        n_docs = len(counts)
        if index is None or " " in "".join(words):  # exotic vocabulary or tokens: the plain loop
            return self._word_counts_loop(words, counts)
        ids = np.fromiter(map(index.ids.get, words, repeat(0)), dtype=np.int64, count=len(words))
        doc = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
        first = np.concatenate([[0], np.cumsum(counts)])[:-1]
        doc_end = np.repeat(first + counts, counts)
        found = index.lookup(ids, doc_end)  # per n: (positions, columns)
        hit_doc, hit_col, hit_j, hit_n = [], [], [], []
        for n, pos, col in found:
            hit_doc.append(doc[pos])
            hit_col.append(col)
            hit_j.append(pos - first[doc[pos]])
            hit_n.append(np.full(len(pos), n, dtype=np.int64))
        hits = WordHits(*(np.concatenate(a) if a else np.zeros(0, dtype=np.int64) for a in (hit_doc, hit_col, hit_j, hit_n)))
        X = _count_matrix(hits.doc, hits.col, n_docs, len(self.word_terms_), np.float64)
        return X, hits

    def _word_counts_loop(self, words: list[str], counts: np.ndarray):
        index = self.word_index()
        nmin, nmax = self.word_ngram_range
        bounds = np.concatenate([[0], np.cumsum(counts)])
        hd, hc, hj, hn = [], [], [], []
        for i in range(len(counts)):
            toks = words[bounds[i] : bounds[i + 1]]
            for n in range(nmin, nmax + 1):
                for j in range(len(toks) - n + 1):
                    col = index.get(toks[j] if n == 1 else " ".join(toks[j : j + n]))
                    if col is not None:
                        hd.append(i), hc.append(col), hj.append(j), hn.append(n)
        hits = WordHits(*(np.asarray(a, dtype=np.int64) for a in (hd, hc, hj, hn)))
        return _count_matrix(hits.doc, hits.col, len(counts), len(self.word_terms_), np.float64), hits

    def _word_tfidf(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """Exactly TfidfVectorizer.transform (sublinear tf, idf, l2) of word n-gram counts."""
        X.data = (1.0 + np.log(X.data)) * self.word_idf_.astype(np.float64)[X.indices]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        X = sp.diags(1.0 / norms) @ X
        return X.astype(np.float32).tocsr()

    def _char_matrix(self, texts) -> sp.csr_matrix:
        """Exactly the char TfidfVectorizer.transform, with the n-grams counted in numpy."""
        _, char = self._vectorizers()
        index = self._index("char")
        if index is None:
            return char.transform(texts)
        pre = char.build_preprocessor()
        texts = [_WHITE_SPACES.sub(" ", pre(t)) for t in texts]  # as sklearn's _char_ngrams
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = index.code_ids[codes]
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        found = index.lookup(ids, np.repeat(np.cumsum(lengths), lengths))
        rows = np.concatenate([doc[pos] for _, pos, _ in found])
        cols = np.concatenate([col for _, _, col in found])
        counts = _count_matrix(rows, cols, len(texts), len(self.char_terms_), np.float32)
        return char._tfidf.transform(counts, copy=False)

    def _word_matrix(self, token_lists: list[list[str]], word_hits: list | None = None) -> sp.csr_matrix:
        """Exactly TfidfVectorizer.transform (sublinear tf, idf, l2), from already-cut words."""
        flat = [w for toks in token_lists for w in toks]
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        X, hits = self._word_counts(flat, lengths)
        if word_hits is not None:
            word_hits.extend(hits.per_letter(lengths))
        return self._word_tfidf(X)

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
        state.pop("_fast", None)
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


# --------------------------------------------------------------------------------------
# Exact n-gram counting in numpy (same counts as TfidfVectorizer's Python loops)
# --------------------------------------------------------------------------------------

_WHITE_SPACES = re.compile(r"\s\s+")  # sklearn's _VectorizerMixin._white_spaces


class _NgramIndex:
    """A vocabulary of n-grams of units (characters or words) as integer keys.

    Every unit that occurs in some vocabulary term gets an id 1..K; any other unit is 0, and an
    n-gram containing a 0 cannot be in the vocabulary.  An n-gram's key is its ids written in
    base K+1, so looking up all n-grams of a batch of letters is one lookup per n: a direct table
    where the key space is small, else a hashed ``pandas.Index`` of the keys (about six times
    faster than a binary search of the sorted keys, and the same columns).
    """

    def __init__(self, ids: dict[str, int], tables: dict[int, "np.ndarray | tuple[pd.Index, np.ndarray, int, np.ndarray | None]"], base: int, ngram_range):
        self.ids = ids
        self.tables = tables
        self.base = base
        self.nmin, self.nmax = ngram_range
        code_ids = None
        if all(len(u) == 1 for u in ids):  # characters: a code point table
            code_ids = np.zeros(0x110000, dtype=np.int64)
            for u, i in ids.items():
                code_ids[ord(u)] = i
        self.code_ids = code_ids

    @classmethod
    def build(cls, terms: list[list[str]], ngram_range) -> "_NgramIndex | None":
        nmin, nmax = ngram_range
        ids: dict[str, int] = {}
        for units in terms:
            for u in units:
                if u not in ids:
                    ids[u] = len(ids) + 1
        base = len(ids) + 1
        if base ** max(nmax, 1) >= 2**62 or any(not (nmin <= len(t) <= nmax) for t in terms):
            return None  # keys would overflow, or a term is not an n-gram of the range
        keys: dict[int, list[int]] = {n: [] for n in range(nmin, nmax + 1)}
        cols: dict[int, list[int]] = {n: [] for n in range(nmin, nmax + 1)}
        for col, units in enumerate(terms):
            key = 0
            for u in units:
                key = key * base + ids[u]
            keys[len(units)].append(key)
            cols[len(units)].append(col)
        tables = {}
        for n in keys:
            k = np.asarray(keys[n], dtype=np.int64)
            c = np.asarray(cols[n], dtype=np.int64)
            if base**n <= _DIRECT_TABLE_MAX:  # small key space: a direct table, no search
                direct = np.full(base**n, -1, dtype=np.int32)
                direct[k] = c
                tables[n] = direct
            else:
                # the longest prefix with a small key space filters the n-grams worth searching
                p = max(q for q in range(1, n) if base**q <= _DIRECT_TABLE_MAX) if base <= _DIRECT_TABLE_MAX else 0
                prefix = None
                if p:
                    prefix = np.zeros(base**p, dtype=bool)
                    prefix[k // base ** (n - p)] = True
                index = pd.Index(k)
                if not index.is_unique:  # two terms with the same units (see _terms_array): the plain loop
                    return None
                index.get_indexer(k[:1])  # builds the hash table now (before a scorer forks)
                tables[n] = (index, c, p, prefix)
        return cls(ids, tables, base, ngram_range)

    def lookup(self, ids: np.ndarray, doc_end: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """For each n: the start positions of the in-vocabulary n-grams in ``ids`` (which do
        not run past their letter's end, ``doc_end`` per position) and their columns."""
        out = []
        N = len(ids)
        keys = {0: np.zeros(N, dtype=np.int64)}
        valid = np.ones(N, dtype=bool)
        positions = np.arange(N, dtype=np.int64)
        for n in range(1, self.nmax + 1):
            m = N - n + 1
            if m <= 0:
                break
            keys[n] = key = keys[n - 1][:m] * self.base + ids[n - 1 : n - 1 + m]
            valid = valid[:m] & (ids[n - 1 : n - 1 + m] != 0) & (positions[:m] + n <= doc_end[:m])
            if n < self.nmin:
                continue
            table = self.tables[n]
            if isinstance(table, np.ndarray):
                pos = np.flatnonzero(valid)
                col = table[key[pos]]
                hit = col >= 0
                out.append((n, pos[hit], col[hit].astype(np.int64)))
                continue
            table_index, table_cols, p, prefix = table
            if len(table_index) == 0:
                continue
            ok = valid if prefix is None else valid & prefix[keys[p][:m]]
            pos = np.flatnonzero(ok)
            at = table_index.get_indexer(key[pos])
            hit = at >= 0
            out.append((n, pos[hit], table_cols[at[hit]]))
        return out


_DIRECT_TABLE_MAX = 1 << 22


def _count_matrix(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, dtype) -> sp.csr_matrix:
    """CSR counts of (row, col) pairs, indices sorted within each row."""
    key = rows.astype(np.int64) * n_cols + cols
    key.sort(kind="stable")  # radix/merge sort: the keys come in long sorted runs
    if len(key):
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        uniq, counts = key[starts], np.diff(np.append(starts, len(key)))
    else:
        uniq, counts = key, key
    r = uniq // n_cols
    indptr = np.searchsorted(r, np.arange(n_rows + 1), side="left")
    return sp.csr_matrix((counts.astype(dtype), (uniq % n_cols).astype(np.int32), indptr.astype(np.int32)), shape=(n_rows, n_cols))


class WordHits:
    """Where word n-gram features occur: letter, column, first word (index within the letter), n."""

    def __init__(self, doc: np.ndarray, col: np.ndarray, j: np.ndarray, n: np.ndarray):
        # per letter: unigrams first, then bigrams, each in text order (the hits come n by n,
        # each n in text order, so a stable sort by letter is enough)
        order = np.argsort(doc, kind="stable")
        self.doc, self.col, self.j, self.n = doc[order], col[order], j[order], n[order]

    def per_letter(self, counts) -> list[list[tuple[int, int, int]]]:
        """Per letter, ``(column, first_word, n)`` tuples (the older list-of-lists form)."""
        bounds = np.searchsorted(self.doc, np.arange(len(counts) + 1))
        rows = list(zip(self.col.tolist(), self.j.tolist(), self.n.tolist()))
        return [rows[bounds[i] : bounds[i + 1]] for i in range(len(counts))]


class WordSpans:
    """The words of many letters, flat: ``words``, their ``starts``/``ends`` in their letter,
    and ``counts`` (words per letter)."""

    def __init__(self, words: list[str], starts: np.ndarray, ends: np.ndarray, counts: np.ndarray):
        self.words, self.starts, self.ends, self.counts = words, starts, ends, counts
        self.first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def of(self, i: int) -> list[tuple[str, int, int]]:
        a, b = self.first[i], self.first[i + 1]
        return list(zip(self.words[a:b], self.starts[a:b].tolist(), self.ends[a:b].tolist()))
