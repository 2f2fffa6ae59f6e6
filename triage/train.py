"""Training runs: read a labelled file, split, fit, evaluate, and write a model version.

``train_version`` is what ``triage train`` calls.  The split is a stratified holdout fixed by
the seed; the saved model is the one trained on the training part, so the metrics in its
manifest are honest held-out figures for exactly that file, and re-running the same command
on the same data reproduces them.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from . import evaluate as ev
from . import registry
from .io import read_table
from .model import DEFAULT_HEADS, TriageModel
from .schema import SchemaError, TRACK_LITIGATION, default_heads, validate_labels


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    labels: dict[str, list]
    source: str
    sha256: str
    skipped_rows: list[int]


def parse_label_specs(specs: list[str] | None) -> dict[str, str]:
    """``["department=责任单位", "risk"]`` -> {"department": "责任单位", "risk": "risk"}."""
    if not specs:
        return {h: h for h in DEFAULT_HEADS}
    out = {}
    for s in specs:
        head, _, col = s.partition("=")
        head, col = head.strip(), (col or head).strip()
        if not head:
            raise ValueError(f"--label 应为 HEAD=COLUMN，实际为 “{s}”")
        out[head] = col
    return out


def data_hash(path: str | Path) -> str:
    return registry.sha256_file(path)


def load_training_set(
    path: str | Path, label_columns: Mapping[str, str], *, text_col: str | None = None, taxonomy=None, require_all: bool = True, strict_labels: bool = True
) -> TrainingSet:
    """Read and validate a labelled file: known heads are checked against their label sets.

    With ``require_all=False`` heads whose label column is absent are left out (evaluation
    on a file that labels only some heads); at least one must be present.  With
    ``strict_labels=False`` labels outside a head's set are kept as they are, so evaluation can
    count and skip them instead of stopping.
    """
    path = Path(path)
    table = read_table(path)
    frame = table.frame
    if text_col:
        if text_col not in frame.columns:
            raise SchemaError("找不到指定的文本列", source=str(path), column=text_col, found="、".join(map(str, frame.columns)))
        frame = frame.assign(text=frame[text_col].fillna("").astype(str))
    heads = default_heads(taxonomy)
    labels: dict[str, list] = {}
    if not require_all:
        label_columns = {h: c for h, c in label_columns.items() if c in frame.columns}
        if not label_columns:
            raise SchemaError("没有任何标签列", source=str(path), expected="track/route/department/risk 之一", found="、".join(map(str, frame.columns)))
    for head, col in label_columns.items():
        if col not in frame.columns:
            raise SchemaError(
                f"缺少分类头 “{head}” 的标签列", source=str(path), column=col, expected=col, found="、".join(map(str, frame.columns))
            )
        if head in heads and strict_labels:
            labels[head] = validate_labels(frame[col], heads[head], source=str(path), column=col)
        else:
            labels[head] = [None if (v is None or v != v or str(v).strip() == "") else str(v).strip() for v in frame[col]]
    if "route" in labels and "track" in labels:
        labels["route"] = [r if t == TRACK_LITIGATION else None for r, t in zip(labels["route"], labels["track"])]
    skipped = sorted(table.report.row_errors)
    if skipped:
        keep = np.ones(len(frame), dtype=bool)
        keep[skipped] = False
        frame = frame[keep].reset_index(drop=True)
        labels = {h: [v for v, k in zip(vals, keep) if k] for h, vals in labels.items()}
    return TrainingSet(frame.reset_index(drop=True), labels, str(path), data_hash(path), skipped)


def split_indices(labels: Mapping[str, list], n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified holdout on the first head whose every class has two or more letters."""
    idx = np.arange(n)
    for head in ("department", "track", *labels):
        if head not in labels:
            continue
        y = np.asarray([str(v) for v in labels[head]])
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2:
            return train_test_split(idx, test_size=holdout, random_state=seed, stratify=y)
    return train_test_split(idx, test_size=holdout, random_state=seed)


def _subset(labels: Mapping[str, list], idx: np.ndarray) -> dict[str, list]:
    return {h: [v[i] for i in idx] for h, v in labels.items()}


def train_version(
    data: str | Path,
    *,
    label_columns: Mapping[str, str] | None = None,
    text_col: str | None = None,
    out: str | Path | None = None,
    version: str | None = None,
    holdout: float = 0.2,
    seed: int = 0,
    model_params: dict | None = None,
    promote: bool = False,
    log=None,
) -> tuple[Path, dict]:
    """Train, evaluate on the holdout, and save ``<out>/<version>/``; returns (dir, metrics)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    label_columns = dict(label_columns or {h: h for h in DEFAULT_HEADS})
    t0 = time.perf_counter()
    ts = load_training_set(data, label_columns, text_col=text_col)
    log(f"读取 {ts.source}：{len(ts.frame)} 条（跳过空信件 {len(ts.skipped_rows)} 条），数据校验值 {ts.sha256[:12]}")
    tr, te = split_indices(ts.labels, len(ts.frame), holdout, seed)
    params = dict(model_params or {})
    params.setdefault("backend_params", {})
    params["backend_params"] = {**params["backend_params"], "random_state": seed}
    if label_columns != {h: h for h in DEFAULT_HEADS}:
        params["label_columns"] = {h: h for h in label_columns}
    model = TriageModel(**params)
    log(f"训练 {model.backend}：训练集 {len(tr)} 条，留出集 {len(te)} 条 …")
    model.fit(ts.frame.iloc[tr].reset_index(drop=True), _subset(ts.labels, tr))
    t_fit = time.perf_counter() - t0
    log(f"训练完成（{t_fit:.1f} 秒），在留出集上评估 …")
    metrics = ev.evaluate_model(model, ts.frame.iloc[te].reset_index(drop=True), _subset(ts.labels, te))
    metrics["split"] = {"train": int(len(tr)), "holdout": int(len(te)), "seed": seed, "holdout_fraction": holdout}
    counts = {h: pd.Series([v for v in vals if v is not None]).value_counts().to_dict() for h, vals in ts.labels.items()}
    directory = registry.save_version(
        model,
        root=out,
        version=version,
        metrics=metrics,
        data={"path": str(data), "sha256": ts.sha256, "rows": len(ts.frame), "skipped_rows": len(ts.skipped_rows), "label_counts": counts},
        training={"seed": seed, "holdout": holdout, "label_columns": label_columns, "text_col": text_col, "seconds": round(time.perf_counter() - t0, 1)},
    )
    ev.write_report(metrics, directory / "report")
    log(ev.summary_table(metrics))
    log(f"模型已保存：{directory}")
    if promote:
        registry.set_champion(directory.name, directory.parent, reason="trained with --promote")
        log(f"已设为冠军模型：{directory.name}")
    return directory, metrics
