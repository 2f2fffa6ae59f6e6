"""Metrics and plots: per-head precision/recall/F1, macro-F1, reliability, confusion matrices.

``evaluate_model`` scores a labelled frame and returns JSON-ready metrics; rows whose label is
unknown to the model are skipped and counted (a reported skip, not a crash).  ``write_report``
saves ``metrics.json`` and, per head, a confusion matrix and a reliability diagram as PNG.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_fscore_support

from .schema import TRACK_LITIGATION


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Reliability table of top-label confidence and the expected calibration error (ECE)."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    table, ece = [], 0.0
    for b in range(n_bins):
        m = bins == b
        if not m.any():
            continue
        conf, acc = float(confidence[m].mean()), float(correct[m].mean())
        ece += m.mean() * abs(conf - acc)
        table.append({"bin": [float(edges[b]), float(edges[b + 1])], "n": int(m.sum()), "confidence": conf, "accuracy": acc})
    return {"ece": float(ece), "bins": table}


def head_metrics(y_true, y_pred, proba: np.ndarray | None, classes) -> dict:
    classes = [str(c) for c in classes]
    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    present = [c for c in classes if c in set(y_true) or c in set(y_pred)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    with warnings.catch_warnings():  # one label present (a small recent set): a 1×1 matrix is the right answer
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        confusion = confusion_matrix(y_true, y_pred, labels=present).tolist()
    out = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "macro_f1": float(np.mean(f)) if len(f) else float("nan"),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])} for i, c in enumerate(present)},
        "labels": present,
        "confusion": confusion,
    }
    if proba is not None and len(y_true):
        conf = proba.max(axis=1)
        out["reliability"] = reliability(conf, y_true == y_pred)
    return out


def evaluate_model(model, frame: pd.DataFrame, labels: dict[str, list]) -> dict:
    """Metrics per head on labelled letters; unknown labels and unlabelled rows are skipped and counted."""
    proba = model.predict_proba(frame)
    result = {"heads": {}, "skipped": {}}
    track_pred = None
    if "track" in proba:
        track_pred = model.classes_["track"][np.argmax(proba["track"], axis=1)]
    for head, y in labels.items():
        if head not in proba:
            result["skipped"][head] = {"reason": f"模型没有分类头 “{head}”"}
            continue
        classes = [str(c) for c in model.classes_[head]]
        y = np.asarray([None if v is None or v != v or str(v) == "" else str(v) for v in y], dtype=object)
        known = np.array([v in classes for v in y])
        unknown = sorted({v for v in y if v is not None and v not in classes})
        mask = known.copy()
        if head == "route" and "track" in labels:  # route is judged on true 涉法涉诉 letters
            mask &= np.asarray([t == TRACK_LITIGATION for t in labels["track"]])
        if unknown or (~known & (y != None)).any():  # noqa: E711
            result["skipped"][head] = {"unknown_labels": unknown, "rows": int(((~known) & (y != None)).sum())}  # noqa: E711
        if mask.sum() == 0:
            continue
        p = proba[head][mask]
        pred = np.asarray(classes, dtype=object)[np.argmax(p, axis=1)]
        result["heads"][head] = head_metrics(y[mask], pred, p, classes)
    if "track" in result["heads"] and TRACK_LITIGATION in model.classes_["track"]:
        col = list(model.classes_["track"]).index(TRACK_LITIGATION)
        y = np.asarray([str(v) == TRACK_LITIGATION for v in labels["track"]])
        if 0 < y.sum() < len(y):
            result["heads"]["track"]["litigation_pr_auc"] = float(average_precision_score(y, proba["track"][:, col]))
    return result


def plot_confusion(metrics: dict, head: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _use_cjk_font(plt)
    labels = metrics["labels"]
    cm = np.asarray(metrics["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("预测 predicted")
    ax.set_ylabel("真实 true")
    ax.set_title(f"{head}: macro-F1 {metrics['macro_f1']:.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(metrics: dict, head: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _use_cjk_font(plt)
    rel = metrics["reliability"]
    conf = [b["confidence"] for b in rel["bins"]]
    acc = [b["accuracy"] for b in rel["bins"]]
    n = [b["n"] for b in rel["bins"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(conf, acc, "o-", label=f"{head} (ECE {rel['ece']:.3f})")
    for c, a, k in zip(conf, acc, n):
        ax.annotate(str(k), (c, a), textcoords="offset points", xytext=(3, -10), fontsize=7)
    ax.set_xlabel("置信度 confidence")
    ax.set_ylabel("准确率 accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(metrics: dict, out_dir: str | Path) -> list[Path]:
    """metrics.json plus confusion and reliability PNGs per head."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "metrics.json"]
    written[0].write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    for head, m in metrics.get("heads", {}).items():
        written.append(plot_confusion(m, head, out_dir / f"confusion_{head}.png"))
        if "reliability" in m:
            written.append(plot_reliability(m, head, out_dir / f"reliability_{head}.png"))
    return written


def summary_table(metrics: dict) -> str:
    rows = ["head        n     accuracy  macro-F1  ECE"]
    for head, m in metrics.get("heads", {}).items():
        ece = m.get("reliability", {}).get("ece", float("nan"))
        rows.append(f"{head:<10} {m['n']:>5}   {m['accuracy']:.3f}     {m['macro_f1']:.3f}     {ece:.3f}")
    for head, s in metrics.get("skipped", {}).items():
        rows.append(f"{head}: 跳过 {s}")
    return "\n".join(rows)


def _use_cjk_font(plt) -> None:
    """Use a CJK font when one is installed, so Chinese labels are not boxes."""
    from matplotlib import font_manager

    for name in ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            plt.rcParams["axes.unicode_minus"] = False
            return


def evaluate_file(model: str | Path | None, data: str | Path, *, out: str | Path | None = None, log=print) -> dict:
    """``triage evaluate``: load a model, read a labelled file, write metrics.json and plots."""
    from . import registry
    from .train import load_training_set

    mdl, manifest = registry.load_model(model)
    label_columns = manifest.get("training", {}).get("label_columns") or {h: h for h in mdl.heads_}
    ts = load_training_set(data, label_columns, require_all=False, strict_labels=False)
    metrics = evaluate_model(mdl, ts.frame, ts.labels)
    metrics["model_version"] = manifest["version"]
    metrics["data"] = {"path": str(data), "sha256": ts.sha256, "rows": len(ts.frame), "skipped_rows": len(ts.skipped_rows)}
    out = Path(out) if out else Path(data).resolve().parent / f"evaluation_{manifest['version']}"
    write_report(metrics, out)
    log(summary_table(metrics))
    log(f"报告已写入 {out}")
    return metrics
