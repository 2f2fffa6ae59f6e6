"""Safe model files: skops only, through an explicit trusted-type list.

A model file is loaded only when every type it contains is on :data:`TRUSTED_TYPES` (our own
estimators plus the scikit-learn, numpy and scipy types they are built from).  Anything else,
such as a file made elsewhere that smuggles in ``os.system`` or a pickle, is refused with the
list of offending types.  ``pickle.load`` is never used.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

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


def skops_io():
    """``skops.io``, imported without dragging in torch.

    skops builds its default trusted list from scikit-learn's ``all_estimators()``, which walks
    every scikit-learn module, ``sklearn.externals.array_api_compat.torch`` included, and that
    imports torch (about 300 MB and seconds per process) when it is installed.  The classical
    backend never needs torch, so torch is hidden for the duration of that one import.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import scipy.stats  # noqa: F401  (scipy inspects sys.modules["torch"] on import)
    import sklearn.base  # noqa: F401

    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` fail fast
    try:
        import skops.io
    finally:
        if hide and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return skops.io


def dump_skops(obj, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    skops_io().dump(obj, path, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    return path


class UntrustedModelError(RuntimeError):
    """A model file contains types outside the trusted list, or is not a skops file."""


def load_skops(path: str | Path, extra_trusted: tuple[str, ...] = ()):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"找不到模型文件 {path}")
    sio = skops_io()
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
