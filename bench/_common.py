"""Shared bits of the benchmark scripts: locating ../shared/data and saying so when it is absent."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:  # the benchmarks run from a checkout, installed or not
    sys.path.insert(0, str(REPO))


def require(path: Path, what: str) -> Path:
    if not path.exists():
        print(
            f"找不到基准数据 {path}（{what}）。\n"
            f"Benchmark data not found at {path}. Pass the folder that holds teddy2020/ as the first argument, "
            "e.g. `python bench/transfer.py ../shared/data`.",
            file=sys.stderr,
        )
        sys.exit(2)
    return path


def jieba_only(text: str) -> list[str]:
    """The benchmarks' baseline: jieba's own ``lcut(text, HMM=True)`` with the project's
    dictionary (the project tokenizer's jieba.Tokenizer), whitespace dropped.  The scorer gets
    the same words from triage.segment; this is what jieba alone costs."""
    from triage.tokenize import tokenizer

    return [w for w in tokenizer().lcut(text, HMM=True) if not w.isspace()]
