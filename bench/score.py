"""Throughput and memory of the batch scorer (CSV → CSV), against jieba-only tokenisation.

Usage: python bench/score.py [--rows 100000] [--jobs 1 2] [--model VERSION|DIR] [--chunksize 2000]
                             [--workdir DIR] [--seed 0] [--unique N] [--pipeline-only]

       python bench/score.py --rows 1000000 --unique 20000 --pipeline-only --jobs 1 2
           the scorer's own memory at 1,000,000 rows with a constant stand-in model (minutes,
           not hours); the model's share is the per-worker figure of a normal run.

       python bench/score.py --rows 1000000 --unique 20000 --scorer-only --jobs 2
           the real model on 1,000,000 rows, scorer alone (no baselines): throughput and peak memory.

Generates ``--rows`` synthetic letters (triage.synth.generate; no real data), writes them as a
clerk's CSV, then for each process count in ``--jobs``:

1. runs ``score_file`` (CSV → CSV) in a fresh child process and measures letters/s (time
   inside score_file: first pass, scoring, assembly; not the interpreter start-up and imports)
   and the peak memory of the whole process tree (the child and its workers, sampled from /proc
   every second (``--sample-interval``) as the sum of each process's PSS, so pages shared after fork count once);
2. tokenises the same letters (normalised title + body) with jieba itself (``lcut(text,
   HMM=True)`` of the project's jieba.Tokenizer, whitespace dropped) with the same number of
   processes, reading the same CSV in the same chunks: the jieba-only baseline;
3. the same with the project's own segmenter, each chunk cut at once as the scorer cuts it
   (triage.tokenize.tokenize_spans: triage.segment's lcut_many, the same words as jieba in about
   a third of the time), so the scorer's work beyond segmentation shows too.

It first measures how much of a second core the machine gives right now (a fixed pure-Python
loop, one process and then two at once): on a shared or busy host no speed-up can exceed twice
that, so the 1 → 2 jobs figure is printed beside it.  Prints the figures and the ratios the
scorer is held to: scorer/jieba throughput (target
≥ 0.9; scorer/segmenter beside it), speed-up from 1 to 2 processes (target ≥ 1.8), peak RSS (target < 1 GiB, also at
1,000,000 rows: ``--rows 1000000``).  Without ``--model`` the champion is used, or, when there
is none, a small model is trained on 3,000 synthetic letters in the work directory.
It is a benchmark, not a test: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_SCORE_CHILD = r"""
import json, sys, time
import triage.score as s
from triage.registry import read_manifest, resolve
from triage.backends import backend_class
from triage.tokenize import tokenize
model, src, out, jobs, chunksize = sys.argv[1:6]
backend_class(read_manifest(resolve(model))["backend"])  # imports outside the timing
tokenize("预热")
import resource
def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime
c0, w0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
t = time.perf_counter()
summary = s.score_file(src, out, model=model, jobs=int(jobs), chunksize=int(chunksize), progress=False)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "rows": summary.rows, "errors": summary.errors,
                  "main_cpu_s": cpu(resource.RUSAGE_SELF) - c0, "workers_cpu_s": cpu(resource.RUSAGE_CHILDREN) - w0}))
"""

_PIPELINE_CHILD = r"""
import json, sys, time
import pandas as pd
import triage.score as s
model, src, out, jobs, chunksize = sys.argv[1:6]
_row = None

def constant_predict(frame, rec):
    # the scorer's own work (reading, validation, recurrence, masking, parts, assembly) with a
    # stand-in model that returns one fixed suggestion: memory and overhead of the pipeline itself
    global _row
    if _row is None:
        _row = s._MODEL.predict(frame.iloc[:1], version=s._MODEL_VERSION).iloc[0].to_dict()
    return pd.DataFrame([_row] * len(frame), index=frame.index), {}

s._predict = constant_predict
t = time.perf_counter()
summary = s.score_file(src, out, model=model, jobs=int(jobs), chunksize=int(chunksize), progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": summary.rows, "errors": summary.errors}))
"""

_JIEBA_CHILD = r"""
import json, sys, time
import concurrent.futures as cf
import pandas as pd
from triage.normalize import normalize_text
from triage.schema import letter_text
from triage.tokenize import tokenize_spans
from _common import jieba_only

src, jobs, chunksize, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def work(pairs):
    texts = [normalize_text(letter_text(title, text)) for title, text in pairs]
    if how == "jieba":  # one letter at a time, as jieba cuts
        n = sum(len(jieba_only(t)) for t in texts)
    else:  # the chunk at once, as the scorer cuts (segment.lcut_many)
        n = int(tokenize_spans(texts)[3].sum())
    return len(pairs), n

def warm():
    jieba_only("预热") if how == "jieba" else tokenize_spans(["预热"])

warm()
import resource
def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime
c0, w0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
t = time.perf_counter()
rows = 0
chunks = pd.read_csv(src, dtype=str, keep_default_na=False, chunksize=chunksize, usecols=["title", "text"])
if jobs == 1:
    for c in chunks:
        rows += work(list(zip(c["title"], c["text"])))[0]
else:
    with cf.ProcessPoolExecutor(jobs, initializer=warm) as pool:
        pending = set()
        for c in chunks:
            pending.add(pool.submit(work, list(zip(c["title"], c["text"]))))
            if len(pending) >= 2 * jobs:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                rows += sum(f.result()[0] for f in done)
        rows += sum(f.result()[0] for f in pending)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": rows,
                  "main_cpu_s": cpu(resource.RUSAGE_SELF) - c0, "workers_cpu_s": cpu(resource.RUSAGE_CHILDREN) - w0}))
"""


# --------------------------------------------------------------------------------------
# Peak RSS of a process tree, from /proc
# --------------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _rss_kib(pid: int) -> int:
    """Proportional set size (shared pages split between the processes sharing them); VmRSS
    where smaps_rollup is not available."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def tree_rss_kib(root: int) -> int:
    kids = _children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_kib(pid)
        stack.extend(kids.get(pid, []))
    return total


#: seconds between two memory samples; reading every process's smaps_rollup is not free, and
#: on a 2-core machine a sampler that wakes every 0.1 s takes a noticeable share of a core
#: from the very processes it measures (the scorer's peak moves slowly: chunk by chunk)
SAMPLE_INTERVAL_S = 1.0


def run_measured(cmd: list[str], env: dict, interval: float = SAMPLE_INTERVAL_S) -> tuple[dict, float, float]:
    """Run ``cmd``; returns (its JSON result, wall seconds, peak tree memory (PSS) in MiB).
    The result gets ``sampler_cpu_s``: the CPU time the memory sampler itself used."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    sampler_cpu = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, sampler_cpu
        c0 = time.thread_time()
        while not stop.is_set():
            peak = max(peak, tree_rss_kib(proc.pid))
            stop.wait(interval)
        sampler_cpu = time.thread_time() - c0

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"子进程失败（{proc.returncode}）：{' '.join(cmd[:3])}\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["sampler_cpu_s"] = sampler_cpu
    return result, wall, peak / 1024


def _spin(_: int = 0) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(15_000_000):
        x += i
    return time.perf_counter() - t


def machine_parallel_efficiency() -> float:
    """How much of a second core this machine gives right now: a fixed pure-Python loop alone,
    then two copies at once in two processes (1.0 = two full cores; shared or busy hosts give
    less, and no program's speed-up from 1 to 2 processes can exceed twice this)."""
    import multiprocessing as mp

    one = min(_spin() for _ in range(3))
    two = float("inf")
    with mp.get_context("fork").Pool(2) as pool:
        for _ in range(3):  # the best of three: a momentary hiccup is not the machine
            t = time.perf_counter()
            pool.map(_spin, [0, 1])
            two = min(two, time.perf_counter() - t)
    return one / two


# --------------------------------------------------------------------------------------


_INPUT_COLUMNS = ("id", "title", "text", "received_at", "channel", "petitioner", "id_number", "phone", "address", "num_people")


def make_letters(rows: int, seed: int, path: Path, unique: int | None = None) -> None:
    """``rows`` synthetic letters as a clerk's CSV.  With ``unique`` < ``rows`` only that many
    distinct letters are generated and repeated (new ids), which is how 1,000,000 rows are made
    in minutes instead of an hour."""
    from triage.synth import generate

    block = min(unique or rows, 100_000)  # in blocks: 1,000,000 rows never sit in memory at once
    first = True
    start = 0
    cache = None
    while start < rows:
        n = min(block, rows - start)
        if cache is None or not unique or start < unique:
            frame = generate(n, seed + start)
            frame = frame[[c for c in frame.columns if c in _INPUT_COLUMNS]]
            cache = frame
        else:
            frame = cache.iloc[:n]
        frame = frame.assign(id=[f"B{start + i:07d}" for i in range(n)])
        frame.to_csv(path, mode="w" if first else "a", header=first, index=False, encoding="utf-8")
        first = False
        start += n


def ensure_model(model: str | None, workdir: Path) -> str:
    from triage import registry

    if model:
        return str(registry.resolve(model))
    try:
        return str(registry.resolve(None))
    except registry.ModelDirectoryError:
        pass
    root = workdir / "models"
    if (root / "bench-model").is_dir():
        return str(root / "bench-model")
    from triage.model import TriageModel
    from triage.synth import generate

    print("没有冠军模型：用 3000 封合成信训练一个小模型 …", file=sys.stderr)
    m = TriageModel().fit(generate(3000, 12345))
    return str(registry.save_version(m, root=root, version="bench-model"))


def _measure_once(a, model: str, src: Path, workdir: Path, env: dict, jobs: int, *, scorer_first: bool) -> dict | None:
    """One measurement of the scorer and both baselines at ``jobs`` processes (None with
    --scorer-only, which prints its own line)."""
    out = workdir / f"scored_{a.rows}_j{jobs}.csv"
    load0 = os.getloadavg()[0]

    def scorer():
        return run_measured([sys.executable, "-c", _SCORE_CHILD, model, str(src), str(out), str(jobs), str(a.chunksize)], env, a.sample_interval)

    def baseline(how: str):
        return run_measured([sys.executable, "-c", _JIEBA_CHILD, str(src), str(jobs), str(a.chunksize), how], env, a.sample_interval)

    if a.scorer_only:
        r, wall, rss = scorer()
        assert r["rows"] == a.rows, r
        print(
            f"scorer only, {a.rows} rows, jobs={jobs}: {a.rows / r['seconds']:.0f} letters/s, {r['seconds']:.1f} s, "
            f"peak memory (PSS, process tree) {rss:.0f} MiB (target < 1024), errors {r['errors']}"
        )
        out.unlink(missing_ok=True)
        return None
    if scorer_first:
        (r, wall, rss), (j, _, jrss), (g, _, _) = scorer(), baseline("jieba"), baseline("segmenter")
    else:
        (j, _, jrss), (g, _, _), (r, wall, rss) = baseline("jieba"), baseline("segmenter"), scorer()
    assert r["rows"] == a.rows == j["rows"] == g["rows"], (r, j, g)
    x = {
        "scorer_letters_per_s": r["rows"] / r["seconds"],
        "scorer_seconds": r["seconds"],
        "scorer_wall_s": wall,
        "scorer_peak_rss_mib": rss,
        # CPU time (user + system) of the scoring process and of its workers, during
        # score_file: less sensitive than wall time to other work on the machine
        "scorer_main_cpu_s": r["main_cpu_s"],
        "scorer_workers_cpu_s": r["workers_cpu_s"],
        "scorer_cpu_ms_per_letter": 1000 * (r["main_cpu_s"] + r["workers_cpu_s"]) / r["rows"],
        "jieba_letters_per_s": j["rows"] / j["seconds"],
        "jieba_peak_rss_mib": jrss,
        "jieba_cpu_ms_per_letter": 1000 * (j["main_cpu_s"] + j["workers_cpu_s"]) / j["rows"],
        "segmenter_letters_per_s": g["rows"] / g["seconds"],
        "segmenter_cpu_ms_per_letter": 1000 * (g["main_cpu_s"] + g["workers_cpu_s"]) / g["rows"],
        "errors": r["errors"],
        "sampler_cpu_s": r["sampler_cpu_s"],
        "load_before": load0,
        "load_after": os.getloadavg()[0],
    }
    x["ratio"] = x["scorer_letters_per_s"] / x["jieba_letters_per_s"]
    x["ratio_segmenter"] = x["scorer_letters_per_s"] / x["segmenter_letters_per_s"]
    return x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model")
    ap.add_argument("--chunksize", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-interval", type=float, default=SAMPLE_INTERVAL_S, help="seconds between memory samples (default 1)")
    ap.add_argument("--workdir", help="where the letters, outputs and a trained model go (default: a temporary directory)")
    ap.add_argument("--unique", type=int, help="generate only this many distinct letters and repeat them (fast 1,000,000-row files)")
    ap.add_argument(
        "--pipeline-only",
        action="store_true",
        help="replace the model by a constant suggestion: the scorer's own memory and overhead at large row counts, no jieba baseline",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each process count this many times, scorer and baselines in alternating order, and report medians "
        "(a shared machine's speed drifts over minutes)",
    )
    ap.add_argument(
        "--scorer-only",
        action="store_true",
        help="measure the scorer alone (no jieba or segmenter baseline): peak memory with the real model at 1,000,000 rows",
    )
    a = ap.parse_args(argv)

    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="bench-score-"))
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"letters_{a.rows}.csv"
    if not src.exists():
        t = time.perf_counter()
        make_letters(a.rows, a.seed, src, a.unique)
        print(f"生成 {a.rows} 封合成信：{time.perf_counter() - t:.1f} 秒 → {src}", file=sys.stderr)
    model = ensure_model(a.model, workdir)
    # the repository (triage) and bench/ (_common, for the baselines) on the children's path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "bench"), os.environ.get("PYTHONPATH", "")])}

    if a.pipeline_only:
        for jobs in a.jobs:
            out = workdir / f"pipeline_{a.rows}_j{jobs}.csv"
            r, wall, rss = run_measured([sys.executable, "-c", _PIPELINE_CHILD, model, str(src), str(out), str(jobs), str(a.chunksize)], env, a.sample_interval)
            assert r["rows"] == a.rows, r
            print(
                f"pipeline only (constant model), {a.rows} rows, jobs={jobs}: {a.rows / r['seconds']:.0f} rows/s, "
                f"{r['seconds']:.1f} s, peak memory (PSS, process tree) {rss:.0f} MiB"
            )
            out.unlink(missing_ok=True)
        return 0

    efficiency = float("nan")  # not measured for the scorer alone, which prints no speed-up
    if not a.scorer_only:
        efficiency = machine_parallel_efficiency()
        print(f"本机并行效率（两个进程同时跑纯 Python 循环）：{efficiency:.2f}（1.00 为两个完整的核）", file=sys.stderr)
    results: dict[int, dict] = {}
    per_run: dict[int, list[dict]] = {}
    for rep in range(max(1, a.repeat)):  # repeats outermost: drift spreads over every process count
        for jobs in a.jobs:
            x = _measure_once(a, model, src, workdir, env, jobs, scorer_first=rep % 2 == 0)
            if x is None:  # --scorer-only
                continue
            per_run.setdefault(jobs, []).append(x)
            print(
                f"jobs={jobs}（第 {rep + 1} 次）: 分拣 {x['scorer_letters_per_s']:.0f} 件/秒（{x['scorer_seconds']:.1f} 秒，"
                f"进程树峰值内存 {x['scorer_peak_rss_mib']:.0f} MiB，CPU {x['scorer_cpu_ms_per_letter']:.2f} 毫秒/件，"
                f"其中主进程 {x['scorer_main_cpu_s']:.1f} 秒）；仅 jieba 分词 {x['jieba_letters_per_s']:.0f} 件/秒"
                f"（CPU {x['jieba_cpu_ms_per_letter']:.2f} 毫秒/件）；比值 {x['ratio']:.2f}；"
                f"本项目分词器 {x['segmenter_letters_per_s']:.0f} 件/秒，比值 {x['ratio_segmenter']:.2f}；"
                f"负载 {x['load_before']:.1f}→{x['load_after']:.1f}",
                file=sys.stderr,
            )
    for jobs, runs in per_run.items():
        results[jobs] = {k: float(statistics.median([r[k] for r in runs])) for k in runs[0]}
        results[jobs]["ratios"] = [round(r["ratio"], 3) for r in runs]

    if a.scorer_only:
        return 0
    print(
        f"\n# bench/score.py — {a.rows} letters, chunksize {a.chunksize}, model {Path(model).name}, {os.cpu_count()} CPUs"
        + (f", medians of {a.repeat} runs (ratios per run in the JSON)" if a.repeat > 1 else "")
    )
    print(
        "| jobs | scorer letters/s | jieba letters/s | scorer/jieba (≥0.9) | segmenter letters/s | scorer/segmenter "
        "| scorer CPU ms/letter | jieba CPU ms/letter | segmenter CPU ms/letter | CPU ratio (jieba/scorer) "
        "| peak memory (PSS) MiB (<1024) | load 1 min |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for jobs, x in results.items():
        print(
            f"| {jobs} | {x['scorer_letters_per_s']:.0f} | {x['jieba_letters_per_s']:.0f} | "
            f"{x['ratio']:.2f} | {x['segmenter_letters_per_s']:.0f} | "
            f"{x['ratio_segmenter']:.2f} | {x['scorer_cpu_ms_per_letter']:.2f} | "
            f"{x['jieba_cpu_ms_per_letter']:.2f} | {x['segmenter_cpu_ms_per_letter']:.2f} | "
            f"{x['jieba_cpu_ms_per_letter'] / x['scorer_cpu_ms_per_letter']:.2f} | "
            f"{x['scorer_peak_rss_mib']:.0f} | {x['load_before']:.1f}→{x['load_after']:.1f} |"
        )
    if 1 in results and 2 in results:
        sp = results[2]["scorer_letters_per_s"] / results[1]["scorer_letters_per_s"]
        jsp = results[2]["jieba_letters_per_s"] / results[1]["jieba_letters_per_s"]
        cpu_sp = 2 * results[1]["scorer_cpu_ms_per_letter"] / results[2]["scorer_cpu_ms_per_letter"]
        print(
            f"\nspeed-up 1→2 jobs: scorer {sp:.2f} (target ≥ 1.8), jieba {jsp:.2f}; "
            f"this machine's parallel efficiency {efficiency:.2f} (a fixed pure-Python loop, 2 processes vs 1: at most {2 * efficiency:.2f}×)"
        )
        if len(per_run[1]) > 1:
            # the two runs of one repeat are minutes apart; the medians above may pair runs
            # from different repeats, which a host whose speed drifts over the run skews
            paired = [b["scorer_letters_per_s"] / a["scorer_letters_per_s"] for a, b in zip(per_run[1], per_run[2])]
            jpaired = [b["jieba_letters_per_s"] / a["jieba_letters_per_s"] for a, b in zip(per_run[1], per_run[2])]
            results[2]["speedups_per_repeat"] = [round(x, 3) for x in paired]
            print(
                "speed-up within each repeat: scorer " + ", ".join(f"{x:.2f}" for x in paired)
                + f" (median {statistics.median(paired):.2f}); jieba " + ", ".join(f"{x:.2f}" for x in jpaired)
            )
        print(
            f"CPU per letter, 2 jobs vs 1: {results[2]['scorer_cpu_ms_per_letter'] / results[1]['scorer_cpu_ms_per_letter']:.2f}; "
            f"the speed-up two idle cores would allow if nothing ran serially: {cpu_sp:.2f}"
        )
        if max(x["load_before"] for x in results.values()) > 0.5:
            print("note: the machine was not idle (load above); wall-clock figures understate the scorer where other work competed")
    print(json.dumps({"rows": a.rows, "chunksize": a.chunksize, "parallel_efficiency": efficiency, "results": results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
