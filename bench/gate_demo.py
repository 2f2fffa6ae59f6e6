"""The promotion gate at a realistic scale: a good and a shuffled-label challenger.

Usage: python bench/gate_demo.py [--base data/corpus.csv] [--champion-letters 1500]
                                 [--reviewed 600] [--out DIR]

Builds a weak champion (trained on ``--champion-letters`` synthetic letters), then two review
databases (SQLite) with the same ``--reviewed`` newly scored letters: one where the clerks'
decisions are the true labels, one where they are shuffled across letters.  ``triage retrain``
(:func:`triage.retrain.retrain`) then trains a challenger on the base corpus plus each set of
reviewed labels and lets the gate decide.  Prints both reports (in Chinese, as the data officer
sees them) and exits 0 only when the good challenger is promoted and the shuffled one is not.
Everything is written under ``--out`` (default: a temporary directory); the repository's own
``models/`` is never touched.  Takes about 6 minutes with the 20,000-letter corpus on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, require  # noqa: E402

from triage import registry, schema  # noqa: E402
from triage.retrain import retrain  # noqa: E402
from triage.store import open_store  # noqa: E402
from triage.synth import generate  # noqa: E402
from triage.train import train_version  # noqa: E402

LABEL_HEADS = ("track", "route", "department", "risk")


def review_db(path: Path, letters, *, shuffle: bool = False, heads=LABEL_HEADS, seed: int = 0, model_version: str = "weak-champion") -> str:
    """Score ``letters`` into a fresh SQLite store and record a clerk's decision on each of
    ``heads`` (route only for 涉法涉诉 letters); with ``shuffle`` the labels are permuted across
    letters.  Returns the database URL.  (tests/test_retrain.py builds its databases with it.)"""
    url = f"sqlite:///{path}"
    store = open_store(url)
    inputs = letters.drop(columns=["track", "route", "department", "risk", "risk_reasons"])
    store.upsert_scored(inputs.to_dict("records"), model_version, "batch-0")
    labels = letters[["track", "route", "department", "risk"]].copy()
    if shuffle:
        rng = np.random.default_rng(seed)
        for head in ("track", "department", "risk"):
            labels[head] = rng.permutation(labels[head].to_numpy())
        routes = rng.permutation(letters["route"].replace("", "诉讼").to_numpy())
        labels["route"] = [r if t == schema.TRACK_LITIGATION else "" for r, t in zip(routes, labels["track"])]
    for letter_id, row in zip(letters["id"], labels.itertuples(index=False)):
        decisions = [(h, getattr(row, h)) for h in heads if h != "route"]
        if "route" in heads and row.track == schema.TRACK_LITIGATION and row.route:
            decisions.append(("route", row.route))
        store.add_events(letter_id, decisions, "clerk", "correct")
    store.close()
    return url


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=str(REPO / "data" / "corpus.csv"), help="base corpus for retraining")
    ap.add_argument("--champion-letters", type=int, default=1500)
    ap.add_argument("--reviewed", type=int, default=600)
    ap.add_argument("--out", help="working directory (default: a temporary one)")
    a = ap.parse_args(argv)
    base = require(Path(a.base), "base corpus")
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="gate-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    generate(a.champion_letters, 31).to_csv(out / "champion_letters.csv", index=False)
    train_version(out / "champion_letters.csv", out=out / "models", version="weak-champion", promote=True, log=lambda _m: None)
    letters = generate(a.reviewed, 77)
    letters["id"] = [f"R{i:05d}" for i in range(len(letters))]
    outcome = {}
    for name, shuffle in (("good", False), ("shuffled", True)):
        root = out / f"models_{name}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(out / "models", root)
        db = out / f"{name}.db"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        res = retrain(review_db(db, letters, shuffle=shuffle), base, root=root, plots=False, log=lambda _m: None)
        outcome[name] = res.status
        print(f"===== {name} challenger ({time.perf_counter() - t0:.0f} s): {res.status}; champion now {registry.champion(root)}")
        print(res.report())
    ok = outcome == {"good": "promoted", "shuffled": "kept"}
    print(f"gate: good challenger {outcome['good']}, shuffled challenger {outcome['shuffled']} -> {'as expected' if ok else 'NOT as expected'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
