"""Speed of the model on real letters: predict + explain vs jieba-only tokenisation.

Usage: python bench/speed.py [DATA_DIR] [--model VERSION|DIR] [--repeat N]

Reads DATA_DIR/teddy2020/raw_unlabeled.csv (2,047 raw messages), then in the same process
measures (1) jieba-only tokenisation of the same normalised letters (``lcut(text, HMM=True)`` of
the project's jieba.Tokenizer: the baseline), (1b) the project's own segmenter on them, one
letter at a time (triage.tokenize.tokenize) and all at once as the model cuts them
(triage.tokenize.tokenize_spans: triage.segment's lcut_many), the same words, and (2)
TriageModel.predict (all heads, calibrated probabilities, risk, and evidence spans).  Prints letters/s for both and their ratio, the model load time and the model
file size; also the pickle size of the same backend, to show what the array vocabularies save.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, jieba_only, require  # noqa: E402

from triage import registry  # noqa: E402
from triage.io import read_table  # noqa: E402
from triage.model import prepare_docs  # noqa: E402
from triage.tokenize import tokenize, tokenize_spans  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    ap.add_argument("--model")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args(argv)
    path = require(Path(a.data) / "teddy2020" / "raw_unlabeled.csv", "raw_unlabeled.csv")
    frame = read_table(path).frame
    tokenize("预热")  # build the jieba dictionary once, outside both timings

    t0 = time.perf_counter()
    model, manifest = registry.load_model(a.model)
    load_s = time.perf_counter() - t0
    directory = registry.resolve(a.model)
    size = (directory / manifest["model_file"]).stat().st_size
    buf = io.BytesIO()
    pickle.dump(model.backend_, buf, protocol=pickle.HIGHEST_PROTOCOL)

    docs = prepare_docs(frame)
    t0 = time.perf_counter()
    for _ in range(a.repeat):
        for text in docs["text"]:
            jieba_only(text)
    jieba_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(a.repeat):
        for text in docs["text"]:
            tokenize(text)
    seg_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(a.repeat):
        tokenize_spans(docs["text"].tolist())
    batch_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for _ in range(a.repeat):
        model.predict(frame)
    model_s = time.perf_counter() - t0

    n = len(frame) * a.repeat
    chars = int(docs["text"].str.len().sum())
    print(f"letters: {len(frame)} x {a.repeat}, mean {chars / len(frame):.0f} characters")
    print(f"jieba-only tokenisation : {n / jieba_s:8.1f} letters/s")
    print(f"project segmenter       : {n / seg_s:8.1f} letters/s one by one (same words; {jieba_s / seg_s:.2f}x jieba)")
    print(f"  the same, as a batch  : {n / batch_s:8.1f} letters/s (how the model cuts; {jieba_s / batch_s:.2f}x jieba)")
    print(f"predict + explain       : {n / model_s:8.1f} letters/s")
    print(f"ratio model/jieba       : {jieba_s / model_s:8.2f}")
    print(f"ratio model/segmenter   : {batch_s / model_s:8.2f} (against the batch)")
    print(f"model load              : {load_s:8.2f} s  (target < 2 s)")
    print(f"model file (skops, zip) : {size / 1e6:8.2f} MB; same backend pickled: {buf.tell() / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
