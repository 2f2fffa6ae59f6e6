"""Model-file size and load time: vocabularies as numpy arrays (ours) vs as Python dicts.

Usage: python bench/persistence.py [--model VERSION|DIR]

skops writes a dict vocabulary as a JSON tree of one node per term, which is large and slow to
load; TextFeaturizer stores the same vocabulary as a numpy string array plus an idf array.
This script saves the bundled model's fitted vectorizers both ways, in the same run, and
prints the file sizes, load times (trusted-type check included) and their ratios, and the
pickle size for reference.  No real data is needed.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triage import registry  # noqa: E402
from triage.persist import skops_io  # noqa: E402


def timed_load(sio, path: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        sio.load(path, trusted=sio.get_untrusted_types(file=path))
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    a = ap.parse_args(argv)
    sio = skops_io()
    model, manifest = registry.load_model(a.model)
    feat = model.backend_.featurizer_
    word, char = feat._vectorizers()  # the same vocabularies, as fitted TfidfVectorizers with dicts
    with tempfile.TemporaryDirectory() as d:
        naive, ours = os.path.join(d, "dicts.skops"), os.path.join(d, "arrays.skops")
        sio.dump({"word": word, "char": char}, naive, compression=zipfile.ZIP_DEFLATED)
        sio.dump(feat, ours, compression=zipfile.ZIP_DEFLATED)
        n_size, o_size = os.path.getsize(naive), os.path.getsize(ours)
        n_load, o_load = timed_load(sio, naive), timed_load(sio, ours)
        pk = len(pickle.dumps({"word": word, "char": char}, protocol=pickle.HIGHEST_PROTOCOL))
        whole = registry.resolve(a.model) / manifest["model_file"]
        t = time.perf_counter()
        registry.load_model(a.model)
        whole_load = time.perf_counter() - t
    print(f"model {manifest['version']}: {len(feat.word_terms_)} word + {len(feat.char_terms_)} char terms")
    print(f"vocabularies as dicts  (skops): {n_size / 1e6:6.2f} MB, load {n_load:6.3f} s   (pickle of the same: {pk / 1e6:.2f} MB)")
    print(f"vocabularies as arrays (skops): {o_size / 1e6:6.2f} MB, load {o_load:6.3f} s")
    print(f"ratio dicts/arrays: size {n_size / o_size:.1f}x, load {n_load / max(o_load, 1e-9):.0f}x")
    print(f"whole bundled model: {whole.stat().st_size / 1e6:.2f} MB, registry.load_model {whole_load:.2f} s (target < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
