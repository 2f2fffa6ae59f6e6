"""Drift: do recent scoring batches look like what the model was validated on?

Reference
    The model's own *predictions on its held-out set* (label counts per head and the mean
    and standard deviation of the suggestion's confidence), written into the manifest by
    ``triage retrain`` (``metrics.reference``).  Predictions are compared with predictions,
    so a model's known bias does not show up as drift.  For a version without that block
    (one made by ``triage train``) the training label counts (``data.label_counts``) stand
    in, and the confidence check is skipped.

Batches
    ``Store.batches()`` rows whose ``model_version`` is the checked version; their stats are
    what the scorer records (``labels``: head -> label -> count, ``mean_confidence``: head ->
    mean, ``scored``).  The newest ``window`` batches are pooled.

Test, per head (track, route, department, risk)
    * label distribution: chi-square test of homogeneity of the reference counts and the
      pooled batch counts (a two-sample test: the reference is itself a sample, a few
      hundred held-out letters, so testing against its proportions as if exact would raise
      false alarms), Bonferroni over the heads at ``alpha`` = 0.01; a shift is flagged only
      when, in addition, the population stability index PSI (counts smoothed by 0.5) is
      ≥ 0.2 — with huge samples every trivial shift is "significant", PSI keeps the effect
      size honest;
    * confidence (not risk, whose scorer figure is a risk score): the mean confidence fell
      by at least ``conf_drop`` (0.05) and a one-sided z-test with the reference standard
      deviation gives p < alpha / heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import registry
from .gate import HEAD_DISPLAY

HEADS = ("track", "route", "department", "risk")
CONFIDENCE_COLUMNS = {"track": "track_confidence", "route": "route_confidence", "department": "department_confidence"}


def prediction_stats(pred: pd.DataFrame) -> dict:
    """Label counts and confidence statistics of scorer-style output (``TriageModel.predict``)."""
    out = {"scored": int(len(pred)), "labels": {}, "mean_confidence": {}, "std_confidence": {}, "conf_n": {}}
    for head in HEADS:
        if head not in pred.columns:
            continue
        labels = pred[head].fillna("").astype(str)
        labels = labels[labels != ""]
        out["labels"][head] = {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}
        col = CONFIDENCE_COLUMNS.get(head)
        if col and col in pred.columns:
            conf = pd.to_numeric(pred[col], errors="coerce").dropna()
            if len(conf):
                out["mean_confidence"][head] = float(conf.mean())
                out["std_confidence"][head] = float(conf.std(ddof=1)) if len(conf) > 1 else 0.0
                out["conf_n"][head] = int(len(conf))
    return out


def psi(observed: np.ndarray, expected: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two distributions (counts or proportions)."""
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    o = np.clip(o / o.sum(), eps, None)
    e = np.clip(e / e.sum(), eps, None)
    return float(np.sum((o - e) * np.log(o / e)))


@dataclass
class HeadDrift:
    head: str
    n: int
    labels: list[str]
    reference: list[float]
    observed: list[float]
    chi2: float
    p_value: float
    psi: float
    shifted: bool
    ref_confidence: float | None = None
    confidence: float | None = None
    conf_p_value: float | None = None
    confidence_dropped: bool = False


@dataclass
class DriftResult:
    model_version: str
    reference_kind: str  # "holdout_predictions" | "training_labels"
    batches: list[str]
    heads: dict[str, HeadDrift] = field(default_factory=dict)
    alpha: float = 0.01
    psi_threshold: float = 0.2
    conf_drop: float = 0.05
    messages: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(h.shifted or h.confidence_dropped for h in self.heads.values())

    @property
    def flagged(self) -> bool:
        """Alias of :attr:`drifted` (the CLI's ``--fail-on-drift`` reads it)."""
        return self.drifted

    def report(self) -> str:
        ref = "该模型在留出集上的预测分布" if self.reference_kind == "holdout_predictions" else "训练标签分布（清单中没有留出集预测分布）"
        lines = [f"漂移检查：模型 {self.model_version}，参照：{ref}"]
        lines += [f"  {m}" for m in self.messages]
        if not self.batches:
            return "\n".join(lines)
        n_heads = max(len(self.heads), 1)
        lines.append(
            f"  最近 {len(self.batches)} 个批次：{'、'.join(self.batches[-5:])}{' …' if len(self.batches) > 5 else ''}；"
            f"判定：卡方检验 p < {self.alpha}/{n_heads}（Bonferroni）且 PSI ≥ {self.psi_threshold}；平均置信度下降 ≥ {self.conf_drop} 且 z 检验显著"
        )
        for h in self.heads.values():
            tag = "【分布漂移】" if h.shifted else "正常"
            top = sorted(zip(h.labels, h.reference, h.observed), key=lambda t: -abs(t[2] - t[1]))[:3]
            moves = "，".join(f"{lab} {r:.1%}→{o:.1%}" for lab, r, o in top)
            lines.append(f"  {HEAD_DISPLAY.get(h.head, h.head)}：{tag} n={h.n}，卡方 {h.chi2:.1f}，p={h.p_value:.2g}，PSI {h.psi:.3f}；变化最大：{moves}")
            if h.ref_confidence is not None and h.confidence is not None:
                tag = "【置信度下降】" if h.confidence_dropped else "正常"
                p = f"，p={h.conf_p_value:.2g}" if h.conf_p_value is not None else ""
                lines.append(f"      平均置信度 {h.ref_confidence:.3f} → {h.confidence:.3f}{p}：{tag}")
        lines.append("结论：" + ("检测到显著漂移，建议抽查最近批次并用已复核数据重新训练（triage retrain）" if self.drifted else "未检测到显著漂移"))
        return "\n".join(lines)


def reference_from_manifest(manifest: dict) -> tuple[str, dict]:
    ref = manifest.get("metrics", {}).get("reference")
    if ref and ref.get("labels"):
        return "holdout_predictions", ref
    counts = manifest.get("data", {}).get("label_counts") or {}
    return "training_labels", {"labels": counts, "mean_confidence": {}, "std_confidence": {}, "conf_n": {}}


def pool_batches(batches: list[dict]) -> dict:
    labels: dict[str, dict[str, int]] = {}
    conf_sum: dict[str, float] = {}
    conf_n: dict[str, int] = {}
    for b in batches:
        st = b.get("stats") or {}
        n_scored = int(st.get("scored", st.get("rows", 0)) or 0)
        for head, counts in (st.get("labels") or {}).items():
            dst = labels.setdefault(head, {})
            for k, v in counts.items():
                dst[k] = dst.get(k, 0) + int(v)
        for head, mean in (st.get("mean_confidence") or {}).items():
            if mean is None or head not in CONFIDENCE_COLUMNS:
                continue
            n = int((st.get("conf_n") or {}).get(head) or sum((st.get("labels") or {}).get(head, {}).values()) or n_scored)
            conf_sum[head] = conf_sum.get(head, 0.0) + float(mean) * n
            conf_n[head] = conf_n.get(head, 0) + n
    mean = {h: conf_sum[h] / conf_n[h] for h in conf_sum if conf_n[h]}
    return {"labels": labels, "mean_confidence": mean, "conf_n": conf_n}


def compare(reference: dict, observed: dict, *, alpha: float = 0.01, psi_threshold: float = 0.2, conf_drop: float = 0.05) -> dict[str, HeadDrift]:
    heads = [h for h in HEADS if (reference.get("labels") or {}).get(h) and (observed.get("labels") or {}).get(h)]
    level = alpha / max(len(heads), 1)
    out = {}
    for h in heads:
        ref, obs = reference["labels"][h], observed["labels"][h]
        labels = sorted(set(ref) | set(obs))
        r = np.asarray([ref.get(k, 0) for k in labels], dtype=float)
        o = np.asarray([obs.get(k, 0) for k in labels], dtype=float)
        n = int(o.sum())
        if len(labels) > 1 and r.sum() > 0 and n > 0:
            # two-sample (homogeneity) test: the reference is a sample too, often a small one
            chi2, p, _, _ = sps.chi2_contingency(np.vstack([r, o]), correction=False)
        else:
            chi2, p = 0.0, 1.0
        d = psi(o + 0.5, r + 0.5)
        r = r + 0.5
        hd = HeadDrift(h, n, labels, (r / r.sum()).tolist(), (o / max(n, 1)).tolist(), float(chi2), float(p), d, bool(p < level and d >= psi_threshold))
        m0 = (reference.get("mean_confidence") or {}).get(h)
        m1 = (observed.get("mean_confidence") or {}).get(h)
        if h in CONFIDENCE_COLUMNS and m0 is not None and m1 is not None:
            hd.ref_confidence, hd.confidence = float(m0), float(m1)
            s0 = (reference.get("std_confidence") or {}).get(h)
            n0 = (reference.get("conf_n") or {}).get(h)
            n1 = (observed.get("conf_n") or {}).get(h)
            if s0 is not None and n0 and n1:
                se = max(float(s0), 1e-6) * math.sqrt(1 / n0 + 1 / n1)
                hd.conf_p_value = float(sps.norm.sf((m0 - m1) / se))
                hd.confidence_dropped = bool(m0 - m1 >= conf_drop and hd.conf_p_value < level)
        out[h] = hd
    return out


def drift_report(
    db_url: str,
    model: str | None = None,
    root: str | Path | None = None,
    *,
    window: int = 5,
    alpha: float = 0.01,
    psi_threshold: float = 0.2,
    conf_drop: float = 0.05,
) -> "DriftResult":
    """Compare the newest ``window`` batches scored by ``model`` (default: the champion) with its reference.

    Raises ``registry.ModelDirectoryError`` for a missing, foreign or corrupted model directory.
    """
    from .store import open_store

    directory = registry.resolve(model, root)
    manifest = registry.read_manifest(directory)
    version = manifest["version"]
    kind, ref = reference_from_manifest(manifest)
    store = open_store(db_url)
    try:
        all_batches = store.batches()
    finally:
        store.close()
    mine = [b for b in all_batches if b.get("model_version") == version][-window:] if window > 0 else []
    result = DriftResult(version, kind, [b["batch_id"] for b in mine], alpha=alpha, psi_threshold=psi_threshold, conf_drop=conf_drop)
    if not ref.get("labels"):
        result.messages.append("模型清单中没有参照分布（既无留出集预测分布，也无训练标签计数），无法检查漂移")
        result.batches = []
        return result
    if not mine:
        others = sorted({str(b.get("model_version")) for b in all_batches})
        more = f"；数据库中的批次来自模型：{'、'.join(others)}" if others else "；数据库中还没有任何分拣批次"
        result.messages.append(f"没有用模型 {version} 分拣的批次{more}")
        return result
    pooled = pool_batches(mine)
    result.heads = compare(ref, pooled, alpha=alpha, psi_threshold=psi_threshold, conf_drop=conf_drop)
    if kind == "training_labels":
        result.messages.append("该版本清单没有留出集预测分布，以训练标签分布为参照，不检查置信度")
    return result
