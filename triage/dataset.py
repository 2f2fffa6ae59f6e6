"""Retraining data: the base corpus plus the clerks' reviewed labels, de-duplicated.

What counts as truth
    Only human decisions (accept / correct / import events) count, and per letter and head
    only the latest one (``Store.current_labels``).  The scorer's suggestions are never read.
    A reviewed label whose value is no longer in the taxonomy is skipped and listed.

Near-duplicates
    Two letters are the same letter when their *skeletons* (``normalize_text``, then digits,
    whitespace and punctuation removed) are equal, or when the Jaccard similarity of their
    character 3-shingle sets is at least ``threshold`` (0.9).  Candidates come from MinHash
    LSH (128 permutations, 16 bands of 8 rows: a pair at Jaccard 0.9 becomes a candidate
    with probability > 0.9999, a pair at 0.5 with about 0.06) and every candidate pair is
    checked with the exact Jaccard.  A group of near-duplicates is one training letter; a
    reviewed label overrides the base-corpus label of its near-duplicate (latest decision
    wins).

Evaluation sets (never trained on)
    * the fixed held-out set: the same deterministic, seeded split of the base corpus that
      ``triage train`` makes (:func:`triage.train.split_indices`), so a champion trained by
      ``triage train`` with the same seed never saw it either;
    * the recent set: the newest ``recent_fraction`` of reviewed letters by decision time.
    Every near-duplicate of an evaluation letter is kept out of training as well.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .normalize import normalize_text
from .schema import DEFAULT_TAXONOMY, TRACK_LITIGATION, Head, letter_text

HEADS: tuple[str, ...] = ("track", "route", "department", "risk")
#: the base corpus ``triage retrain`` adds the reviewed labels to
DEFAULT_BASE = DEFAULT_TAXONOMY.parent / "corpus.csv"
SHINGLE_K = 3
DEFAULT_THRESHOLD = 0.9
_NUM_PERM = 128
_BANDS = 16
#: pairs whose MinHash estimate is below threshold - slack are not checked exactly (the
#: estimate from 128 permutations has a standard error of about 0.03 near J = 0.9)
_ESTIMATE_SLACK = 0.1


# --------------------------------------------------------------------------------------
# Near-duplicates
# --------------------------------------------------------------------------------------


def skeleton(text: object) -> str:
    """Normalised text without digits, whitespace, punctuation or symbols."""
    s = normalize_text(text)
    return "".join(ch for ch in s if not (ch.isspace() or ch.isdigit() or unicodedata.category(ch)[0] in "PSZ"))


def shingles(skel: str, k: int = SHINGLE_K) -> set[str]:
    if len(skel) <= k:
        return {skel}
    return {skel[i : i + k] for i in range(len(skel) - k + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _minhash(shingle_sets: Sequence[set[str]], seed: int = 1) -> np.ndarray:
    """MinHash signatures with multiply-shift hashing: h(x) = ((a*x + b) mod 2**64) >> 32 for
    random 64-bit odd ``a`` and 64-bit ``b`` (a universal family for 32-bit ``x`` = crc32 of
    the shingle); the multiplication must wrap, or every permutation would keep x's order."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, np.iinfo(np.uint64).max, size=_NUM_PERM, dtype=np.uint64, endpoint=True) | np.uint64(1)
    b = rng.integers(0, np.iinfo(np.uint64).max, size=_NUM_PERM, dtype=np.uint64, endpoint=True)
    sig = np.empty((len(shingle_sets), _NUM_PERM), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, s in enumerate(shingle_sets):
            x = np.fromiter((zlib.crc32(t.encode("utf-8")) for t in s), dtype=np.uint64, count=len(s))
            h = (np.outer(a, x) + b[:, None]) >> np.uint64(32)
            sig[i] = h.min(axis=1)
    return sig


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def near_duplicate_groups(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Group id per text (the smallest index in its group); near-duplicates share an id."""
    n = len(texts)
    uf = _UnionFind(n)
    skels = [skeleton(t) for t in texts]
    first: dict[str, int] = {}
    for i, s in enumerate(skels):
        if s in first:
            uf.union(first[s], i)
        else:
            first[s] = i
    reps = sorted(first.values())
    if len(reps) > 1:
        sets = [shingles(skels[i]) for i in reps]
        sig = _minhash(sets)
        rows = _NUM_PERM // _BANDS
        checked: set[tuple[int, int]] = set()
        for band in range(_BANDS):
            buckets: dict[bytes, list[int]] = {}
            block = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
            for j in range(len(reps)):
                buckets.setdefault(block[j].tobytes(), []).append(j)
            for members in buckets.values():
                if len(members) < 2:
                    continue
                sub = sig[members]
                for x in range(len(members) - 1):
                    # MinHash estimate first (vectorised); the exact Jaccard only for likely pairs
                    est = (sub[x + 1 :] == sub[x]).mean(axis=1)
                    for y in np.flatnonzero(est >= threshold - _ESTIMATE_SLACK) + x + 1:
                        a, b = members[x], members[int(y)]
                        if (a, b) in checked or uf.find(reps[a]) == uf.find(reps[b]):
                            continue
                        checked.add((a, b))
                        if jaccard(sets[a], sets[b]) >= threshold:
                            uf.union(reps[a], reps[b])
    return np.asarray([uf.find(i) for i in range(n)])


# --------------------------------------------------------------------------------------
# Reviewed labels
# --------------------------------------------------------------------------------------


@dataclass
class Reviewed:
    """The clerks' reviewed labels at one moment.

    ``labels``: long frame letter_id, head, label, decided_at, kind (latest decision per
    letter and head); ``letters``: id, title, text, received_at, num_people, id_number, phone.
    """

    labels: pd.DataFrame
    letters: pd.DataFrame

    def snapshot(self) -> pd.DataFrame:
        """Labels without letter text (no personal data): what a manifest may keep."""
        out = self.labels[["letter_id", "head", "label", "decided_at", "kind"]].copy()
        out["decided_at"] = pd.to_datetime(out["decided_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return out.sort_values(["letter_id", "head"]).reset_index(drop=True)


LABEL_COLUMNS = ["letter_id", "head", "label", "decided_at", "kind"]
LETTER_COLUMNS = ["id", "title", "text", "received_at", "num_people", "id_number", "phone"]


def load_reviewed(store, letter_ids: Sequence[str] | None = None, labels: pd.DataFrame | None = None) -> Reviewed:
    """Read the latest human decision per letter and head, with the kind of that decision.

    With ``labels`` (a saved snapshot) only the letters' texts are read from the store.
    """
    import sqlalchemy as sa

    from . import store as store_mod

    if labels is None:
        cur = store.current_labels()
        e = store_mod.events
        latest = (
            sa.select(sa.func.max(e.c.id))
            .where(e.c.kind.in_(store_mod.DECISION_KINDS), e.c.head.is_not(None))
            .group_by(e.c.letter_id, e.c.head)
            .scalar_subquery()
        )
        with store.engine.connect() as conn:
            kinds = pd.DataFrame(conn.execute(sa.select(e.c.letter_id, e.c.head, e.c.kind).where(e.c.id.in_(latest))).all(), columns=["letter_id", "head", "kind"])
        cur = cur.merge(kinds, on=["letter_id", "head"], how="left") if not cur.empty else pd.DataFrame(columns=LABEL_COLUMNS)
        labels = cur[LABEL_COLUMNS].copy()
    labels = labels.copy()
    labels["decided_at"] = pd.to_datetime(labels["decided_at"])
    ids = sorted(set(labels["letter_id"])) if letter_ids is None else list(letter_ids)
    t = store_mod.letters
    rows = []
    with store.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows += conn.execute(sa.select(*(t.c[c] for c in LETTER_COLUMNS)).where(t.c.id.in_(chunk))).all()
    letters = pd.DataFrame(rows, columns=LETTER_COLUMNS)
    missing = sorted(set(ids) - set(letters["id"]))
    if missing:
        labels = labels[~labels["letter_id"].isin(missing)]
    return Reviewed(labels.reset_index(drop=True), letters.sort_values("id").reset_index(drop=True))


# --------------------------------------------------------------------------------------
# The training set
# --------------------------------------------------------------------------------------


@dataclass
class DatasetReport:
    base_rows: int = 0
    base_train_rows: int = 0
    holdout_rows: int = 0
    reviewed_letters: int = 0
    recent_letters: int = 0
    training_rows: int = 0
    base_duplicates_merged: int = 0
    reviewed_merged_into_base: int = 0
    #: training letters dropped because they are near-duplicates of an evaluation letter
    dropped_eval_overlap: int = 0
    #: head -> class -> reviewed labels used for training
    used: dict[str, dict[str, int]] = field(default_factory=dict)
    #: head -> class -> of those, decisions where the clerk changed the suggestion
    corrected: dict[str, dict[str, int]] = field(default_factory=dict)
    #: head -> number of base labels a reviewed label replaced
    overrides: dict[str, int] = field(default_factory=dict)
    #: (letter_id, head, label) whose label is not in the current taxonomy
    unknown_labels: list[tuple[str, str, str]] = field(default_factory=list)
    #: heads left out of training because they have fewer than two classes
    one_class_heads: dict[str, list[str]] = field(default_factory=dict)
    #: head -> class -> count in the final training set
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["unknown_labels"] = [list(x) for x in self.unknown_labels]
        return d

    @property
    def reviewed_used(self) -> int:
        return sum(sum(v.values()) for v in self.used.values())


@dataclass
class TrainingData:
    frame: pd.DataFrame
    labels: dict[str, list]
    holdout_frame: pd.DataFrame
    holdout_labels: dict[str, list]
    recent_frame: pd.DataFrame
    recent_labels: dict[str, list]
    holdout_ids: list[str]
    recent_ids: list[str]
    report: DatasetReport

    def sha256(self) -> str:
        """Hash of exactly what was trained on (ids, texts, labels)."""
        h = hashlib.sha256()
        for i in range(len(self.frame)):
            row = [str(self.frame.at[i, "id"]), str(self.frame.at[i, "title"]), str(self.frame.at[i, "text"])]
            row += [str(self.labels[k][i]) for k in sorted(self.labels)]
            h.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        return h.hexdigest()


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def _frame_cols(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"id": df["id"].astype(str).to_numpy()})
    for c in ("title", "text"):
        out[c] = df[c].fillna("").astype(str).to_numpy() if c in df.columns else ""
    for c in ("num_people", "id_number", "phone"):
        out[c] = df[c].to_numpy() if c in df.columns else None
    return out


def _doc_text(frame: pd.DataFrame) -> list[str]:
    return [letter_text(str(t or ""), str(b or "")) for t, b in zip(frame["title"].fillna(""), frame["text"].fillna(""))]


def _route_rule(labels: dict[str, list]) -> dict[str, list]:
    if "route" in labels and "track" in labels:
        labels["route"] = [None if t is not None and t != TRACK_LITIGATION else r for r, t in zip(labels["route"], labels["track"])]
    return labels


def recent_split(reviewed: Reviewed, fraction: float) -> list[str]:
    """The newest ``fraction`` of reviewed letters by their latest decision time (ties by id)."""
    if reviewed.labels.empty or fraction <= 0:
        return []
    when = reviewed.labels.groupby("letter_id")["decided_at"].max().reset_index()
    when = when.sort_values(["decided_at", "letter_id"], ascending=[False, False])
    k = int(math.floor(len(when) * fraction))
    return sorted(when["letter_id"].head(k).tolist())


def build_training_data(
    base_frame: pd.DataFrame,
    base_labels: Mapping[str, list],
    holdout_idx: Sequence[int],
    reviewed: Reviewed,
    heads: Mapping[str, Head],
    *,
    recent_fraction: float = 0.2,
    threshold: float = DEFAULT_THRESHOLD,
) -> TrainingData:
    """Merge the base corpus and the reviewed labels into one de-duplicated training set."""
    rep = DatasetReport()
    head_names = [h for h in HEADS if h in heads and h in base_labels] or [h for h in HEADS if h in heads]
    base = _frame_cols(base_frame.reset_index(drop=True))
    n_base = len(base)
    holdout = np.zeros(n_base, dtype=bool)
    holdout[np.asarray(list(holdout_idx), dtype=int)] = True
    rep.base_rows, rep.holdout_rows = n_base, int(holdout.sum())

    # reviewed labels: drop those outside the taxonomy
    lab = reviewed.labels
    valid_rows = []
    for r in lab.itertuples(index=False):
        if r.head not in heads:
            continue
        if r.label not in heads[r.head].labels:
            rep.unknown_labels.append((str(r.letter_id), str(r.head), str(r.label)))
            continue
        valid_rows.append(r)
    lab = pd.DataFrame(valid_rows, columns=lab.columns) if valid_rows else pd.DataFrame(columns=lab.columns)
    rev_ids = sorted(set(lab["letter_id"]) & set(reviewed.letters["id"]))
    rev = _frame_cols(reviewed.letters.set_index("id").loc[rev_ids].reset_index()) if rev_ids else _frame_cols(pd.DataFrame(columns=["id", "title", "text"]))
    rep.reviewed_letters = len(rev)
    per_letter: dict[str, dict[str, tuple]] = {}
    for r in lab.itertuples(index=False):
        per_letter.setdefault(r.letter_id, {})[r.head] = (r.label, r.decided_at, r.kind)
    decided = {lid: max(v[1] for v in d.values()) for lid, d in per_letter.items()}
    recent_ids = set(recent_split(Reviewed(lab, reviewed.letters), recent_fraction))
    rep.recent_letters = len(recent_ids)

    # groups over base + reviewed
    texts = _doc_text(base) + _doc_text(rev)
    groups = near_duplicate_groups(texts, threshold) if texts else np.zeros(0, dtype=int)
    is_eval = np.concatenate([holdout, np.asarray([i in recent_ids for i in rev["id"]], dtype=bool)])
    eval_groups = set(groups[is_eval].tolist())

    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        if not is_eval[i] and g in eval_groups:
            rep.dropped_eval_overlap += 1
            continue
        if not is_eval[i]:
            members.setdefault(int(g), []).append(i)

    rows, labels = [], {h: [] for h in head_names}
    used: dict[str, Counter] = {h: Counter() for h in head_names}
    corrected: dict[str, Counter] = {h: Counter() for h in head_names}
    overrides: Counter = Counter()
    for g in sorted(members):
        idx = members[g]
        b_idx = [i for i in idx if i < n_base]
        r_idx = sorted((i for i in idx if i >= n_base), key=lambda i: (decided[rev.at[i - n_base, "id"]], rev.at[i - n_base, "id"]))
        rep.base_duplicates_merged += max(0, len(b_idx) - 1)
        if b_idx and r_idx:
            rep.reviewed_merged_into_base += len(r_idx)
        elif len(r_idx) > 1:
            rep.reviewed_merged_into_base += len(r_idx) - 1
        y = {h: (base_labels[h][b_idx[0]] if b_idx and h in base_labels else None) for h in head_names}
        y = {h: (None if _blank(v) else str(v)) for h, v in y.items()}
        source: dict[str, tuple] = {}
        for i in r_idx:
            for h, (label, _at, kind) in per_letter.get(rev.at[i - n_base, "id"], {}).items():
                if h in y:
                    source[h] = (label, kind)
        for h, (label, kind) in source.items():
            if y[h] is not None and y[h] != label:
                overrides[h] += 1
            y[h] = label
            used[h][label] += 1
            if kind == "correct":
                corrected[h][label] += 1
        if r_idx:
            j = r_idx[-1] - n_base
            row = rev.iloc[j].to_dict()
        else:
            row = base.iloc[b_idx[0]].to_dict()
        rows.append(row)
        for h in head_names:
            labels[h].append(y[h])
    labels = _route_rule(labels)
    frame = pd.DataFrame(rows, columns=base.columns).reset_index(drop=True)
    rep.base_train_rows = int((~holdout).sum())
    rep.training_rows = len(frame)
    rep.used = {h: dict(sorted(c.items())) for h, c in used.items() if c}
    rep.corrected = {h: dict(sorted(c.items())) for h, c in corrected.items() if c}
    rep.overrides = dict(overrides)
    rep.label_counts = {h: dict(sorted(Counter(v for v in vals if v is not None).items())) for h, vals in labels.items()}
    for h, counts in rep.label_counts.items():
        if len(counts) < 2:
            rep.one_class_heads[h] = list(counts)

    hold_frame = base[holdout].reset_index(drop=True)
    hold_labels = _route_rule({h: [None if _blank(base_labels[h][i]) else str(base_labels[h][i]) for i in np.flatnonzero(holdout)] for h in head_names if h in base_labels})
    rec = rev[rev["id"].isin(recent_ids)].reset_index(drop=True)
    rec_labels = _route_rule({h: [per_letter.get(lid, {}).get(h, (None,))[0] for lid in rec["id"]] for h in head_names})
    return TrainingData(
        frame=frame,
        labels=labels,
        holdout_frame=hold_frame,
        holdout_labels=hold_labels,
        recent_frame=rec,
        recent_labels=rec_labels,
        holdout_ids=hold_frame["id"].astype(str).tolist(),
        recent_ids=rec["id"].astype(str).tolist(),
        report=rep,
    )
