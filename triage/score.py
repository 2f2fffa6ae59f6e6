"""The batch scorer: a clerk's table in, suggestions for every letter out.

``score_file(input, output)`` reads a CSV/XLSX export through the schema (:mod:`triage.io`),
scores it chunk by chunk with a registered model version, and writes every input row exactly
once, in input order, with the scorer's output fields (:data:`triage.schema.OUTPUT_FIELDS`):

* ``.csv`` output keeps English column names and JSON for evidence/alternatives;
* ``.xlsx`` output is the clerks' workbook (:mod:`triage.workbook`): sheets 全部, 高风险,
  涉法涉诉, 待复核 and 说明, Chinese headers, readable evidence.

A row that cannot be scored (no title and no text, or an exception while predicting it) keeps
its place and carries the reason in ``error``; only an unusable input as a whole
(:class:`triage.schema.SchemaError`) stops the run.

How it scales: a cheap first pass counts, over the *whole* batch, how often each ID number
(or phone) recurs, so the risk head sees the batch-wide recurrence and not a per-chunk one;
then chunks go to ``jobs`` worker processes (each loads the model once) and each finished
chunk is written to a checkpoint directory ``.<output name>.parts/`` next to the output.
``resume=True`` continues an interrupted run from those parts (the manifest must match the
input file, model version and settings); the final file is assembled from the parts and
written atomically, and the parts are removed.  CSV→CSV keeps memory bounded at any size.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import datetime as dt
import gc
import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from triage import schema
from triage.heap import batch_heap, keep_freed_memory
from triage.io import CSV_SUFFIXES, XLSX_SUFFIXES, atomic_write, guard_formula, iter_table
from triage.model import recurrence_keys
from triage.normalize import is_id_number_or_mobile, mask_field, mask_pii
from triage.schema import OUTPUT_FIELDS, PII_FIELDS, SchemaError, display_name
from triage.workbook import ACCEPT_DAYS

#: XLSX sheets hold at most this many rows, header included
EXCEL_MAX_ROWS = 1_048_576
PARTS_FORMAT = 2  # 2: the last chunks are cut finer (_chunk_sizes)
MIN_CHUNK = 200
#: the rows of the last TAIL_SPLIT chunks are cut into chunks TAIL_SPLIT times smaller
TAIL_SPLIT = 4
#: letters per model call within a chunk (see _predict)
PREDICT_BATCH = 500
OUTPUT_SUFFIX = "_分拣结果"
#: heads whose label distribution and confidence are summarised (drift checks use these)
SUMMARY_HEADS: tuple[str, ...] = ("track", "route", "department", "risk")
_CONFIDENCE = {"track": "track_confidence", "route": "route_confidence", "department": "department_confidence", "risk": "risk_score"}
_MAX_MESSAGES = 200


class ResumeError(RuntimeError):
    """The checkpoint directory does not belong to this run (other input, model or settings)."""


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


@dataclass
class ScoreSummary:
    """What a run did; ``report()`` is the Chinese summary printed at the end."""

    input: str
    output: str
    model_version: str = ""
    rows: int = 0
    scored: int = 0
    errors: int = 0
    needs_review: int = 0
    #: head -> label -> number of letters
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    #: head -> mean confidence of the suggestion (risk: mean risk score)
    mean_confidence: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    jobs: int = 1
    chunks: int = 0
    resumed_chunks: int = 0
    batch_id: str | None = None
    #: validation warnings and row errors (the first few hundred)
    warnings: list[str] = field(default_factory=list)
    row_errors: list[str] = field(default_factory=list)
    file_warnings: list[str] = field(default_factory=list)
    #: rows the review database did not take (the first few hundred), and column -> letters
    #: whose value was cut to the column's length there
    db_skipped: list[str] = field(default_factory=list)
    db_skipped_n: int = 0
    db_cut: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0

    def stats(self) -> dict:
        """The batch statistics stored with ``Store.record_batch`` (drift detection reads them)."""
        return {
            "input": Path(self.input).name,
            "rows": self.rows,
            "scored": self.scored,
            "errors": self.errors,
            "needs_review": self.needs_review,
            "labels": self.labels,
            "mean_confidence": self.mean_confidence,
            "db_skipped": self.db_skipped_n,
            "db_cut": self.db_cut,
        }

    def report(self) -> str:
        lines = [
            "分拣完成" if not self.errors else "分拣完成（部分行未能分拣，见“错误”列）",
            f"  输入：{self.input}",
            f"  输出：{self.output}",
            f"  模型版本：{self.model_version}",
            f"  共 {self.rows} 行，已分拣 {self.scored} 行，出错 {self.errors} 行，需复核 {self.needs_review} 行",
        ]
        for head in SUMMARY_HEADS:
            counts = self.labels.get(head)
            if not counts:
                continue
            dist = "，".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            mean = self.mean_confidence.get(head)
            what = "平均风险分值" if head == "risk" else "平均置信度"
            tail = f"（{what} {mean:.2f}）" if mean is not None else ""
            lines.append(f"  {OUTPUT_FIELDS[head]}：{dist}{tail}")
        if self.resumed_chunks:
            lines.append(f"  断点续跑：{self.resumed_chunks}/{self.chunks} 块沿用上次结果")
        if self.batch_id:
            lines.append(f"  已写入复核数据库，批次 {self.batch_id}")
        if self.db_skipped_n:
            lines.append(f"  未写入复核数据库 {self.db_skipped_n} 行（仍在输出文件中），例如：{self.db_skipped[0]}")
        if self.db_cut:
            cut = "，".join(f"{_db_column_name(c)} {n} 件" for c, n in sorted(self.db_cut.items()))
            lines.append(f"  复核数据库中过长的内容已截断：{cut}")
        if self.row_errors:
            lines.append(f"  未能分拣的行，例如：{self.row_errors[0]}")
        n_warn = len(self.warnings)
        if n_warn:
            lines.append(f"  提示 {n_warn} 条，例如：{self.warnings[0]}")
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        lines.append(f"  用时 {self.seconds:.1f} 秒（{rate:.0f} 件/秒，{self.jobs} 个进程）")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Paths and the checkpoint directory
# --------------------------------------------------------------------------------------


def _db_column_name(column: str) -> str:
    """A review-database column as the clerk's summary names it."""
    if column == "batch_id":
        return "批次号"
    if column.startswith("label_"):
        return f"{display_name(column[len('label_'):])}（人工）"
    return display_name(column)


def default_output(input_path: str | os.PathLike) -> Path:
    p = Path(input_path)
    return p.with_name(f"{p.stem}{OUTPUT_SUFFIX}.xlsx")


def parts_dir(output: str | os.PathLike) -> Path:
    out = Path(output)
    return out.with_name(f".{out.name}.parts")


def _output_kind(output: Path) -> str:
    suffix = output.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".xlsx",):
        return "xlsx"
    raise SchemaError("不支持的输出文件类型", source=str(output), expected=".xlsx（分拣工作簿）或 .csv", found=suffix or "（没有扩展名）")


def _part_path(directory: Path, k: int) -> Path:
    return directory / f"{k:06d}.csv"


def _stats_path(directory: Path, k: int) -> Path:
    return directory / f"{k:06d}.json"


def _chunk_sizes(n_rows: int, chunksize: int) -> list[int]:
    """The rows of each chunk: ``chunksize``, except that the last ``TAIL_SPLIT`` chunks' worth of
    rows is cut ``TAIL_SPLIT`` times finer (none under ``MIN_CHUNK``).  With parallel workers the
    run ends when the last chunk does, and the other workers wait for it: a quarter of a chunk
    is a quarter of that wait (about 0.4 s of the last 1.5 s at 2,000 letters a chunk).  Depends
    on the row count and ``chunksize`` only, so a resumed run cuts the same chunks whatever
    ``--jobs`` it is given."""
    small = max(MIN_CHUNK, chunksize // TAIL_SPLIT)
    if small >= chunksize:
        return [chunksize]
    n_big = max(0, n_rows - TAIL_SPLIT * chunksize) // chunksize
    rest = n_rows - n_big * chunksize
    return [chunksize] * n_big + [small] * max(1, -(-rest // small))


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _part_done(directory: Path, k: int) -> bool:
    return _part_path(directory, k).is_file() and _stats_path(directory, k).is_file()


# --------------------------------------------------------------------------------------
# Batch-wide recurrence (first pass)
# --------------------------------------------------------------------------------------


def _recurrence_keys(frame: pd.DataFrame) -> np.ndarray:
    """The key model.recurrence_counts groups by (one definition, in triage.model)."""
    return recurrence_keys(frame).to_numpy(dtype=object)


def _hash_keys(keys: np.ndarray) -> np.ndarray:
    return pd.util.hash_array(keys, categorize=False) if len(keys) else np.zeros(0, dtype=np.uint64)


@dataclass
class _Recurrence:
    """Counts of each recurrence key over the whole batch, stored as sorted 64-bit hashes."""

    hashes: np.ndarray
    counts: np.ndarray

    def lookup(self, frame: pd.DataFrame) -> np.ndarray:
        keys = _recurrence_keys(frame)
        out = np.ones(len(keys), dtype=float)
        has = keys != ""
        if has.any() and len(self.hashes):
            h = _hash_keys(keys[has])
            pos = np.searchsorted(self.hashes, h)
            pos = np.minimum(pos, len(self.hashes) - 1)
            found = self.hashes[pos] == h
            vals = np.where(found, self.counts[pos], 1)
            out[has] = vals
        return out


def _first_pass(path: str, *, chunksize: int, sheet) -> tuple[int, _Recurrence, str | None]:
    """Rows in the file, the batch-wide recurrence counts and the text encoding found (so the
    second pass need not scan the whole file for it again); cheap (no model)."""
    n = 0
    hashes: list[np.ndarray] = []
    encoding = None
    for table in iter_table(path, chunksize=max(chunksize, 20_000), sheet=sheet):
        encoding = table.encoding
        n += len(table.frame)
        if "phone" in table.frame.columns or "id_number" in table.frame.columns:
            keys = _recurrence_keys(table.frame)
            hashes.append(_hash_keys(keys[keys != ""]))
    allh = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    uniq, counts = np.unique(allh, return_counts=True)
    return n, _Recurrence(uniq, counts.astype(float)), (encoding if Path(path).suffix.lower() in CSV_SUFFIXES else None)


# --------------------------------------------------------------------------------------
# Scoring one chunk (in a worker process, or in-process for jobs=1)
# --------------------------------------------------------------------------------------

_MODEL = None
_MODEL_VERSION = ""
#: the batch-wide recurrence counts, set before the workers fork (they inherit it; a spawned
#: worker gets it from its initializer): each chunk looks its rows up where it is scored,
#: not in the process that reads the file, and the counts cross no pipe per chunk
_RECURRENCE: _Recurrence | None = None


def _init_worker(model_dir: str, recurrence: _Recurrence) -> None:
    """Process-pool initializer: load and verify the model once per worker."""
    global _MODEL, _MODEL_VERSION, _RECURRENCE
    from triage.registry import load_model

    keep_freed_memory()  # a spawned worker does not inherit the parent's heap settings
    _MODEL, manifest = load_model(model_dir)
    _MODEL_VERSION = str(manifest["version"])
    _RECURRENCE = recurrence


def _set_model(model, version: str) -> None:
    global _MODEL, _MODEL_VERSION
    _MODEL, _MODEL_VERSION = model, version


def _set_recurrence(recurrence: _Recurrence | None) -> None:
    global _RECURRENCE
    _RECURRENCE = recurrence


def _fork_context():
    """The ``fork`` start method where the platform has it (Linux), else None."""
    import multiprocessing as mp

    try:
        return mp.get_context("fork")
    except ValueError:
        return None


def _load_and_warm_up(model_dir, version: str) -> None:
    """Load the model for in-process scoring or for forked workers, build its lookup tables
    (``prepare``: one letter alone is too small a batch to build the segmenter's) and score one
    letter, so tables and caches are built before the batch (and, with workers, before forking:
    they inherit the loaded, warmed-up model and the tokenizer, with no per-worker load, and its
    arrays stay shared between the processes)."""
    from triage.registry import load_model

    model_obj, _ = load_model(model_dir)
    _set_model(model_obj, version)
    try:
        _MODEL.prepare()
        _MODEL.predict(pd.DataFrame({"title": ["预热"], "text": ["来信反映问题"], "recurrence": [1.0]}), version=_MODEL_VERSION)
    except Exception:  # noqa: BLE001 - a model that fails here reports its error on the real rows
        pass


@dataclass
class _Task:
    k: int
    frame: pd.DataFrame  # validated chunk, input columns only (renamed for output)
    row_errors: dict[int, str]  # frame index -> reason
    columns: list[str]  # output column order
    part: str  # path of the part file to write (final name; written as .tmp)
    unmask: bool
    want_records: bool
    header_row: int = 1
    generated_ids: frozenset[int] = frozenset()  # rows whose id was made from the row number


def _error_text(exc: BaseException) -> str:
    msg = mask_pii(str(exc)).replace("\n", " ")
    if len(msg) > 300:
        msg = msg[:300] + "…"
    return f"分拣出错（{type(exc).__name__}：{msg}）"


def _predict(frame: pd.DataFrame, rec: np.ndarray) -> tuple[pd.DataFrame, dict[Any, str]]:
    """Predict a frame; on an exception retry row by row and report only the failing rows.

    A chunk goes to the model in batches of at most :data:`PREDICT_BATCH` letters: the
    vectorised featurising and explaining hold arrays proportional to the batch, and smaller
    batches keep each worker's peak memory low at no cost in speed."""
    if len(frame) > PREDICT_BATCH:
        outs, failed = [], {}
        for lo in range(0, len(frame), PREDICT_BATCH):
            out, bad = _predict(frame.iloc[lo : lo + PREDICT_BATCH], rec[lo : lo + PREDICT_BATCH])
            outs.append(out)
            failed.update(bad)
        return pd.concat(outs), failed
    work = frame.copy()
    work["recurrence"] = rec
    try:
        return _MODEL.predict(work, version=_MODEL_VERSION), {}
    except Exception:  # noqa: BLE001 - any failure of a row must not stop the batch
        pass
    parts, failed = [], {}
    for i in range(len(work)):
        one = work.iloc[i : i + 1]
        try:
            parts.append(_MODEL.predict(one, version=_MODEL_VERSION))
        except Exception as exc:  # noqa: BLE001
            failed[one.index[0]] = _error_text(exc)
    out = pd.concat(parts) if parts else pd.DataFrame(index=pd.Index([], dtype=frame.index.dtype))
    return out, failed


def _accept_by(received: pd.Series) -> list[str]:
    out = []
    for v in received:
        if v is None or v is pd.NaT or (isinstance(v, float) and v != v) or pd.isna(v):
            out.append("")
        else:
            out.append((pd.Timestamp(v).date() + dt.timedelta(days=ACCEPT_DAYS)).isoformat())
    return out


def _scored_frame(task: _Task) -> pd.DataFrame:
    """Input columns + output fields for every row of the chunk, in order, unmasked."""
    frame = task.frame
    ok_index = [i for i in frame.index if i not in task.row_errors]
    pos = np.asarray([i not in task.row_errors for i in frame.index], dtype=bool)
    errors: dict[Any, str] = {i: task.row_errors[i] for i in frame.index if i in task.row_errors}
    if ok_index:
        assert _RECURRENCE is not None  # set by score_file before any chunk is scored
        pred, failed = _predict(frame.loc[ok_index], _RECURRENCE.lookup(frame)[pos])
        errors.update(failed)
    else:
        pred = pd.DataFrame(index=pd.Index([], dtype=frame.index.dtype))
    full = frame.copy()
    pred = pred.reindex(frame.index)
    for name in OUTPUT_FIELDS:
        if name in ("accept_by", "error"):
            continue
        if name in pred.columns:
            full[name] = pred[name]
        else:
            full[name] = None
    full["model_version"] = [_MODEL_VERSION if i not in errors else "" for i in frame.index]
    full["accept_by"] = _accept_by(frame["received_at"]) if "received_at" in frame.columns else ""
    full["error"] = [errors.get(i, "") for i in frame.index]
    return full


def _db_key(row: Mapping[str, Any]) -> str:
    """The review database's id for a row whose id was made from its row number (ROW000012):
    that id with a hash of the letter, so the same file scored again updates its own rows, and
    another file's row 12 is another letter instead of overwriting this one."""
    h = hashlib.blake2b(digest_size=6)
    for name in ("title", "text", "received_at"):
        h.update(str(row.get(name, "")).encode("utf-8", "surrogatepass") + b"\x00")
    return f"{row['id']}-{h.hexdigest()}"


def _chunk_stats(full: pd.DataFrame, header_row: int = 1, unmask: bool = False) -> dict:
    ok = full["error"] == ""
    scored = full[ok]
    stats: dict[str, Any] = {
        "rows": int(len(full)),
        "scored": int(ok.sum()),
        "errors": int((~ok).sum()),
        "needs_review": int(scored["needs_review"].fillna(False).astype(bool).sum()) if len(scored) else 0,
        "first_row": header_row + int(full.index[0]) + 1 if len(full) else 0,  # the file's row of the first
        "labels": {},
        "conf_sum": {},
        "conf_n": {},
        "row_errors": [
            f"第 {header_row + int(i) + 1} 行（编号 {_shown_id(full.at[i, 'id'], unmask)}）：{full.at[i, 'error']}"
            for i in full.index[~ok][:_MAX_MESSAGES]
        ],
    }
    for head in SUMMARY_HEADS:
        if head not in scored.columns:
            continue
        labels = scored[head].fillna("").astype(str)
        labels = labels[labels != ""]
        stats["labels"][head] = {str(k): int(v) for k, v in labels.value_counts().items()}
        conf = pd.to_numeric(scored[_CONFIDENCE[head]], errors="coerce").dropna()
        stats["conf_sum"][head] = float(conf.sum())
        stats["conf_n"][head] = int(len(conf))
    return stats


def _cell_out(value: Any) -> str:
    """A value as CSV text (dates ISO, missing empty, booleans true/false)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return ""
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _shown_id(value: Any, unmask: bool) -> Any:
    """A letter id as the output and the messages show it: masked only when the whole id is a
    resident ID number (valid check digit) or a mobile number, i.e. personal data used as the
    letter's number.  Other ids, long digit serials included, stay whole, so that the clerk can
    find the letter in the bureau's own system."""
    if unmask or not isinstance(value, str):
        return value
    return mask_pii(value) if is_id_number_or_mobile(value) else value


#: columns of free text, masked with mask_pii (the channel is the clerk's free text too)
_FREE_TEXT = frozenset({"title", "text", "evidence", "channel"})


def _mask_rule(name: str, passthrough: Iterable[str]):
    """How column ``name`` is masked for export (a function of a non-empty text), or None: the
    personal fields entirely, the id when it is personal data, free text and the clerk's own
    columns with mask_pii; the model's outputs are left as they are."""
    if name in PII_FIELDS:
        return lambda v: mask_field(name, v)
    if name == "id":
        return lambda v: _shown_id(v, False)
    if name in _FREE_TEXT or name in passthrough:
        return mask_pii
    return None


def _masked(full: pd.DataFrame, passthrough: Iterable[str]) -> pd.DataFrame:
    out = full.copy()
    passthrough = set(passthrough)
    for name in out.columns:
        rule = _mask_rule(name, passthrough)
        if rule is not None:
            out[name] = [rule(v) if isinstance(v, str) and v else v for v in out[name]]
    return out


def _rendered(task: _Task, full: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[list[str]]]:
    """The chunk scored (``full``: unmasked, for the summary and the database) and its output
    columns as CSV text (masked unless ``task.unmask``)."""
    if full is None:
        full = _scored_frame(task)
    shown = full if task.unmask else _masked(full, _passthrough(full.columns))
    return full, [_column_out(shown[c]) for c in task.columns]


def _passthrough(columns: Iterable[str]) -> list[str]:
    """The clerk's own columns: neither an input field of the schema nor an output field."""
    known = set(OUTPUT_FIELDS) | set(schema.INPUT_BY_NAME)
    return [c for c in columns if c not in known]


def _rendered_row_by_row(task: _Task) -> tuple[pd.DataFrame, list[list[str]]]:
    """:func:`_rendered`, one row at a time, after it raised for the whole chunk.  A row that
    raises alone (a value no step expected; the model's own failures are caught per row in
    :func:`_predict`) is output with its input and the reason in ``error``: one bad row never
    stops the batch, and no row is lost."""
    fulls: list[pd.DataFrame] = []
    columns: list[list[str]] = [[] for _ in task.columns]
    for i in range(len(task.frame)):
        one = replace(task, frame=task.frame.iloc[i : i + 1])
        try:
            full, cols = _rendered(one)
        except Exception as exc:  # noqa: BLE001 - reported in the row's error column
            full = one.frame.copy()
            for name in OUTPUT_FIELDS:
                full[name] = None
            full["model_version"] = full["accept_by"] = ""
            full["error"] = _error_text(exc)
            try:
                full, cols = _rendered(one, full)
            except Exception:  # noqa: BLE001 - even its input will not render: cell by cell
                cols = _bare_row(full, task)
        fulls.append(full)
        for out, col in zip(columns, cols):
            out.extend(col)
    return (pd.concat(fulls) if fulls else _scored_frame(task)), columns


def _bare_row(full: pd.DataFrame, task: _Task) -> list[list[str]]:
    """A one-row ``full`` as output cells taken one at a time (masked unless ``task.unmask``,
    formula-guarded); a cell that fails even so is left blank, and the row keeps its error."""
    out = []
    passthrough = set(_passthrough(task.columns))
    for c in task.columns:
        try:
            text = _cell_out(full[c].iloc[0])
            rule = None if task.unmask or not text else _mask_rule(c, passthrough)
            out.append([guard_formula(rule(text) if rule else text)])
        except Exception:  # noqa: BLE001
            out.append([""])
    return out


def _process_chunk(task: _Task) -> tuple[int, dict, list[dict] | None]:
    """Score one chunk and write its part (as ``.tmp``; the caller publishes it)."""
    try:
        full, columns = _rendered(task)
    except Exception:  # noqa: BLE001 - find the row(s) behind it; the others are scored
        full, columns = _rendered_row_by_row(task)
    stats = _chunk_stats(full, task.header_row, task.unmask)
    records = None
    if task.want_records:
        records = full.to_dict("records")
        for i, rec in zip(full.index, records):
            if i in task.generated_ids:
                rec["id"] = _db_key(rec)
    part = Path(task.part)
    with open(part.with_name(part.name + ".tmp"), "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(zip(*columns))
    return task.k, stats, records


def _column_out(values: pd.Series) -> list[str]:
    """A column as CSV text, formula-guarded: ``guard_formula(_cell_out(v))`` for each value,
    with the common types converted without a function call per cell."""
    kind = values.dtype.kind
    if kind == "b":
        out = ["true" if v else "false" for v in values.tolist()]
    elif kind == "f":
        out = ["" if v != v else str(v) for v in values.tolist()]
    else:
        out = [v if type(v) is str else _cell_out(v) for v in values.tolist()]
    return [guard_formula(v) for v in out]


def _publish(directory: Path, k: int, stats: dict) -> None:
    _write_atomic_text(_stats_path(directory, k), json.dumps(stats, ensure_ascii=False))
    part = _part_path(directory, k)
    os.replace(part.with_name(part.name + ".tmp"), part)


# --------------------------------------------------------------------------------------
# Assembling the output
# --------------------------------------------------------------------------------------


def _read_part(path: Path, columns: list[str]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    return pd.read_csv(path, header=None, names=columns, dtype=str, keep_default_na=False, encoding="utf-8")


def _assemble_csv(directory: Path, n_chunks: int, columns: list[str], output: Path) -> None:
    sep = "\t" if output.suffix.lower() == ".tsv" else ","

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh, lineterminator="\r\n", delimiter=sep).writerow([guard_formula(c) for c in columns])
            if sep == ",":
                fh.flush()
                # the parts are already this file's rows as UTF-8 bytes: copied as bytes (a
                # text copy decodes and re-encodes them, twice the time)
                for k in range(n_chunks):
                    with open(_part_path(directory, k), "rb") as part:
                        shutil.copyfileobj(part, fh.buffer, 1 << 20)
                fh.buffer.flush()
            else:
                w = csv.writer(fh, lineterminator="\r\n", delimiter=sep)
                for k in range(n_chunks):
                    for row in _read_part(_part_path(directory, k), columns).itertuples(index=False, name=None):
                        w.writerow(row)

    atomic_write(output, write)


def _assemble_xlsx(directory: Path, n_chunks: int, columns: list[str], output: Path, info: dict) -> list[str]:
    from triage.workbook import write_workbook

    frames = (_read_part(_part_path(directory, k), columns) for k in range(n_chunks))
    warns: list[str] = []
    atomic_write(output, lambda tmp: warns.extend(write_workbook(tmp, columns, frames, info=info)))
    return warns


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def _output_columns(frame: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Input columns (renamed where they collide with an output field) + output fields."""
    taken = set(OUTPUT_FIELDS) | set(OUTPUT_FIELDS.values()) | {"recurrence"}
    rename: dict[str, str] = {}
    cols: list[str] = []
    for c in frame.columns:
        name = str(c)
        if name in taken and name not in schema.INPUT_BY_NAME:
            new = f"{name}（原表）"
            while new in frame.columns or new in rename.values():
                new += "_"
            rename[name] = new
            name = new
        cols.append(name)
    return cols + list(OUTPUT_FIELDS), rename


def _file_identity(path: Path) -> dict:
    st = path.stat()
    return {"input": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_manifest(directory: Path, expected: dict) -> dict | None:
    """The existing manifest if it matches ``expected``; None when there is none."""
    path = directory / "manifest.json"
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ResumeError(f"断点目录 {directory} 的清单无法读取（{exc}）；请删除该目录后重新分拣") from None
    names = {"input": "输入文件", "size": "文件大小", "mtime_ns": "修改时间", "model_version": "模型版本",
             "chunksize": "分块行数", "unmask": "是否显示个人信息", "sheet": "工作表", "format": "断点格式", "output_kind": "输出格式"}
    diffs = [f"{names.get(k, k)}（上次 {found.get(k)!r}，本次 {v!r}）" for k, v in expected.items() if found.get(k) != v]
    if diffs:
        raise ResumeError(
            f"断点目录 {directory} 与本次任务不符：" + "；".join(diffs) + "。请去掉 --resume 重新分拣，或恢复原来的输入和设置"
        )
    return found


def score_file(
    input: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    model: str | os.PathLike | None = None,
    jobs: int = 1,
    resume: bool = False,
    db: str | None = None,
    unmask: bool = False,
    chunksize: int = 2000,
    sheet: str | int | None = None,
    progress: bool = True,
    models_root: str | os.PathLike | None = None,
) -> ScoreSummary:
    """Score every row of ``input`` and write ``output`` (default ``<stem>_分拣结果.xlsx``).

    ``model`` is a version name or a model directory (default: the champion).  ``jobs``
    worker processes score chunks of ``chunksize`` rows.  ``resume`` continues an interrupted
    run from its checkpoint parts.  ``db`` also stores the results in the review database.
    Personal data is masked in the output unless ``unmask``.  Raises
    :class:`~triage.schema.SchemaError` when the input as a whole is unusable.
    While scoring, freed memory is kept in the C heap for the next chunk (:mod:`triage.heap`;
    glibc only), which leaves the calling process with glibc's thresholds fixed afterwards.
    """
    from tqdm import tqdm

    from triage.registry import load_model, read_manifest, resolve

    t0 = time.perf_counter()
    if chunksize < 1:
        raise ValueError("chunksize 必须为正整数")
    jobs = max(1, int(jobs))
    src = Path(input)
    out = Path(output) if output is not None else default_output(src)
    kind = _output_kind(out)
    if src.exists() and out.exists() and src.resolve() == out.resolve():
        raise SchemaError("输出文件不能与输入文件相同", source=str(src), expected="另一个文件名", found=str(out))
    model_dir = resolve(model, models_root)
    manifest = read_manifest(model_dir)
    version = str(manifest["version"])
    summary = ScoreSummary(input=str(src), output=str(out), model_version=version, jobs=jobs)

    # Pass 1: rows and batch-wide recurrence (also rejects an unusable file early).  With
    # forked workers, a process of its own reads the file while this one loads the model and
    # warms it up: both take a second or so per 100,000 letters, and the workers wait for both.
    # A model error is raised where one process would have loaded the model (below), so the
    # input's own errors and the other checks come first whatever --jobs is.
    fork = _fork_context() if jobs > 1 else None
    model_error: Exception | None = None
    first_pass = None
    if fork is not None:
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=fork) as reader:
            first = reader.submit(_first_pass, str(src), chunksize=chunksize, sheet=sheet)
            try:
                _load_and_warm_up(model_dir, version)
            except Exception as exc:  # noqa: BLE001 - raised after the input's checks, below
                model_error = exc
            try:
                first_pass = first.result()
            except cf.process.BrokenProcessPool:
                first_pass = None  # the reader died (killed, or an error that cannot cross): read here
    if first_pass is None:
        first_pass = _first_pass(str(src), chunksize=chunksize, sheet=sheet)
    n_rows, recurrence, encoding = first_pass
    # A small batch is cut finer so that parallel workers finish together (at least 16 chunks
    # up to `chunksize` rows each, none under MIN_CHUNK rows).  Depends on the file only, so a
    # resumed run cuts the same chunks whatever --jobs it is given.
    chunksize = min(chunksize, max(MIN_CHUNK, -(-n_rows // 16)))
    if kind == "xlsx" and n_rows + 1 > EXCEL_MAX_ROWS:
        raise SchemaError(
            "行数超过 Excel 工作表上限，无法写成 .xlsx",
            source=str(src),
            expected=f"不超过 {EXCEL_MAX_ROWS - 1} 行，或用 .csv 作为输出文件",
            found=f"{n_rows} 行",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    directory = parts_dir(out)
    expected = {
        "format": PARTS_FORMAT,
        **_file_identity(src),
        "model_version": version,
        "chunksize": chunksize,
        "unmask": bool(unmask),
        "sheet": sheet,
        "output_kind": kind,
    }
    previous = _check_manifest(directory, expected) if (resume and directory.is_dir()) else None
    if previous is None and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    batch_id = (previous or {}).get("batch_id") or f"{dt.datetime.now():%Y%m%d-%H%M%S}-{src.stem}"
    if previous is None:
        _write_atomic_text(directory / "manifest.json", json.dumps({**expected, "batch_id": batch_id}, ensure_ascii=False, indent=1))

    store = None
    if db:
        from triage.store import open_store

        store = open_store(db)  # fails early on a bad URL
        store.engine.dispose()  # no open connection is inherited by the forked workers
        summary.batch_id = batch_id

    pool = None
    frozen = False
    if model_error is not None:
        raise model_error
    if jobs == 1:  # (forked workers' model is loaded above; without fork, each worker loads its own)
        _load_and_warm_up(model_dir, version)
    if jobs == 1 or fork is not None:
        # Objects that exist now (the model, the tokenizer's dictionary) are left out of the
        # cyclic GC for the run: a full collection visits every tracked object, which costs
        # about 5% of a single process's time, and in forked workers each visit would also
        # copy the shared pages into the worker.
        # (Not when the caller froze objects itself: unfreezing at the end would undo that.)
        if gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()
            frozen = True
    _set_recurrence(recurrence)  # before the workers fork (at the first submit)
    if jobs > 1:
        if fork is not None:
            pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=fork)
        else:
            pool = cf.ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(str(model_dir), recurrence))

    bar = tqdm(total=n_rows, unit="件", desc="分拣", file=sys.stderr, disable=not progress, dynamic_ncols=True, mininterval=0.5)
    columns: list[str] | None = None
    n_chunks = 0
    pending: set[cf.Future] = set()

    def finish(k: int, stats: dict, records: list[dict] | None) -> None:
        if store is not None and records:
            stored = store.upsert_scored(records, version, batch_id)
            summary.db_skipped_n += len(stored.skipped)
            for sk in stored.skipped:
                if len(summary.db_skipped) < _MAX_MESSAGES:
                    summary.db_skipped.append(f"第 {stats['first_row'] + sk.index} 行：{sk.reason}")
            for column, n in stored.cut.items():
                summary.db_cut[column] = summary.db_cut.get(column, 0) + n
        _publish(directory, k, stats)
        bar.update(stats["rows"])

    def drain(block_until: int) -> None:
        nonlocal pending
        while len(pending) > block_until:
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                finish(*fut.result())

    # Freed arrays stay in the heap for the next chunk instead of being faulted in again (see
    # triage.heap); the workers, forked at the first submit, inherit the setting.  The settings
    # are released after the pool's shutdown, even when that is itself interrupted.
    with batch_heap():
        try:
            sizes = _chunk_sizes(n_rows, chunksize)
            for k, table in enumerate(iter_table(str(src), chunksize=sizes, sheet=sheet, encoding=encoding)):
                n_chunks = k + 1
                for w in table.report.warnings:
                    if len(summary.warnings) < _MAX_MESSAGES:
                        summary.warnings.append(w if unmask else mask_pii(w))  # they quote cells
                frame = table.frame
                if columns is None:
                    columns, rename = _output_columns(frame)
                if rename:
                    frame = frame.rename(columns=rename)
                if resume and _part_done(directory, k):
                    summary.resumed_chunks += 1
                    bar.update(len(frame))
                    continue
                task = _Task(
                    k=k,
                    frame=frame,
                    row_errors=dict(table.report.row_errors),
                    generated_ids=frozenset(table.report.generated_ids),
                    columns=columns,
                    part=str(_part_path(directory, k)),
                    unmask=unmask,
                    want_records=store is not None,
                    header_row=table.header_row,
                )
                if pool is None:
                    finish(*_process_chunk(task))
                else:
                    pending.add(pool.submit(_process_chunk, task))
                    drain(2 * jobs)
            drain(0)
        except cf.process.BrokenProcessPool:
            # A worker died: surface the model error if that was the cause, else say how to continue.
            load_model(model_dir)
            raise RuntimeError(f"分拣进程意外退出；已完成的部分保存在 {directory}，可加 --resume 继续") from None
        finally:
            bar.close()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            _set_recurrence(None)
            if frozen:
                gc.unfreeze()

    assert columns is not None  # iter_table yields at least one (possibly empty) chunk
    missing = [k for k in range(n_chunks) if not _part_done(directory, k)]
    if missing:
        raise RuntimeError(f"断点目录 {directory} 缺少第 {missing[0]} 块的结果；请去掉 --resume 重新分拣")

    # Summary from every part (including the ones from an earlier, interrupted run).
    labels: dict[str, Counter] = {h: Counter() for h in SUMMARY_HEADS}
    conf_sum: Counter = Counter()
    conf_n: Counter = Counter()
    for k in range(n_chunks):
        st = json.loads(_stats_path(directory, k).read_text(encoding="utf-8"))
        summary.rows += st["rows"]
        summary.scored += st["scored"]
        summary.errors += st["errors"]
        summary.needs_review += st["needs_review"]
        for h, c in st["labels"].items():
            labels.setdefault(h, Counter()).update(c)
        conf_sum.update(st["conf_sum"])
        conf_n.update(st["conf_n"])
        for e in st.get("row_errors", []):
            if len(summary.row_errors) < _MAX_MESSAGES:
                summary.row_errors.append(e)
    summary.chunks = n_chunks
    summary.labels = {h: dict(c) for h, c in labels.items() if c}
    summary.mean_confidence = {h: round(conf_sum[h] / conf_n[h], 4) for h in conf_n if conf_n[h]}

    if kind == "csv":
        _assemble_csv(directory, n_chunks, columns, out)
    else:
        info = {
            "model_version": version,
            "input": src.name,
            "created_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "rows": summary.rows,
            "scored": summary.scored,
            "errors": summary.errors,
            "needs_review": summary.needs_review,
            "labels": summary.labels,
            "masked": not unmask,
        }
        summary.file_warnings = _assemble_xlsx(directory, n_chunks, columns, out, info)
    if store is not None:
        store.record_batch(batch_id, version, summary.stats())
        store.close()
    shutil.rmtree(directory, ignore_errors=True)
    summary.seconds = time.perf_counter() - t0
    return summary


# --------------------------------------------------------------------------------------
# Command line (the lead's cli.py calls main(argv) for `triage score`)
# --------------------------------------------------------------------------------------


def build_parser(parser: argparse.ArgumentParser | None = None, *, default_input: str | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="triage score", description="批量分拣来信：读入登记表，写出分拣结果（默认 .xlsx 工作簿）")
    if default_input is None:
        p.add_argument("input", help="登记表（.csv 或 .xlsx）")
    else:
        p.add_argument("input", nargs="?", default=default_input, help=f"登记表（.csv 或 .xlsx，GB18030/GBK/UTF-8）；默认为自带样例 {default_input}")
    p.add_argument("-o", "--output", help="输出文件（.xlsx 或 .csv；默认与输入同目录的 <文件名>_分拣结果.xlsx）")
    p.add_argument("--model", help="模型版本名或模型目录（默认：冠军模型）")
    p.add_argument("--jobs", type=int, default=1, help="并行进程数（默认 1）")
    p.add_argument("--resume", action="store_true", help="从上次中断处继续")
    p.add_argument("--db", help="同时写入复核数据库，如 sqlite:///triage.db")
    p.add_argument("--unmask", action="store_true", help="输出中显示完整个人信息（默认打码）")
    p.add_argument("--chunksize", type=int, default=2000, help="每块行数（默认 2000）")
    p.add_argument("--sheet", help="读取的工作表名称（.xlsx，默认第一个）")
    p.add_argument("--no-progress", action="store_true", help="不显示进度条")
    return p


def run_args(args: argparse.Namespace) -> int:
    """Run from parsed arguments (the ``triage score`` subcommand): prints the Chinese summary,
    or the error, on stderr and returns the exit code (2 unusable input, 3 model or database,
    4 checkpoint mismatch, 1 interrupted)."""
    from triage.registry import ModelDirectoryError
    from triage.store import StoreError

    try:
        summary = score_file(
            args.input,
            args.output,
            model=args.model,
            jobs=args.jobs,
            resume=args.resume,
            db=args.db,
            unmask=args.unmask,
            chunksize=getattr(args, "chunksize", 2000),
            sheet=getattr(args, "sheet", None),
            progress=not getattr(args, "no_progress", False),
        )
    except SchemaError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except ModelDirectoryError as exc:
        print(f"模型错误：{exc}", file=sys.stderr)
        return 3
    except ResumeError as exc:
        print(f"无法续跑：{exc}", file=sys.stderr)
        return 4
    except StoreError as exc:
        print(f"数据库错误：{exc}", file=sys.stderr)
        return 3
    except RuntimeError as exc:
        print(f"分拣中断：{exc}", file=sys.stderr)
        return 1
    print(summary.report(), file=sys.stderr)
    return summary.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    return run_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
