"""Classical topic-classifier experiments on the Teddy Cup 2020 segmented set.

Benchmark only: reads the real public messages from the shared data folder (never
copied into the repository) and prints macro-F1 (mean ± std over 5 stratified folds)
for a list of scikit-learn configurations, plus duplicate counts, a duplicate-grouped
5-fold figure, calibration, max_features and hashing checks, fit times and vocabulary
sizes.

Usage:
    python bench/topic_experiments.py [DATA_DIR] [--only NAME ...] [--quick]

DATA_DIR defaults to ../shared/data (relative to the repository root).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import (
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.svm import LinearSVC
from joblib import Parallel, delayed

SEED = 0
DATA_FILE = Path("teddy2020") / "train_segmented.csv"


# ---------------------------------------------------------------- features
def split_tokens(text: str) -> list[str]:
    """The publisher already segmented the text: tokens are space separated."""
    return text.split()


class JoinTokens(BaseEstimator, TransformerMixin):
    """Remove the spaces between tokens so character n-grams see the raw string."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return [x.replace(" ", "") for x in X]


def word_tfidf(ngram=(1, 2), min_df=2, max_features=None, max_df=1.0):
    return TfidfVectorizer(
        tokenizer=split_tokens, token_pattern=None, lowercase=False,
        ngram_range=ngram, min_df=min_df, max_df=max_df,
        max_features=max_features, sublinear_tf=True, dtype=np.float32,
    )


def char_tfidf(ngram=(1, 3), min_df=2, max_features=None, analyzer="char", joined=True):
    vec = TfidfVectorizer(
        analyzer=analyzer, ngram_range=ngram, lowercase=False, min_df=min_df,
        max_features=max_features, sublinear_tf=True, dtype=np.float32,
    )
    return make_pipeline(JoinTokens(), vec) if joined else vec


def word_hash(ngram=(1, 2), n_features=2**20):
    return make_pipeline(
        HashingVectorizer(
            tokenizer=split_tokens, token_pattern=None, lowercase=False,
            ngram_range=ngram, n_features=n_features, alternate_sign=False,
            norm=None, dtype=np.float32,
        ),
        TfidfTransformer(sublinear_tf=True),
    )


def char_hash(ngram=(1, 3), n_features=2**20):
    return make_pipeline(
        JoinTokens(),
        HashingVectorizer(
            analyzer="char", ngram_range=ngram, lowercase=False,
            n_features=n_features, alternate_sign=False, norm=None, dtype=np.float32,
        ),
        TfidfTransformer(sublinear_tf=True),
    )


def union(**parts):
    return FeatureUnion(list(parts.items()))


# ---------------------------------------------------------------- models
def svc(C=0.5, balanced=True):
    return LinearSVC(C=C, class_weight="balanced" if balanced else None, random_state=SEED)


def logreg(C=20.0, balanced=True):
    return LogisticRegression(
        C=C, class_weight="balanced" if balanced else None, max_iter=2000,
        random_state=SEED,
    )


def sgd(alpha=2e-5, balanced=True):
    return SGDClassifier(
        loss="modified_huber", alpha=alpha, class_weight="balanced" if balanced else None,
        max_iter=50, tol=1e-4, random_state=SEED,
    )


def cnb(alpha=0.1):
    return ComplementNB(alpha=alpha)


def configs() -> dict[str, tuple[str, str, object]]:
    """name -> (feature key, feature key for the union's 2nd block or "", classifier)."""
    c = {}
    # --- word n-grams, classifier comparison
    for C in (0.25, 0.5, 1.0):
        c[f"w12 svc C={C}"] = ("w12", "", svc(C))
    c["w12 svc C=0.5 unbalanced"] = ("w12", "", svc(0.5, balanced=False))
    c["w1 svc C=0.5"] = ("w11", "", svc(0.5))
    c["w12 min_df=1 svc C=0.5"] = ("w12 min_df=1", "", svc(0.5))
    c["w12 min_df=3 svc C=0.5"] = ("w12 min_df=3", "", svc(0.5))
    c["w12 logreg C=30"] = ("w12", "", logreg(30))
    for a in (3e-5, 1e-4):
        c[f"w12 sgd mhuber a={a:g}"] = ("w12", "", sgd(a))
    for a in (0.1, 0.3):
        c[f"w12 cnb a={a}"] = ("w12", "", cnb(a))
    # --- character n-grams on the joined string (spaces removed) / char_wb with spaces
    c["c13 svc C=0.5"] = ("c13", "", svc(0.5))
    c["c24 svc C=0.5"] = ("c24", "", svc(0.5))
    c["c24 char_wb(spaces kept) svc C=0.5"] = ("cwb24", "", svc(0.5))
    # --- unions (FeatureUnion == hstack of the two tf-idf blocks)
    for C in (0.5, 1.0, 2.0):
        c[f"w12+c13 svc C={C}"] = ("w12", "c13", svc(C))
        c[f"w12+c24 svc C={C}"] = ("w12", "c24", svc(C))
    c["w12 min_df=3+c13 svc C=1.0"] = ("w12 min_df=3", "c13", svc(1.0))
    c["w12+c13 svc C=1.0 unbalanced"] = ("w12", "c13", svc(1.0, balanced=False))
    c["w12+c13 logreg C=30"] = ("w12", "c13", logreg(30))
    c["w12+c13 sgd mhuber a=1e-05"] = ("w12", "c13", sgd(1e-5))
    c["w12+c13 cnb a=0.1"] = ("w12", "c13", cnb(0.1))
    # --- vocabulary caps (total split evenly between blocks) and hashing
    for mf in (50_000, 100_000, 200_000):
        k = mf // 1000
        c[f"w12 max_features={k}k svc C=0.5"] = (f"w12 mf={mf}", "", svc(0.5))
        c[f"w12+c13 max_features={k}k total svc C=1.0"] = (
            f"w12 mf={mf // 2}", f"c13 mf={mf // 2}", svc(1.0))
        c[f"w12+c24 max_features={k}k total svc C=1.0"] = (
            f"w12 mf={mf // 2}", f"c24 mf={mf // 2}", svc(1.0))
    c["hash w12 2^20 svc C=0.5"] = ("hw12 20", "", svc(0.5))
    c["hash w12 2^18 svc C=0.5"] = ("hw12 18", "", svc(0.5))
    c["hash w12+c13 2^20 svc C=1.0"] = ("hw12 20", "hc13 20", svc(1.0))
    c["hash w12+c13 2^18 svc C=1.0"] = ("hw12 18", "hc13 18", svc(1.0))
    return c


def make_features(key: str):
    """Feature transformer for a key such as "w12", "c24 mf=50000", "hw12 20", "cwb13"."""
    parts = key.split()
    name, opts = parts[0], dict(p.split("=") for p in parts[1:] if "=" in p)
    mf = int(opts["mf"]) if "mf" in opts else None
    min_df = int(opts.get("min_df", 2))
    max_df = float(opts.get("max_df", 1.0))
    ng = (int(name[-2]), int(name[-1]))
    if name.startswith("hw"):
        return word_hash(ng, 2 ** int(parts[1]))
    if name.startswith("hc"):
        return char_hash(ng, 2 ** int(parts[1]))
    if name.startswith("w"):
        return word_tfidf(ng, min_df=min_df, max_features=mf, max_df=max_df)
    if name.startswith("cwb"):
        return char_tfidf(ng, min_df=min_df, max_features=mf, analyzer="char_wb",
                          joined=False)
    if name.startswith("c"):
        return char_tfidf(ng, min_df=min_df, max_features=mf)
    raise ValueError(key)


def build_pipeline(fkey: str, fkey2: str, clf) -> Pipeline:
    feats = make_features(fkey) if not fkey2 else union(
        word=make_features(fkey), char=make_features(fkey2))
    return Pipeline([("features", feats), ("clf", clone(clf))])


class FeatureCache:
    """Fold-wise feature matrices, fitted on the training part of each fold only."""

    def __init__(self, X, splits):
        self.X, self.splits, self.store = X, splits, {}

    def get(self, key):
        if key not in self.store:
            folds = []
            for tr, te in self.splits:
                t0 = time.perf_counter()
                f = make_features(key)
                Xtr = f.fit_transform(self.X[tr]).tocsr()
                Xte = f.transform(self.X[te]).tocsr()
                folds.append((Xtr, Xte, time.perf_counter() - t0, _vocab(f)))
            self.store[key] = folds
        return self.store[key]

    def folds(self, k1, k2):
        a = self.get(k1)
        if not k2:
            return a
        b = self.get(k2)
        return [(sparse.hstack([x[0], z[0]], format="csr"),
                 sparse.hstack([x[1], z[1]], format="csr"),
                 x[2] + z[2],
                 None if x[3] is None or z[3] is None else x[3] + z[3])
                for x, z in zip(a, b)]


def _vocab(est) -> int | None:
    total, found = 0, False
    for e in _walk(est):
        if isinstance(e, TfidfVectorizer):
            total += len(e.vocabulary_)
            found = True
    return total if found else None


def vocab_size(pipe: Pipeline) -> int | None:
    return _vocab(pipe.named_steps["features"])


def _walk(est):
    yield est
    if isinstance(est, Pipeline):
        for _, s in est.steps:
            yield from _walk(s)
    elif isinstance(est, FeatureUnion):
        for _, s in est.transformer_list:
            yield from _walk(s)


def _fit_score(clf, Xtr, ytr, Xte, yte):
    m = clone(clf)
    t0 = time.perf_counter()
    m.fit(Xtr, ytr)
    t = time.perf_counter() - t0
    return f1_score(yte, m.predict(Xte), average="macro"), t


def run_cached(cache: FeatureCache, cfg, y):
    k1, k2, clf = cfg
    folds = cache.folds(k1, k2)
    out = Parallel(n_jobs=2, prefer="threads")(
        delayed(_fit_score)(clf, Xtr, y[tr], Xte, y[te])
        for (Xtr, Xte, _, _), (tr, te) in zip(folds, cache.splits))
    scores = np.array([o[0] for o in out])
    fit_s = float(np.mean([o[1] + f[2] for o, f in zip(out, folds)]))
    return scores, fit_s, folds[0][3]


def duplicate_report(texts: pd.Series, labels: pd.Series) -> np.ndarray:
    """Print exact and near-duplicate counts; return group ids of identical token strings."""
    groups = texts.factorize()[0]
    sizes = np.bincount(groups)
    n_dup_rows = int((sizes[groups] > 1).sum())
    print("== 重复检查 / duplicates")
    print(f"rows {len(texts)}; distinct token strings {len(sizes)}; "
          f"exact-duplicate clusters {int((sizes > 1).sum())} covering {n_dup_rows} rows "
          f"({len(texts) - len(sizes)} redundant copies; largest cluster {sizes.max()})")
    lab_per = labels.groupby(groups).nunique()
    print(f"exact clusters with conflicting labels: {int((lab_per > 1).sum())}")
    # near duplicates: cosine >= 0.9 on word-unigram tf-idf, among distinct strings
    uniq = texts.drop_duplicates()
    m = TfidfVectorizer(tokenizer=split_tokens, token_pattern=None, lowercase=False,
                        dtype=np.float32).fit_transform(uniq)
    sim = (m @ m.T).tocsr()
    sim.setdiag(0)
    sim.eliminate_zeros()
    for thr in (0.9, 0.8):
        s = sim.copy()
        s.data = (s.data >= thr).astype(np.int8)
        s.eliminate_zeros()
        n_rows = int((np.diff(s.indptr) > 0).sum())
        n_pairs = s.nnz // 2
        print(f"near duplicates (distinct strings, tf-idf cosine >= {thr}): "
              f"{n_pairs} pairs, {n_rows} strings involved")
    return groups


def near_duplicate_groups(texts: pd.Series, exact: np.ndarray, thr: float = 0.9) -> np.ndarray:
    """Connected components of rows whose word tf-idf cosine >= thr (exact copies included)."""
    from scipy.sparse.csgraph import connected_components

    m = TfidfVectorizer(tokenizer=split_tokens, token_pattern=None, lowercase=False,
                        dtype=np.float32).fit_transform(texts)
    sim = (m @ m.T).tocsr()
    sim.data = (sim.data >= thr).astype(np.int8)
    sim.eliminate_zeros()
    n, lab = connected_components(sim, directed=False)
    sizes = np.bincount(lab)
    print(f"near-duplicate clusters (cosine >= {thr}, exact copies included): "
          f"{int((sizes > 1).sum())} clusters covering {int((sizes[lab] > 1).sum())} rows; "
          f"largest {sizes.max()}")
    return lab


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="经典文本分类模型主题实验（泰迪杯2020数据）")
    ap.add_argument("data_dir", nargs="?", default="../shared/data",
                    help="数据目录（默认 ../shared/data）")
    ap.add_argument("--only", nargs="*", help="只运行名称包含这些子串的配置")
    ap.add_argument("--skip-extra", action="store_true",
                    help="跳过分组交叉验证与校准实验")
    args = ap.parse_args(argv)

    path = Path(args.data_dir) / DATA_FILE
    if not path.is_file():
        print(f"错误：找不到基准数据文件 {path}。请把数据目录作为参数传入"
              f"（默认 ../shared/data，需包含 {DATA_FILE}）。", file=sys.stderr)
        return 2
    df = pd.read_csv(path)
    for col in ("tokens", "label"):
        if col not in df.columns:
            print(f"错误：{path} 缺少列 {col!r}；实际列为 {list(df.columns)}。", file=sys.stderr)
            return 2
    df = df.dropna(subset=["tokens", "label"]).reset_index(drop=True)
    X = df["tokens"].astype(str).to_numpy(dtype=object)
    y = df["label"].astype(str).to_numpy()
    print(f"data: {path} rows={len(df)} classes={len(np.unique(y))}")

    groups = duplicate_report(df["tokens"].astype(str), df["label"])
    plain = list(StratifiedKFold(5, shuffle=True, random_state=SEED).split(X, y))
    grouped = list(StratifiedGroupKFold(5, shuffle=True, random_state=SEED)
                   .split(X, y, groups))
    leak = sum(len(set(groups[tr]) & set(groups[te])) for tr, te in plain)
    print(f"plain 5-fold: duplicate clusters shared between train and test (sum over folds): {leak}")

    cfgs = configs()
    if args.only:
        # an item equal to a config name selects exactly that config, otherwise a substring
        cfgs = {k: v for k, v in cfgs.items()
                if any(s == k or (s not in cfgs and s in k) for s in args.only)}
    print("\n== 5-fold stratified macro-F1 (random_state=0)")
    print(f"{'config':48s} {'macro-F1':>16s} {'feat+fit s':>10s} {'vocab':>9s}")
    results = {}
    cache = FeatureCache(X, plain)
    for name, cfg in cfgs.items():
        s, fit_s, voc = run_cached(cache, cfg, y)
        results[name] = s.mean()
        print(f"{name:48s} {s.mean():.4f} ± {s.std():.4f} {fit_s:10.1f} "
              f"{voc if voc is not None else '-':>9}", flush=True)

    if args.skip_extra or not results:
        return 0
    best = max(results, key=results.get)
    best_svc = max((k for k in results if "svc" in k), key=results.get)
    print(f"\nbest: {best} ({results[best]:.4f}); best LinearSVC: {best_svc}")

    print("\n== duplicate-grouped 5-fold (StratifiedGroupKFold, random_state=0)")
    print("   exact = groups of identical token strings; "
          "near = connected components of tf-idf cosine >= 0.9")
    near_groups = near_duplicate_groups(df["tokens"].astype(str), groups)
    near = list(StratifiedGroupKFold(5, shuffle=True, random_state=SEED)
                .split(X, y, near_groups))
    caches = {"exact": FeatureCache(X, grouped), "near": FeatureCache(X, near)}
    extra = [k for k in dict.fromkeys([best, best_svc, "w12 svc C=0.5", "w12+c13 svc C=0.5",
                                       "hash w12+c13 2^20 svc C=1.0"]) if k in cfgs]
    for name in extra:
        row = f"{name:44s} plain {results[name]:.4f}"
        for label, cch in caches.items():
            s, _, _ = run_cached(cch, cfgs[name], y)
            row += f" | {label} {s.mean():.4f} ± {s.std():.4f}"
        print(row, flush=True)

    print("\n== calibration: CalibratedClassifierCV(sigmoid, cv=3) on best LinearSVC")
    k1, k2, base_clf = cfgs[best_svc]
    cal = (k1, k2, CalibratedClassifierCV(base_clf, method="sigmoid", cv=3))
    for label, cch in (("plain", cache), ("exact-grouped", caches["exact"])):
        s, fit_s, _ = run_cached(cch, cal, y)
        print(f"calibrated {best_svc:36s} {label:14s} {s.mean():.4f} ± {s.std():.4f} "
              f"feat+fit {fit_s:.1f}s/fold", flush=True)

    print("\n== full-data fit (all rows) of the best LinearSVC config and of the best config")
    for name in dict.fromkeys([best_svc, best]):
        p = build_pipeline(*cfgs[name])
        t0 = time.perf_counter()
        p.fit(X, y)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        p.predict(X[:1000])
        t_pred = time.perf_counter() - t0
        print(f"{name}: fit {t_fit:.1f}s on {len(X)} rows; vocabulary {vocab_size(p)}; "
              f"predict 1000 rows {t_pred:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
