"""The project's own jieba tokenizer.

A dedicated ``jieba.Tokenizer`` with the bundled domain dictionary (petition, legal-procedure
and administrative terms) sits behind the module-level function :func:`tokenize`.  The words are
cut by :class:`triage.segment.Segmenter` over that tokenizer's dictionary: exactly jieba's
precise mode with HMM (a tested equality), in about half the time.  A module-level
function pickles by reference, so vectorizers that use it as their analyzer can be saved with
skops (``jieba.lcut`` and a Tokenizer instance cannot).
"""

from __future__ import annotations

import logging
import threading
from itertools import compress
from pathlib import Path

import jieba
import numpy as np

from .segment import Segmenter

DOMAIN_DICT = Path(__file__).resolve().parent / "domain_dict.txt"

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_segmenter: Segmenter | None = None

jieba.setLogLevel(logging.WARNING)


def tokenizer() -> jieba.Tokenizer:
    """The process-wide project tokenizer, built on first use."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                tk = jieba.Tokenizer()
                tk.initialize()
                tk.load_userdict(str(DOMAIN_DICT))
                _tokenizer = tk
    return _tokenizer


def segmenter() -> Segmenter:
    """The segmenter over :func:`tokenizer`'s dictionary (same words as its ``lcut(text, HMM=True)``)."""
    global _segmenter
    if _segmenter is None:
        tk = tokenizer()
        with _lock:
            if _segmenter is None:
                _segmenter = Segmenter(tk)
    return _segmenter


def prepare() -> None:
    """Load the dictionary and build the segmenter's tables now (see :meth:`Segmenter.prepare`)."""
    segmenter().prepare()


def tokenize(text: str) -> list[str]:
    """Segment ``text`` into words (jieba precise mode, HMM on), dropping whitespace tokens."""
    if not text:
        return []
    return [w for w in segmenter().lcut(text) if not w.isspace()]


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """Words with their character spans ``(word, start, end)`` into ``text``: the same
    segmentation as :func:`tokenize` (one letter of :func:`tokenize_spans`)."""
    if not text:
        return []
    words, starts, ends, _ = tokenize_spans([text])
    return list(zip(words, starts.tolist(), ends.tolist()))


def tokenize_spans(texts) -> tuple[list[str], "np.ndarray", "np.ndarray", "np.ndarray"]:
    """:func:`tokenize_with_offsets` of many texts at once, as flat arrays.

    Returns ``(words, starts, ends, counts)``: all words of all texts in order, each word's
    span in its own text, and the number of words per text.  Same segmentation as
    :func:`tokenize`; the offsets and the whitespace filter are computed in numpy.
    """
    pieces: list[str] = []
    n_pieces: list[int] = []
    for cut in segmenter().lcut_many(list(texts)):
        pieces.extend(cut)
        n_pieces.append(len(cut))
    n = len(pieces)
    per = np.asarray(n_pieces, dtype=np.int64)
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    text_first = np.concatenate([[0], np.cumsum(per)])[:-1]
    starts_of_text = np.concatenate([[0], ends])[text_first] if n else np.zeros(len(per), dtype=np.int64)
    ends = ends - np.repeat(starts_of_text, per)
    starts = ends - lengths
    keep = ~np.fromiter(map(str.isspace, pieces), dtype=bool, count=n)
    doc = np.repeat(np.arange(len(per)), per)
    counts = np.bincount(doc[keep], minlength=len(per)).astype(np.int64)
    return list(compress(pieces, keep.tolist())), starts[keep], ends[keep], counts
