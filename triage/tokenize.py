"""The project's own jieba tokenizer.

A dedicated ``jieba.Tokenizer`` with the bundled domain dictionary (petition, legal-procedure
and administrative terms) sits behind the module-level function :func:`tokenize`.  A module-level
function pickles by reference, so vectorizers that use it as their analyzer can be saved with
skops (``jieba.lcut`` and a Tokenizer instance cannot).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import jieba

DOMAIN_DICT = Path(__file__).resolve().parent / "domain_dict.txt"

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None

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


def tokenize(text: str) -> list[str]:
    """Segment ``text`` into words (jieba precise mode, HMM on), dropping whitespace tokens."""
    if not text:
        return []
    return [w for w in tokenizer().lcut(text, HMM=True) if not w.isspace()]


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """Words with their character spans ``(word, start, end)`` into ``text``.

    jieba's pieces concatenate back to the text, so spans are running sums of their lengths;
    this is the same segmentation as :func:`tokenize` and much cheaper than ``Tokenizer.tokenize``.
    """
    if not text:
        return []
    out, pos = [], 0
    for w in tokenizer().lcut(text, HMM=True):
        end = pos + len(w)
        if not w.isspace():
            out.append((w, pos, end))
        pos = end
    return out
