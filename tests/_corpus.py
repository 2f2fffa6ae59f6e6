"""Small synthetic corpora and a small trained model, built once per test process."""

from __future__ import annotations

from functools import lru_cache

from triage.model import TriageModel

SMALL_FEATURES = {"featurizer_params": {"max_word_features": 8000, "max_char_features": 8000}}


@lru_cache(maxsize=4)
def corpus(n: int = 800, seed: int = 11):
    from triage.synth import generate

    return generate(n, seed)


@lru_cache(maxsize=2)
def small_model(seed: int = 0):
    frame = corpus()
    model = TriageModel(backend_params={**SMALL_FEATURES, "random_state": seed}).fit(frame)
    return model, frame
