"""Retraining runs: base corpus + clerks' reviewed labels -> challenger -> gate -> champion.

``retrain(db_url)`` is what ``triage retrain --db URL [--base FILE]`` calls:

1. read the latest human decision per letter and head (:func:`triage.dataset.load_reviewed`);
   with none at all nothing is trained (status ``no_labels``) — retraining on the base
   corpus alone is ``triage train``'s job;
2. build the de-duplicated training set (:func:`triage.dataset.build_training_data`), keeping
   the fixed held-out part of the base corpus and the newest reviewed letters out;
3. fit the challenger with the seed, evaluate challenger and champion on both sets;
4. save the challenger as a new version (manifest, model card, metrics, the label snapshot
   and the evaluation ids) — atomically, whatever the gate says;
5. only then, and only if the gate (:func:`triage.gate.decide`) agrees, point CHAMPION at it.
   Any exception before step 5 leaves the champion untouched.

``reproduce(version_dir)`` re-runs a version's training from its manifest (data path and
hash, label snapshot, config, seed) and compares the metrics.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import evaluate as ev
from . import gate, registry
from .dataset import DEFAULT_BASE, HEADS, DatasetReport, Reviewed, TrainingData, build_training_data, load_reviewed
from .drift import prediction_stats
from .model import DEFAULT_HEADS, TriageModel
from .schema import default_heads
from .train import load_training_set, split_indices

SNAPSHOT_FILE = "labels_snapshot.csv"
HOLDOUT_FILE = "holdout_ids.txt"
RECENT_FILE = "recent_ids.txt"
REPORT_FILE = "RETRAIN_REPORT.txt"


def _display(h: str) -> str:
    return gate.HEAD_DISPLAY.get(h, h)


def _mask_url(url: str) -> str:
    import sqlalchemy as sa

    from .store import normalize_url

    try:
        return sa.engine.make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as given, minus nothing secret
        return "（无法解析的数据库地址）"


@dataclass
class RetrainResult:
    #: promoted | kept | saved (gate passed, promote=False) | no_labels
    status: str
    dataset: DatasetReport
    version: str | None = None
    directory: Path | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    decision: gate.GateDecision | None = None
    metrics: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def report(self) -> str:
        d = self.dataset
        lines = ["重新训练（triage retrain）"]
        lines += [f"  {m}" for m in self.messages]
        if d.unknown_labels:
            shown = "；".join(f"{lid} 的{_display(h)}“{lab}”" for lid, h, lab in d.unknown_labels[:20])
            more = f" 等（共 {len(d.unknown_labels)} 个）" if len(d.unknown_labels) > 20 else ""
            lines.append(f"  跳过不在当前标签集中的复核标签 {len(d.unknown_labels)} 个：{shown}{more}")
        if self.status == "no_labels":
            return "\n".join(lines)
        n_corr = sum(sum(v.values()) for v in d.corrected.values())
        lines.append(f"  人工复核：{d.reviewed_letters} 件，其中最近 {d.recent_letters} 件留作评估；训练使用复核标签 {d.reviewed_used} 个（其中改正 {n_corr} 个）")
        for h, counts in d.used.items():
            corr = d.corrected.get(h, {})
            parts = "，".join(f"{k} {v}" + (f"（改正 {corr[k]}）" if corr.get(k) else "") for k, v in counts.items())
            lines.append(f"    {_display(h)}：{parts}")
        lines.append(
            f"  近似重复（Jaccard ≥ 0.9）：基础语料内合并 {d.base_duplicates_merged} 件；复核件并入重复件 {d.reviewed_merged_into_base} 件；"
            f"复核标签覆盖基础语料标签 {sum(d.overrides.values())} 个；与评估集重复、不参与训练 {d.dropped_eval_overlap} 件"
        )
        lines.append(f"  训练集 {d.training_rows} 件；固定留出集 {d.holdout_rows} 件；最近复核集 {d.recent_letters} 件")
        for h, classes in d.one_class_heads.items():
            lines.append(f"  分类头 {_display(h)} 只有 {len(classes)} 个类别（{'、'.join(classes) or '无'}），本次不训练该头")
        if self.directory:
            lines.append(f"  挑战者已保存：{self.directory}")
        if self.decision:
            lines.append(gate.decision_text(self.decision))
        if self.status == "promoted":
            lines.append(f"  冠军模型：{self.champion_before or '（无）'} → {self.champion_after}")
        elif self.status == "saved":
            lines.append(f"  按要求不自动晋升；如需晋升：triage models promote {self.version}")
        else:
            lines.append(f"  冠军模型保持不变：{self.champion_before or '（无）'}")
        lines.append(f"  用时 {self.seconds:.1f} 秒")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Shared steps
# --------------------------------------------------------------------------------------


def _model_params(model_params: dict | None, seed: int) -> dict:
    params = dict(model_params or {})
    params["backend_params"] = {**(params.get("backend_params") or {}), "random_state": seed}
    return params


def _evaluate(model, frame: pd.DataFrame, labels: dict[str, list]) -> dict:
    if len(frame) == 0:
        return {"heads": {}, "skipped": {}, "n": 0}
    out = ev.evaluate_model(model, frame, labels)
    out["n"] = int(len(frame))
    return out


def _fit(td: TrainingData, params: dict) -> TriageModel:
    y = {h: v for h, v in td.labels.items() if h not in td.report.one_class_heads}
    model = TriageModel(**params)
    if y and "label_columns" not in params and set(y) != set(DEFAULT_HEADS):
        model.set_params(label_columns={h: h for h in y})
    return model.fit(td.frame, y)


def _base_and_split(base: Path, holdout: float, seed: int):
    ts = load_training_set(base, {h: h for h in DEFAULT_HEADS})
    tr, te = split_indices(ts.labels, len(ts.frame), holdout, seed)
    return ts, np.sort(te)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------
# retrain
# --------------------------------------------------------------------------------------


def retrain(
    db_url: str,
    base: str | Path | None = None,
    *,
    root: str | Path | None = None,
    tolerance: float = 0.01,
    min_gain: float = 0.0,
    min_recent: int = 30,
    seed: int = 0,
    holdout: float = 0.2,
    recent_fraction: float = 0.2,
    threshold: float = 0.9,
    promote: bool = True,
    model_params: dict | None = None,
    taxonomy: str | Path | None = None,
    plots: bool = True,
    version: str | None = None,
    log: Callable[[str], None] | None = None,
    _after_save: Callable[[Path], None] | None = None,
) -> RetrainResult:
    """Train a challenger on base corpus + reviewed labels and promote it if the gate agrees.

    ``log`` receives progress lines (default: stderr); the caller prints ``result.report()``.
    Raises ``SchemaError`` for an unreadable base corpus and ``StoreError`` for a database
    that cannot be opened; a champion that cannot be loaded is reported, not raised.
    """
    from .store import open_store

    log = log or (lambda m: print(m, file=sys.stderr))
    t0 = time.perf_counter()
    base = Path(base) if base else DEFAULT_BASE
    heads = default_heads(taxonomy)
    store = open_store(db_url, taxonomy=taxonomy)
    try:
        reviewed = load_reviewed(store)
    finally:
        store.close()
    champion_before = registry.champion(root)
    valid = [(r.head in heads and r.label in heads[r.head].labels) for r in reviewed.labels.itertuples(index=False)]
    if not any(valid):
        rep = DatasetReport(unknown_labels=[(str(r.letter_id), str(r.head), str(r.label)) for r in reviewed.labels.itertuples(index=False) if r.head in heads])
        msg = "数据库中没有可用的人工复核标签，未训练新模型（只用基础语料训练请用 triage train）"
        res = RetrainResult("no_labels", rep, champion_before=champion_before, champion_after=champion_before, messages=[msg])
        res.seconds = time.perf_counter() - t0
        return res

    log(f"读取基础语料 {base} …")
    ts, te = _base_and_split(base, holdout, seed)
    td = build_training_data(ts.frame, ts.labels, te, reviewed, heads, recent_fraction=recent_fraction, threshold=threshold)
    rep = td.report
    params = _model_params(model_params, seed)
    log(f"训练挑战者：{rep.training_rows} 件（复核标签 {rep.reviewed_used} 个）…")
    challenger = _fit(td, params)
    metrics = {"challenger": {"holdout": _evaluate(challenger, td.holdout_frame, td.holdout_labels), "recent": _evaluate(challenger, td.recent_frame, td.recent_labels)}}

    messages: list[str] = []
    champ_metrics, champ_error = None, None
    if champion_before:
        try:
            champ, champ_manifest = registry.load_model(None, root)
            metrics["champion"] = {"holdout": _evaluate(champ, td.holdout_frame, td.holdout_labels), "recent": _evaluate(champ, td.recent_frame, td.recent_labels)}
            champ_metrics = metrics["champion"]
            if champ_manifest.get("data", {}).get("sha256") not in (None, ts.sha256):
                messages.append("注意：冠军模型的训练数据与本次基础语料不同，固定留出集中可能有它训练过的信件，比较对冠军偏有利")
        except registry.ModelDirectoryError as exc:
            champ_error = str(exc)
            messages.append(f"冠军模型 {champion_before} 无法加载：{exc}")
    required = tuple(h for h in HEADS if h in ts.labels)
    decision = gate.decide(
        champ_metrics,
        metrics["challenger"],
        tolerance=tolerance,
        min_gain=min_gain,
        min_recent=min_recent,
        recent_letters=rep.recent_letters,
        required_heads=required,
        champion_error=champ_error,
    )

    reference = prediction_stats(challenger.predict(td.holdout_frame)) if len(td.holdout_frame) else {}
    snapshot = reviewed.snapshot()
    snapshot_csv = snapshot.to_csv(index=False)
    hold_txt = "\n".join(td.holdout_ids) + "\n"
    recent_txt = "\n".join(td.recent_ids) + "\n"
    hm = metrics["challenger"]["holdout"]
    saved_metrics = {
        "heads": hm["heads"],
        "skipped": hm["skipped"],
        "split": {"train": rep.training_rows, "holdout": rep.holdout_rows, "recent": rep.recent_letters, "seed": seed, "holdout_fraction": holdout},
        "recent": metrics["challenger"]["recent"],
        "champion": {"version": champion_before, **(champ_metrics or {})},
        "gate": decision.as_dict(),
        "reference": reference,
    }
    data = {
        "path": str(base),
        "abs_path": str(base.resolve()),
        "sha256": ts.sha256,
        "rows": rep.training_rows,
        "label_counts": rep.label_counts,
        "training_set_sha256": td.sha256(),
        "reviewed": {
            "db": _mask_url(db_url),
            "letters": rep.reviewed_letters,
            "labels_used": rep.reviewed_used,
            "snapshot_file": SNAPSHOT_FILE,
            "snapshot_sha256": _sha256_text(snapshot_csv),
        },
        "holdout": {"n": len(td.holdout_ids), "file": HOLDOUT_FILE, "ids_sha256": _sha256_text(hold_txt)},
        "recent": {"n": len(td.recent_ids), "file": RECENT_FILE, "ids_sha256": _sha256_text(recent_txt)},
        "dataset_report": rep.as_dict(),
    }
    training = {
        "kind": "retrain",
        "seed": seed,
        "holdout": holdout,
        "recent_fraction": recent_fraction,
        "dedup_threshold": threshold,
        "tolerance": tolerance,
        "min_gain": min_gain,
        "min_recent": min_recent,
        "taxonomy": str(taxonomy) if taxonomy else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, text in ((SNAPSHOT_FILE, snapshot_csv), (HOLDOUT_FILE, hold_txt), (RECENT_FILE, recent_txt)):
            (Path(tmp) / name).write_text(text, encoding="utf-8")
            files[name] = Path(tmp) / name
        directory = registry.save_version(challenger, root=root, version=version, metrics=saved_metrics, data=data, training=training, extra_files=files)
    if plots:
        ev.write_report(hm, directory / "report")
    if _after_save is not None:
        _after_save(directory)

    result = RetrainResult(
        "kept",
        rep,
        version=directory.name,
        directory=directory,
        champion_before=champion_before,
        champion_after=champion_before,
        decision=decision,
        metrics=metrics,
        messages=messages,
    )
    if decision.promote and promote:
        registry.set_champion(directory.name, root, reason="retrain: " + "；".join(decision.reasons))
        result.status, result.champion_after = "promoted", directory.name
    elif decision.promote:
        result.status = "saved"
    result.seconds = time.perf_counter() - t0
    (directory / REPORT_FILE).write_text(result.report() + "\n", encoding="utf-8")
    log(f"完成：{'已晋升为冠军' if result.promoted else '冠军模型未变'}（详见 {directory / REPORT_FILE}）")
    return result


# --------------------------------------------------------------------------------------
# reproduce
# --------------------------------------------------------------------------------------


@dataclass
class ReproduceResult:
    version: str
    ok: bool
    #: rows: set, head, metric, saved, now
    compared: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"复现模型 {self.version}：" + ("指标一致" if self.ok else "未能复现")]
        lines += [f"  {m}" for m in self.messages]
        for r in self.compared:
            same = "一致" if r["same"] else "不一致"
            lines.append(f"  {r['set']:<8} {_display(r['head'])}  {r['metric']}：清单 {r['saved']:.6f}，重跑 {r['now']:.6f}（{same}）")
        return "\n".join(lines)


def _compare(saved: dict, now: dict, set_name: str, out: list[dict], tol: float) -> bool:
    ok = True
    for head, m in (saved.get("heads") or {}).items():
        n = (now.get("heads") or {}).get(head)
        for metric in ("macro_f1", "accuracy"):
            a = m.get(metric)
            b = None if n is None else n.get(metric)
            same = a is not None and b is not None and abs(a - b) <= tol
            ok &= same
            out.append({"set": set_name, "head": head, "metric": metric, "saved": float(a if a is not None else np.nan), "now": float(b if b is not None else np.nan), "same": same})
    extra = set((now.get("heads") or {})) - set((saved.get("heads") or {}))
    return ok and not extra


def reproduce(version_dir: str | Path, db_url: str | None = None, *, root: str | Path | None = None, tol: float = 1e-9) -> ReproduceResult:
    """Re-run a version's training from its manifest and compare the metrics.

    Works for versions made by ``triage retrain`` (base file + label snapshot + letter texts
    from the review database: ``db_url``, else the one recorded) and by ``triage train``
    (data file + label columns + seed).  The data file must still have the recorded hash.
    """
    directory = registry.resolve(str(version_dir), root)
    manifest = registry.read_manifest(directory)
    res = ReproduceResult(manifest["version"], False)
    data, training, config = manifest.get("data", {}), manifest.get("training", {}), dict(manifest["config"])
    path = Path(data.get("abs_path") or data.get("path") or "")
    if not path.is_file():
        res.messages.append(f"找不到训练数据文件：{path}")
        return res
    sha = registry.sha256_file(path)
    if sha != data.get("sha256"):
        res.messages.append(f"训练数据已改变：{path} 的校验值为 {sha[:12]}…，清单记录为 {str(data.get('sha256'))[:12]}…")
        return res
    seed, holdout = int(training.get("seed", 0)), float(training.get("holdout", 0.2))
    saved = manifest.get("metrics", {})
    if training.get("kind") == "retrain":
        from .store import open_store

        snap_path = directory / data["reviewed"]["snapshot_file"]
        if _sha256_text(snap_path.read_text(encoding="utf-8")) != data["reviewed"]["snapshot_sha256"]:
            res.messages.append(f"{snap_path} 的校验值与清单不符")
            return res
        labels = pd.read_csv(snap_path, dtype={"letter_id": str, "head": str, "label": str, "kind": str}, keep_default_na=False)
        url = db_url or data["reviewed"]["db"]
        store = open_store(url, taxonomy=training.get("taxonomy"))
        try:
            reviewed = load_reviewed(store, labels=labels)
        finally:
            store.close()
        ts, te = _base_and_split(path, holdout, seed)
        td = build_training_data(
            ts.frame,
            ts.labels,
            te,
            reviewed,
            default_heads(training.get("taxonomy")),
            recent_fraction=float(training.get("recent_fraction", 0.2)),
            threshold=float(training.get("dedup_threshold", 0.9)),
        )
        if td.sha256() != data.get("training_set_sha256"):
            res.messages.append("重建的训练集与清单记录不同（数据库中的信件内容可能已被重新导入），指标可能不同")
        model = _fit(td, config)
        ok = _compare(saved, _evaluate(model, td.holdout_frame, td.holdout_labels), "holdout", res.compared, tol)
        ok &= _compare(saved.get("recent", {}), _evaluate(model, td.recent_frame, td.recent_labels), "recent", res.compared, tol)
    else:
        label_columns = training.get("label_columns") or {h: h for h in DEFAULT_HEADS}
        ts = load_training_set(path, label_columns, text_col=training.get("text_col"))
        tr, te = split_indices(ts.labels, len(ts.frame), holdout, seed)
        model = TriageModel(**config).fit(ts.frame.iloc[tr].reset_index(drop=True), {h: [v[i] for i in tr] for h, v in ts.labels.items()})
        now = ev.evaluate_model(model, ts.frame.iloc[te].reset_index(drop=True), {h: [v[i] for i in te] for h, v in ts.labels.items()})
        ok = _compare(saved, now, "holdout", res.compared, tol)
    res.ok = bool(ok and res.compared)
    return res


# --------------------------------------------------------------------------------------
# CLI-facing helpers re-exported for the lead's cli.py
# --------------------------------------------------------------------------------------

models_list = gate.models_list
models_show = gate.models_show
models_promote = gate.models_promote
models_rollback = gate.models_rollback


def drift_report(db_url: str, model: str | None = None, root: str | Path | None = None, **kwargs):
    from .drift import drift_report as _drift

    return _drift(db_url, model, root, **kwargs)


def flag_label_issues(db_url: str, base: str | Path | None = None, out: str | Path | None = None, **kwargs):
    from .quality import flag_label_issues as _flag

    return _flag(db_url, base, out, **kwargs)


__all__ = [
    "RetrainResult",
    "ReproduceResult",
    "retrain",
    "reproduce",
    "models_list",
    "models_show",
    "models_promote",
    "models_rollback",
    "drift_report",
    "flag_label_issues",
    "Reviewed",
]
