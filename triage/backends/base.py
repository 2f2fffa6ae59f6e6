"""The one backend interface: fit, predict_proba, explain, save, load.

A backend learns every head at once from the same letters (so text is featurised once), and
exposes per head the scikit-learn contract: ``classes_[head]`` gives the column order of
``predict_proba(docs)[head]``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator


@dataclass(frozen=True)
class Evidence:
    """A term that drove a suggestion: a character span ``[start, end)`` of the letter text."""

    start: int
    end: int
    term: str
    weight: float

    def as_list(self) -> list:
        return [self.start, self.end, self.term]


class Backend(BaseEstimator, ABC):
    #: versioned backend name, e.g. ``tfidf-linear.v1``
    name: ClassVar[str]

    @abstractmethod
    def fit(self, docs, y: Mapping[str, Sequence[str | None]]) -> "Backend":
        """Learn every head in ``y`` (head -> labels; None marks a letter without that label)."""

    @abstractmethod
    def predict_proba(self, docs) -> dict[str, np.ndarray]:
        """head -> array (n_letters, n_classes) whose columns follow ``classes_[head]``."""

    @abstractmethod
    def explain(self, docs, labels: Mapping[str, Sequence[str]], k: int = 5) -> dict[str, list[list[Evidence]]]:
        """head -> per letter, up to ``k`` spans of the text that pushed towards ``labels[head][i]``."""

    def prepare(self) -> None:
        """Build lookup tables and caches now, before a batch: a scorer calls this before it
        forks its workers, so they share what it builds.  Nothing to do by default."""

    @abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write the fitted backend into ``directory``; return the model file's path."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path) -> "Backend":
        """Read a backend written by :meth:`save`, refusing anything untrusted."""
