"""Model versions under ``models/<version>/`` and the champion pointer.

Each version directory holds the model file (skops), ``manifest.json`` (backend, config,
label sets, metrics, training-data hash, library versions, file hash, created_at) and
``MODEL_CARD.md``.  ``models/CHAMPION`` names the version the scorer uses by default.  Loading
checks the manifest, the backend name, the library versions and the file's SHA-256 before the
skops trusted-type check: a tampered or foreign directory is refused with a clear message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version as pkg_version
from pathlib import Path

import numpy as np

from .backends import BACKENDS, backend_class
from .io import current_umask
from .model import TriageModel

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CHAMPION_FILE = "CHAMPION"
MANIFEST = "manifest.json"
CARD = "MODEL_CARD.md"
MANIFEST_FORMAT = 1
LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "jieba", "skops")


class ModelDirectoryError(RuntimeError):
    """A model directory is missing, foreign, from an incompatible version, or tampered with."""


def models_dir(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("TRIAGE_MODELS_DIR") or DEFAULT_MODELS_DIR)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES + ("petition-triage",):
        try:
            out[lib] = pkg_version(lib)
        except PackageNotFoundError:
            out[lib] = "unknown"
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def save_version(
    model: TriageModel,
    *,
    root: str | Path | None = None,
    version: str | None = None,
    metrics: dict | None = None,
    data: dict | None = None,
    training: dict | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write a fitted model as a new version directory, atomically (temp dir, then rename)."""
    root = models_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    data = data or {}
    if version is None:
        tag = (data.get("sha256") or "nodata")[:8]
        version = f"{created:%Y%m%d-%H%M%S}-{tag}"
    final = root / version
    if final.exists():
        raise ModelDirectoryError(f"模型版本 {version} 已存在：{final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        model_path = model.backend_.save(tmp)
        for name, src in (extra_files or {}).items():
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": version,
            "backend": model.backend,
            "model_file": model_path.name,
            "model_sha256": sha256_file(model_path),
            "model_bytes": model_path.stat().st_size,
            "config": _jsonable(model.get_params()),
            "heads": {h: [str(c) for c in model.classes_[h]] for h in model.heads_},
            "metrics": _jsonable(metrics or {}),
            "data": _jsonable(data),
            "training": _jsonable(training or {}),
            "libraries": library_versions(),
            "created_at": created.isoformat(),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        (tmp / CARD).write_text(model_card(manifest), encoding="utf-8")
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it private (0700); a version is read by the scorer and the review app
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_manifest(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ModelDirectoryError(f"模型目录不存在：{directory}")
    if not path.is_file():
        raise ModelDirectoryError(f"{directory} 不是模型目录：缺少 {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirectoryError(f"{path} 无法解析：{exc}") from None
    for key in ("format", "version", "backend", "model_file", "model_sha256", "heads", "config"):
        if key not in manifest:
            raise ModelDirectoryError(f"{path} 缺少字段 “{key}”，不是本项目的模型清单")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ModelDirectoryError(f"{path} 的清单格式为 {manifest['format']}，本程序只支持 {MANIFEST_FORMAT}")
    if manifest["backend"] not in BACKENDS:
        raise ModelDirectoryError(f"{path} 使用未知后端 “{manifest['backend']}”，可用：{', '.join(BACKENDS)}")
    return manifest


def resolve(model: str | Path | None = None, root: str | Path | None = None) -> Path:
    """A model directory from a path, a version name, or (None) the champion."""
    if model is not None and Path(model).is_dir():
        return Path(model)
    root = models_dir(root)
    if model is None:
        champ = root / CHAMPION_FILE
        if not champ.is_file():
            raise ModelDirectoryError(f"{root} 中没有冠军模型（缺少 {CHAMPION_FILE}）；请先训练或用 --model 指定")
        model = champ.read_text(encoding="utf-8").strip()
    path = root / str(model)
    if not path.is_dir():
        raise ModelDirectoryError(f"找不到模型 “{model}”（既不是目录，也不是 {root} 下的版本）")
    return path


def load_model(model: str | Path | None = None, root: str | Path | None = None) -> tuple[TriageModel, dict]:
    """Load and verify a model version; returns ``(model, manifest)``."""
    directory = resolve(model, root)
    manifest = read_manifest(directory)
    model_path = directory / manifest["model_file"]
    if not model_path.is_file():
        raise ModelDirectoryError(f"{directory} 缺少模型文件 {manifest['model_file']}")
    if sha256_file(model_path) != manifest["model_sha256"]:
        raise ModelDirectoryError(f"{model_path} 的校验值与清单不符：文件被修改或损坏，拒绝加载")
    libs = manifest.get("libraries", {})
    here = library_versions()
    for lib in ("scikit-learn", "skops"):
        want, have = libs.get(lib, "unknown"), here.get(lib, "unknown")
        if want.split(".")[:2] != have.split(".")[:2]:
            raise ModelDirectoryError(f"{directory} 由 {lib} {want} 训练，当前为 {have}：版本不兼容，请重新训练")
    backend = backend_class(manifest["backend"]).load(directory)
    config = dict(manifest["config"])
    model = TriageModel(**config)
    model.backend_ = backend
    model.classes_ = {h: np.asarray(c) for h, c in backend.classes_.items()}
    model.heads_ = tuple(model.classes_)
    for head, labels in manifest["heads"].items():
        if list(map(str, model.classes_.get(head, []))) != list(labels):
            raise ModelDirectoryError(f"{directory}：分类头 “{head}” 的标签集与清单不符")
    return model, manifest


def list_versions(root: str | Path | None = None) -> list[dict]:
    root = models_dir(root)
    champ = champion(root)
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []:
        try:
            m = read_manifest(d)
        except ModelDirectoryError as exc:
            out.append({"version": d.name, "error": str(exc)})
            continue
        out.append(
            {
                "version": m["version"],
                "backend": m["backend"],
                "created_at": m.get("created_at"),
                "champion": d.name == champ,
                "macro_f1": {h: v.get("macro_f1") for h, v in m.get("metrics", {}).get("heads", {}).items()},
            }
        )
    return out


def champion(root: str | Path | None = None) -> str | None:
    path = models_dir(root) / CHAMPION_FILE
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def set_champion(version: str, root: str | Path | None = None, *, reason: str = "") -> None:
    """Point CHAMPION at ``version`` atomically and log the change in ``HISTORY.jsonl``."""
    root = models_dir(root)
    read_manifest(root / version)  # refuse to promote a broken directory
    previous = champion(root)
    tmp = root / f".{CHAMPION_FILE}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, root / CHAMPION_FILE)
    entry = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "champion": version, "previous": previous, "reason": reason}
    with open(root / "HISTORY.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def rollback(root: str | Path | None = None) -> str:
    """Make the previous champion the champion again."""
    root = models_dir(root)
    hist = root / "HISTORY.jsonl"
    entries = [json.loads(line) for line in hist.read_text(encoding="utf-8").splitlines() if line.strip()] if hist.is_file() else []
    current = champion(root)
    for e in reversed(entries):
        if e["champion"] == current and e.get("previous"):
            set_champion(e["previous"], root, reason=f"rollback from {current}")
            return e["previous"]
    raise ModelDirectoryError("没有可以回滚到的上一个冠军模型")


def model_card(manifest: dict) -> str:
    m = manifest.get("metrics", {}).get("heads", {})
    lines = [
        f"# 模型卡 Model card — {manifest['version']}",
        "",
        f"- 后端 backend: `{manifest['backend']}`",
        f"- 生成时间 created: {manifest.get('created_at')}",
        f"- 训练数据 data: {manifest.get('data', {}).get('path', '?')} (sha256 {str(manifest.get('data', {}).get('sha256', '?'))[:16]}…, {manifest.get('data', {}).get('rows', '?')} rows)",
        f"- 模型文件 file: `{manifest['model_file']}` ({manifest.get('model_bytes', 0) / 1e6:.1f} MB)",
        "",
        "## 用途 Intended use",
        "为县级信访局登记人员提供分拣建议：诉访分离（涉法涉诉/普通信访及应引导的法律途径）、责任单位、越级/集体/极端/重复信访风险。"
        "每条建议都附置信度和依据词语，由登记人员确认或更正。",
        "Suggestions for intake clerks of a county Letters and Visits Bureau. A clerk accepts or corrects every suggestion.",
        "",
        "## 不适用范围 Out of scope",
        "- 本模型的输出**不是法律认定**：是否属于涉法涉诉、应走何种法定途径，以依法受理机关的认定为准。",
        "  It is not a legal determination and must not be used to refuse a petition without a clerk's review.",
        "- 不用于评价信访人，不用于对信访人采取任何措施；风险等级只用于安排领导包案和提前化解。",
        "- 训练语料为项目自写的合成信件；用于真实来信前应在本地已复核的数据上评估（见 `triage evaluate`）。",
        "",
        "## 局限 Limits",
        "- 合成语料的表述有限，真实来信的方言、错别字、长篇叙述会降低准确率；低置信度的件会进入待复核。",
        "- 风险线索词表会漏掉隐晦表达，也可能被引用、转述触发；风险原因需人工核实。",
        "- 部门划分依据 data/taxonomy.toml，各县应按本地职责修改后重新训练。",
        "",
        "## 指标 Metrics (held-out)",
        "",
        "| head | macro-F1 | accuracy | n |",
        "|---|---|---|---|",
    ]
    for head, v in m.items():
        lines.append(f"| {head} | {v.get('macro_f1', float('nan')):.3f} | {v.get('accuracy', float('nan')):.3f} | {v.get('n', '')} |")
    lines += ["", "Labels: " + "; ".join(f"{h}: {', '.join(c)}" for h, c in manifest["heads"].items()), ""]
    return "\n".join(lines)
