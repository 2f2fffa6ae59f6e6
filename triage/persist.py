"""Safe model files: skops only, through an explicit trusted-type list.

A model file is loaded only when every type it contains is on :data:`TRUSTED_TYPES` (our own
estimators plus the scikit-learn, numpy and scipy types they are built from).  Anything else,
such as a file made elsewhere that smuggles in ``os.system`` or a pickle, is refused with the
list of offending types.  ``pickle.load`` is never used.
"""

from __future__ import annotations

from pathlib import Path

import skops.io as sio

#: Types a project model file may contain beyond what skops trusts by default.
TRUSTED_TYPES: tuple[str, ...] = (
    "triage.backends.tfidf_linear.LinearHead",
    "triage.backends.tfidf_linear.TfidfLinearBackend",
    "triage.features.TextFeaturizer",
    "triage.tokenize.tokenize",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "numpy.float32",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "builtins.slice",
)


class UntrustedModelError(RuntimeError):
    """A model file contains types outside the trusted list, or is not a skops file."""


def load_skops(path: str | Path, extra_trusted: tuple[str, ...] = ()):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"找不到模型文件 {path}")
    trusted = set(TRUSTED_TYPES) | set(extra_trusted)
    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip / not a skops schema
        raise UntrustedModelError(f"{path} 不是有效的 skops 模型文件（{type(exc).__name__}: {exc}）") from None
    bad = sorted(set(found) - trusted)
    if bad:
        raise UntrustedModelError(f"拒绝加载 {path}：包含不受信任的类型 {', '.join(bad)}")
    try:
        return sio.load(path, trusted=sorted(trusted & set(found)))
    except Exception as exc:
        raise UntrustedModelError(f"{path} 无法安全加载（{type(exc).__name__}: {exc}）") from None
