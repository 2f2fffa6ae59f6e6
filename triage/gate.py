"""The promotion gate (challenger vs champion) and the ``triage models`` texts.

Rule (:func:`decide`):

1. A challenger that lacks a head the champion has (for example a head left out because
   it had one class) is refused.
2. Without a champion, the challenger is promoted.
3. On the fixed held-out set and on the recent reviewed set, no head's macro-F1 may drop by
   more than ``tolerance`` (default 0.01).  A head is checked on a set when it has at least
   ``min_recent`` (30) labelled letters there: below that one letter moves macro-F1 by
   several points and the comparison is noise (shown as “件数不足，不检查”).
4. The primary metric — the mean macro-F1 over the heads both models have (those with at
   least ``min_recent`` letters; all common heads if none has), on the recent reviewed set
   when it holds at least ``min_recent`` letters, else on the held-out set — must improve:
   gain > 0 and gain ≥ ``min_gain``.

Every refusal says why, in Chinese, with the numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import registry

SET_NAMES = {"holdout": "固定留出集", "recent": "最近复核集"}
HEAD_DISPLAY = {"track": "办理类别", "route": "法律途径", "department": "责任单位", "risk": "风险等级"}


def _head(h: str) -> str:
    return f"{HEAD_DISPLAY.get(h, h)}（{h}）"


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str]
    primary_set: str | None = None
    champion_primary: float | None = None
    challenger_primary: float | None = None
    #: rows: set, head, champion, challenger, delta, n, checked
    table: list[dict] = field(default_factory=list)

    @property
    def gain(self) -> float | None:
        if self.champion_primary is None or self.challenger_primary is None:
            return None
        return self.challenger_primary - self.champion_primary

    def as_dict(self) -> dict:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "primary_set": self.primary_set,
            "champion_primary": self.champion_primary,
            "challenger_primary": self.challenger_primary,
            "gain": self.gain,
            "table": self.table,
        }


def _f1s(metrics: dict | None) -> dict[str, tuple[float, int]]:
    out = {}
    for h, m in ((metrics or {}).get("heads") or {}).items():
        f = m.get("macro_f1")
        if f is not None and not np.isnan(f):
            out[h] = (float(f), int(m.get("n", 0)))
    return out


def decide(
    champion: dict | None,
    challenger: dict,
    *,
    tolerance: float = 0.01,
    min_gain: float = 0.0,
    min_recent: int = 30,
    recent_letters: int = 0,
    required_heads: tuple[str, ...] = (),
    champion_error: str | None = None,
) -> GateDecision:
    """``champion`` / ``challenger``: {"holdout": metrics, "recent": metrics} (evaluate_model output)."""
    missing = [h for h in required_heads if h not in _f1s(challenger.get("holdout"))]
    if champion_error:
        return GateDecision(False, [f"冠军模型无法加载，不能比较，保留现状：{champion_error}；请检查模型目录，或用 triage models promote 指定冠军"])
    if champion is None:
        if missing:
            return GateDecision(False, [f"挑战者缺少分类头 {'、'.join(map(_head, missing))}，不设为冠军"])
        return GateDecision(True, ["当前没有冠军模型，挑战者直接成为冠军"])
    reasons: list[str] = []
    lacking = [h for h in _f1s(champion.get("holdout")) if h not in _f1s(challenger.get("holdout"))]
    if lacking or missing:
        reasons.append(f"挑战者缺少冠军具有的分类头 {'、'.join(map(_head, sorted(set(lacking) | set(missing))))}")
    table: list[dict] = []
    use_recent = recent_letters >= min_recent and bool(_f1s(challenger.get("recent")))
    for set_name in ("holdout", "recent"):
        a, b = _f1s(champion.get(set_name)), _f1s(challenger.get(set_name))
        for h in [h for h in a if h in b]:
            (fa, n), (fb, _) = a[h], b[h]
            checked = n >= min_recent
            delta = fb - fa
            table.append({"set": set_name, "head": h, "champion": fa, "challenger": fb, "delta": delta, "n": n, "checked": checked})
            if checked and delta < -tolerance:
                reasons.append(
                    f"{SET_NAMES[set_name]}上 {_head(h)} 的 macro-F1 下降 {-delta:.3f}（冠军 {fa:.3f} → 挑战者 {fb:.3f}，{n} 件），超过容差 {tolerance:.3f}"
                )
    primary_set = "recent" if use_recent else "holdout"
    a, b = _f1s(champion.get(primary_set)), _f1s(challenger.get(primary_set))
    common = [h for h in a if h in b and a[h][1] >= min_recent] or [h for h in a if h in b]
    if not common:
        reasons.append(f"{SET_NAMES[primary_set]}上两个模型没有共同的分类头，无法比较")
        return GateDecision(False, reasons, primary_set, None, None, table)
    pa = float(np.mean([a[h][0] for h in common]))
    pb = float(np.mean([b[h][0] for h in common]))
    gain = pb - pa
    why_set = (
        f"最近复核集 {recent_letters} 件 ≥ {min_recent}"
        if use_recent
        else f"最近复核集只有 {recent_letters} 件（< {min_recent}），改用固定留出集"
    )
    if not gain > 0 or gain < min_gain:
        need = f"需要提高 > 0 且 ≥ {min_gain:.3f}" if min_gain > 0 else "需要提高 > 0"
        reasons.append(f"主指标（{SET_NAMES[primary_set]}各分类头平均 macro-F1，{why_set}）没有提高：冠军 {pa:.4f}，挑战者 {pb:.4f}，变化 {gain:+.4f}，{need}")
    if reasons:
        return GateDecision(False, reasons, primary_set, pa, pb, table)
    return GateDecision(
        True,
        [f"主指标（{SET_NAMES[primary_set]}各分类头平均 macro-F1，{why_set}）从 {pa:.4f} 提高到 {pb:.4f}（{gain:+.4f}），且没有分类头下降超过容差 {tolerance:.3f}"],
        primary_set,
        pa,
        pb,
        table,
    )


def decision_text(d: GateDecision) -> str:
    lines = ["结论：" + ("晋升挑战者为冠军" if d.promote else "保留原冠军，不晋升挑战者")]
    lines += [f"  - {r}" for r in d.reasons]
    if d.table:
        lines.append("  数据集        分类头                 冠军    挑战者   变化     件数")
        for r in d.table:
            mark = "" if r["checked"] else "（件数不足，不检查）"
            lines.append(
                f"  {SET_NAMES[r['set']]:<10} {_head(r['head']):<16} {r['champion']:.3f}   {r['challenger']:.3f}   {r['delta']:+.3f}   {r['n']}{mark}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# triage models list | show | promote | rollback
# --------------------------------------------------------------------------------------


def models_list(root: str | Path | None = None) -> str:
    rows = registry.list_versions(root)
    if not rows:
        return f"{registry.models_dir(root)} 中没有模型版本；请先运行 triage train 或 triage retrain"
    out = ["  版本                              创建时间                    各分类头 macro-F1（留出集）"]
    for r in rows:
        mark = "★" if r.get("champion") else " "
        if "error" in r:
            out.append(f"{mark} {r['version']:<32} 无法读取：{r['error']}")
            continue
        f1 = "  ".join(f"{h} {v:.3f}" for h, v in r["macro_f1"].items() if v is not None)
        out.append(f"{mark} {r['version']:<32} {str(r.get('created_at') or ''):<26} {f1}")
    out.append("★ = 冠军模型（打分默认使用）")
    return "\n".join(out)


def models_show(version: str | None = None, root: str | Path | None = None) -> str:
    """Manifest summary of one version (default: the champion).  Raises ModelDirectoryError."""
    directory = registry.resolve(version, root)
    m = registry.read_manifest(directory)
    champ = registry.champion(directory.parent)
    data = m.get("data", {})
    lines = [
        f"版本：{m['version']}{'（冠军）' if champ == m['version'] else ''}",
        f"目录：{directory}",
        f"后端：{m['backend']}    创建：{m.get('created_at')}",
        f"训练数据：{data.get('path', '?')}（sha256 {str(data.get('sha256', '?'))[:16]}…，{data.get('rows', '?')} 行）",
    ]
    rev = data.get("reviewed")
    if rev:
        lines.append(f"人工复核标签：{rev.get('letters', 0)} 件，训练使用 {rev.get('labels_used', 0)} 个标签")
    tr = m.get("training", {})
    if tr:
        lines.append(f"随机种子：{tr.get('seed')}    留出比例：{tr.get('holdout')}")
    lines.append("指标（固定留出集）：")
    for h, v in m.get("metrics", {}).get("heads", {}).items():
        lines.append(f"  {_head(h):<16} macro-F1 {v.get('macro_f1', float('nan')):.3f}  准确率 {v.get('accuracy', float('nan')):.3f}  n={v.get('n')}")
    recent = m.get("metrics", {}).get("recent", {}).get("heads", {})
    if recent:
        lines.append("指标（最近复核集）：")
        for h, v in recent.items():
            lines.append(f"  {_head(h):<16} macro-F1 {v.get('macro_f1', float('nan')):.3f}  准确率 {v.get('accuracy', float('nan')):.3f}  n={v.get('n')}")
    gate = m.get("metrics", {}).get("gate")
    if gate:
        lines.append("晋升判定：" + ("晋升" if gate.get("promote") else "未晋升") + "；" + "；".join(gate.get("reasons", [])))
    lines.append("标签集：" + json.dumps(m.get("heads", {}), ensure_ascii=False))
    return "\n".join(lines)


def models_promote(version: str, root: str | Path | None = None) -> str:
    if not version:
        raise registry.ModelDirectoryError("请指定要晋升的模型版本：triage models promote 版本名（版本名见 triage models list）")
    registry.load_model(version, root)  # refuse a broken or tampered directory before pointing at it
    previous = registry.champion(root)
    registry.set_champion(version, root, reason="manual promote")
    return f"冠军模型：{previous or '（无）'} → {version}"


def models_rollback(root: str | Path | None = None) -> str:
    current = registry.champion(root)
    previous = registry.rollback(root)
    return f"已回滚：冠军模型 {current} → {previous}"
