"""Transformers backend ``transformer.v1``: a local pre-trained encoder with one linear head per head.

torch and transformers are imported only here, and only when this backend is used.  The encoder
and tokenizer load from a local directory (``encoder_dir``; nothing is downloaded: the hub is
out of reach).  Files are written with ``save_pretrained`` (safetensors) and the heads with
safetensors too, so no pickle is ever read.  Explanations are gradient × input saliency per
token, mapped to character spans with the fast tokenizer's offsets.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..features import as_docs
from .base import Backend, Evidence

HEADS_FILE = "heads.safetensors"
META_FILE = "heads.json"
ENCODER_DIR = "encoder"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class TransformerBackend(Backend):
    name = "transformer.v1"

    def __init__(
        self,
        encoder_dir=None,
        max_length=256,
        epochs=3,
        batch_size=16,
        learning_rate=5e-5,
        head_learning_rate=1e-3,
        random_state=0,
        device="cpu",
    ):
        self.encoder_dir = encoder_dir
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------------------------
    def _modules(self):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.encoder_dir is None or not Path(self.encoder_dir).is_dir():
            raise FileNotFoundError(f"transformer.v1 需要本地编码器目录 encoder_dir，实际为 {self.encoder_dir!r}（无法从网上下载模型）")
        tok = AutoTokenizer.from_pretrained(self.encoder_dir, local_files_only=True, use_fast=True)
        # safetensors only: a pytorch_model.bin in a foreign directory would be unpickled by torch
        enc = AutoModel.from_pretrained(self.encoder_dir, local_files_only=True, use_safetensors=True, trust_remote_code=False)
        return torch, tok, enc

    def _encode(self, tok, texts):
        return tok(list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt", return_offsets_mapping=True)

    def _pooled(self, enc, batch, inputs_embeds=None):
        kw = {"attention_mask": batch["attention_mask"]}
        if inputs_embeds is not None:
            kw["inputs_embeds"] = inputs_embeds
        else:
            kw["input_ids"] = batch["input_ids"]
        hidden = enc(**kw).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def fit(self, docs, y):
        torch, tok, enc = self._modules()
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        docs = as_docs(docs)
        texts = docs["text"].tolist()
        classes, targets = {}, {}
        for head, labels in y.items():
            labels = [None if (v is None or v != v or str(v) == "") else str(v) for v in labels]
            cl = sorted({v for v in labels if v is not None})
            if len(cl) < 2:
                raise ValueError(f"分类头 “{head}” 只有一个类别（{cl}），无法训练")
            classes[head] = np.array(cl, dtype=object)
            targets[head] = torch.tensor([cl.index(v) if v is not None else -100 for v in labels])
        hidden = enc.config.hidden_size
        heads = torch.nn.ModuleDict({h: torch.nn.Linear(hidden, len(c)) for h, c in classes.items()})
        enc.to(self.device)
        heads.to(self.device)
        opt = torch.optim.AdamW(
            [{"params": enc.parameters(), "lr": self.learning_rate}, {"params": heads.parameters(), "lr": self.head_learning_rate}]
        )
        # class weights against imbalance, like class_weight="balanced"
        weights = {}
        for h, t in targets.items():
            counts = torch.bincount(t[t >= 0], minlength=len(classes[h])).float()
            weights[h] = (counts.sum() / (len(counts) * counts.clamp(min=1))).to(self.device)
        enc.train()
        heads.train()
        n = len(texts)
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._encode(tok, [texts[i] for i in idx]).to(self.device)
                pooled = self._pooled(enc, batch)
                loss = 0.0
                for h, head in heads.items():
                    t = targets[h][idx].to(self.device)
                    if (t >= 0).any():
                        loss = loss + torch.nn.functional.cross_entropy(head(pooled), t, weight=weights[h], ignore_index=-100)
                opt.zero_grad()
                loss.backward()
                opt.step()
        enc.eval()
        heads.eval()
        self.classes_ = classes
        self.tokenizer_, self.encoder_, self.heads_ = tok, enc, heads
        return self

    def predict_proba(self, docs):
        check_is_fitted(self, "heads_")
        import torch

        texts = as_docs(docs)["text"].tolist()
        out = {h: [] for h in self.heads_}
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self._encode(self.tokenizer_, texts[start : start + self.batch_size]).to(self.device)
                pooled = self._pooled(self.encoder_, batch)
                for h, head in self.heads_.items():
                    out[h].append(torch.softmax(head(pooled), dim=-1).cpu().numpy())
        return {h: (np.concatenate(v) if v else np.zeros((0, len(self.classes_[h])))) for h, v in out.items()}

    def explain(self, docs, labels: Mapping[str, list], k: int = 5):
        check_is_fitted(self, "heads_")
        import torch

        texts = as_docs(docs)["text"].tolist()
        result = {h: [] for h in labels}
        emb_layer = self.encoder_.get_input_embeddings()
        for i, text in enumerate(texts):
            batch = self._encode(self.tokenizer_, [text]).to(self.device)
            offsets = batch.pop("offset_mapping")[0].tolist()
            for h in labels:
                embeds = emb_layer(batch["input_ids"]).detach().requires_grad_(True)
                pooled = self._pooled(self.encoder_, batch, inputs_embeds=embeds)
                logp = torch.log_softmax(self.heads_[h](pooled), dim=-1)
                c = list(self.classes_[h]).index(str(labels[h][i]))
                logp[0, c].backward()
                sal = (embeds.grad * embeds).sum(-1)[0].detach().cpu().numpy()
                cand = [(float(s), a, b) for s, (a, b) in zip(sal, offsets) if b > a and s > 0]
                cand.sort(key=lambda x: -x[0])
                chosen = sorted(cand[:k], key=lambda x: x[1])
                result[h].append([Evidence(a, b, text[a:b], round(s, 4)) for s, a, b in chosen])
        return result

    def save(self, directory):
        check_is_fitted(self, "heads_")
        from safetensors.torch import save_file

        directory = Path(directory)
        enc_dir = directory / ENCODER_DIR
        self.encoder_.save_pretrained(enc_dir, safe_serialization=True)
        self.tokenizer_.save_pretrained(enc_dir)
        path = directory / HEADS_FILE
        save_file({f"{h}.{k}": v.contiguous().cpu() for h, m in self.heads_.items() for k, v in m.state_dict().items()}, str(path))
        weights = sorted(enc_dir.glob("*.safetensors"))
        meta = {
            "params": {k: v for k, v in self.get_params().items() if k != "encoder_dir"},
            "classes": {h: [str(c) for c in v] for h, v in self.classes_.items()},
            "encoder_sha256": {p.name: _sha256(p) for p in weights},
        }
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory):
        import torch
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        enc_dir = directory / ENCODER_DIR
        for name, digest in meta["encoder_sha256"].items():
            if _sha256(enc_dir / name) != digest:
                raise RuntimeError(f"{enc_dir / name} 的校验值不符：编码器文件被修改，拒绝加载")
        obj = cls(encoder_dir=str(enc_dir), **meta["params"])
        _, tok, enc = obj._modules()
        state = load_file(str(directory / HEADS_FILE))
        classes = {h: np.array(c, dtype=object) for h, c in meta["classes"].items()}
        heads = torch.nn.ModuleDict({h: torch.nn.Linear(enc.config.hidden_size, len(c)) for h, c in classes.items()})
        heads.load_state_dict({k: v for k, v in state.items()})
        enc.eval()
        heads.eval()
        obj.classes_, obj.tokenizer_, obj.encoder_, obj.heads_ = classes, tok, enc.to(obj.device), heads.to(obj.device)
        return obj
