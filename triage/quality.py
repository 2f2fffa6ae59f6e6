"""Label quality: reviewed labels that the data itself disputes get a second look.

Confident learning (Northcutt et al., own implementation — cleanlab is not a dependency):

1. out-of-fold probabilities for every training letter (k-fold, seeded; each fold's model
   never saw the letter it scores);
2. per class j, the threshold t_j = mean predicted probability of j over the letters
   labelled j (the class's average self-confidence);
3. a letter labelled i is flagged when p_i < t_i and some other class k has p_k ≥ t_k; the
   suggested label is the k with the largest p_k - t_k.

Only clerk-reviewed labels are listed (the base corpus helps the folds but is not the
subject).  The list is sorted by how strongly the model disagrees and written as a CSV with
Chinese headers (UTF-8 with BOM, opens in Excel); titles are PII-masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from .dataset import DEFAULT_BASE, Reviewed, build_training_data, load_reviewed
from .model import TriageModel
from .normalize import mask_pii
from .schema import default_heads

CSV_COLUMNS = {
    "letter_id": "编号",
    "head": "分类项",
    "given": "人工标签",
    "suggested": "模型认为更可能",
    "p_given": "人工标签概率",
    "p_suggested": "建议标签概率",
    "threshold_given": "人工标签类别门槛",
    "user": "复核人",
    "decided_at": "复核时间",
    "title": "标题",
}


def confident_issues(given, proba: np.ndarray, classes) -> pd.DataFrame:
    """Rows (positions into ``given``) whose label confident learning disputes.

    ``given``: labels (None = unlabelled, ignored); ``proba``: out-of-fold probabilities with
    columns in ``classes`` order.  Returns position, given, suggested, p_given, p_suggested,
    threshold_given, score (p_suggested − t_suggested + t_given − p_given), sorted by score.
    """
    classes = [str(c) for c in classes]
    col = {c: j for j, c in enumerate(classes)}
    given = np.asarray([None if g is None else str(g) for g in given], dtype=object)
    proba = np.asarray(proba, dtype=float)
    known = np.asarray([g in col for g in given])
    thresholds = np.full(len(classes), np.inf)
    for c, j in col.items():
        m = given == c
        if m.any():
            thresholds[j] = proba[m, j].mean()
    rows = []
    for i in np.flatnonzero(known):
        j = col[given[i]]
        if not proba[i, j] < thresholds[j]:
            continue
        excess = proba[i] - thresholds
        excess[j] = -np.inf
        k = int(np.argmax(excess))
        if excess[k] < 0:
            continue
        rows.append(
            {
                "position": int(i),
                "given": given[i],
                "suggested": classes[k],
                "p_given": float(proba[i, j]),
                "p_suggested": float(proba[i, k]),
                "threshold_given": float(thresholds[j]),
                "score": float(excess[k] + thresholds[j] - proba[i, j]),
            }
        )
    out = pd.DataFrame(rows, columns=["position", "given", "suggested", "p_given", "p_suggested", "threshold_given", "score"])
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def out_of_fold_proba(frame: pd.DataFrame, labels: dict[str, list], *, folds: int = 3, seed: int = 0, model_params: dict | None = None) -> dict[str, tuple[np.ndarray, list[str]]]:
    """head -> (n × classes out-of-fold probabilities, classes).  Unlabelled rows get NaN."""
    n = len(frame)
    strat = labels.get("department") or labels.get("track")
    if strat is not None and all(v is not None for v in strat) and pd.Series(strat).value_counts().min() >= folds:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), [str(v) for v in strat])
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n))
    classes = {h: sorted({str(v) for v in vals if v is not None}) for h, vals in labels.items()}
    out = {h: np.full((n, len(c)), np.nan) for h, c in classes.items()}
    params = dict(model_params or {})
    params["backend_params"] = {**(params.get("backend_params") or {}), "random_state": seed}
    for tr, te in splits:
        y = {h: [vals[i] for i in tr] for h, vals in labels.items()}
        y = {h: v for h, v in y.items() if len({x for x in v if x is not None}) >= 2}
        model = TriageModel(**params).fit(frame.iloc[tr].reset_index(drop=True), y)
        proba = model.predict_proba(frame.iloc[te].reset_index(drop=True))
        for h, p in proba.items():
            for j, c in enumerate(model.classes_[h]):
                out[h][te, classes[h].index(str(c))] = p[:, j]
            missing = [k for k, c in enumerate(classes[h]) if c not in set(map(str, model.classes_[h]))]
            for k in missing:
                out[h][te, k] = 0.0
    return {h: (out[h], classes[h]) for h in out}


@dataclass
class LabelIssues:
    issues: pd.DataFrame
    reviewed_labels: int
    path: Path | None = None

    def report(self) -> str:
        lines = [f"标签质量检查：{self.reviewed_labels} 个人工复核标签中，{len(self.issues)} 个与交叉验证预测明显不符，建议二次复核"]
        for h, n in self.issues["head"].value_counts().items() if len(self.issues) else []:
            lines.append(f"  {h}：{n} 个")
        if self.path:
            lines.append(f"  清单已写入：{self.path}")
        return "\n".join(lines)


def find_label_issues(frame: pd.DataFrame, labels: dict[str, list], reviewed_mask: np.ndarray, *, folds: int = 3, seed: int = 0, model_params: dict | None = None) -> pd.DataFrame:
    """Label issues among rows where ``reviewed_mask`` is true: letter_id, head, given, suggested, …"""
    oof = out_of_fold_proba(frame, labels, folds=folds, seed=seed, model_params=model_params)
    parts = []
    for h, (proba, classes) in oof.items():
        given = [v if (v is not None and not np.isnan(proba[i]).any()) else None for i, v in enumerate(labels[h])]
        found = confident_issues(given, np.nan_to_num(proba), classes)
        found = found[reviewed_mask[found["position"].to_numpy()]] if len(found) else found
        found.insert(0, "head", h)
        found.insert(0, "letter_id", frame["id"].to_numpy()[found["position"].to_numpy()] if len(found) else [])
        parts.append(found)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True) if len(out) else out


def flag_label_issues(
    db_url: str,
    base: str | Path | None = None,
    out: str | Path | None = None,
    *,
    folds: int = 3,
    seed: int = 0,
    model_params: dict | None = None,
    taxonomy: str | Path | None = None,
) -> LabelIssues:
    """List the reviewed labels to look at again; writes a CSV when ``out`` is given."""
    from .store import open_store
    from .train import load_training_set

    store = open_store(db_url, taxonomy=taxonomy)
    try:
        reviewed = load_reviewed(store)
    finally:
        store.close()
    heads = default_heads(taxonomy)
    ts = load_training_set(Path(base) if base else DEFAULT_BASE, {h: h for h in ("track", "route", "department", "risk")})
    # every letter takes part (no held-out sets): the folds provide the out-of-sample view
    td = build_training_data(ts.frame, ts.labels, [], reviewed, heads, recent_fraction=0.0)
    reviewed_ids = set(reviewed.labels["letter_id"].astype(str))
    mask = td.frame["id"].astype(str).isin(reviewed_ids).to_numpy()
    # only the reviewed heads of a reviewed letter are its clerk's labels
    rev_heads = {(str(r.letter_id), str(r.head)) for r in reviewed.labels.itertuples(index=False)}
    issues = find_label_issues(td.frame, td.labels, mask, folds=folds, seed=seed, model_params=model_params)
    if len(issues):
        keep = [(lid, h) in rev_heads for lid, h in zip(issues["letter_id"].astype(str), issues["head"])]
        issues = issues[keep].reset_index(drop=True)
    info = reviewed.labels.assign(letter_id=reviewed.labels["letter_id"].astype(str)).set_index(["letter_id", "head"])
    users = _users(db_url, taxonomy)
    issues["decided_at"] = [str(info.loc[(lid, h), "decided_at"]) if (lid, h) in info.index else "" for lid, h in zip(issues.get("letter_id", []), issues.get("head", []))]
    issues["user"] = [users.get((lid, h), "") for lid, h in zip(issues.get("letter_id", []), issues.get("head", []))]
    titles = dict(zip(reviewed.letters["id"].astype(str), reviewed.letters["title"].fillna("").astype(str)))
    issues["title"] = [mask_pii(titles.get(lid, "")) for lid in issues.get("letter_id", [])]
    result = LabelIssues(issues, len(rev_heads))
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = issues.reindex(columns=list(CSV_COLUMNS)).rename(columns=CSV_COLUMNS)
        table["分类项"] = table["分类项"].map(lambda h: {"track": "办理类别", "route": "法律途径", "department": "责任单位", "risk": "风险等级"}.get(h, h))
        for c in ("人工标签概率", "建议标签概率", "人工标签类别门槛"):
            table[c] = table[c].astype(float).round(3)
        table.to_csv(path, index=False, encoding="utf-8-sig")
        result.path = path
    return result


def _users(db_url: str, taxonomy) -> dict[tuple[str, str], str]:
    from .store import open_store

    store = open_store(db_url, taxonomy=taxonomy)
    try:
        cur = store.current_labels()
    finally:
        store.close()
    return {(str(r.letter_id), str(r.head)): str(r.user) for r in cur.itertuples(index=False)}


__all__ = ["confident_issues", "find_label_issues", "flag_label_issues", "out_of_fold_proba", "LabelIssues", "Reviewed"]
