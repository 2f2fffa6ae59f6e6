"""transformer.v1 with a tiny BERT built inside the test (nothing downloaded)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("CI"):  # CI installs the transformers extra: a missing torch is a failure there
    import torch  # noqa: F401
    import transformers  # noqa: F401
else:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

from _corpus import corpus  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.heavy]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-bert")
    texts = corpus(200, 31)["text"].tolist()
    chars = sorted({c for t in texts for c in t if not c.isspace()})
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]), encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=False, tokenize_chinese_chars=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=160)
    BertModel(cfg).save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    return d


def _backend(tiny_encoder):
    from triage.backends import backend_class

    return backend_class("transformer.v1")(encoder_dir=str(tiny_encoder), max_length=128, epochs=1, batch_size=16)


def test_importing_backends_does_not_import_torch():
    code = "import sys, triage.backends, triage.model, triage.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_fit_predict_explain_save_load(tiny_encoder, tmp_path):
    from triage.model import TriageModel
    from triage import registry

    frame = corpus(200, 31)
    model = TriageModel(backend="transformer.v1", backend_params={"encoder_dir": str(tiny_encoder), "max_length": 128, "epochs": 1})
    assert model.fit(frame) is model
    proba = model.predict_proba(frame.head(8))
    for head, p in proba.items():
        assert p.shape == (8, len(model.classes_[head]))
        assert np.allclose(p.sum(axis=1), 1, atol=1e-5)
    out = model.predict(frame.head(4))
    for body, ev in zip(frame["text"].head(4), out["evidence"]):
        for spans in json.loads(ev).values():
            for s, e, term in spans:
                assert body[s:e] == term
    d = registry.save_version(model, root=tmp_path, version="t1")
    loaded, manifest = registry.load_model(d)
    assert manifest["backend"] == "transformer.v1"
    again = loaded.predict_proba(frame.head(8))
    for head in proba:
        np.testing.assert_allclose(proba[head], again[head], atol=1e-5)


def test_missing_encoder_dir_is_clear(tmp_path):
    from triage.backends import backend_class

    b = backend_class("transformer.v1")(encoder_dir=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="本地编码器目录"):
        b.fit(["你好", "再见"], {"x": ["a", "b"]})


def test_tampered_encoder_refused(tiny_encoder, tmp_path):
    b = _backend(tiny_encoder).fit(corpus(60, 3)["text"].tolist(), {"track": corpus(60, 3)["track"].tolist()})
    b.save(tmp_path)
    w = next((tmp_path / "encoder").glob("*.safetensors"))
    raw = bytearray(w.read_bytes())
    raw[-10] ^= 0xFF
    w.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="校验值"):
        type(b).load(tmp_path)


def test_loading_the_classical_model_does_not_import_torch(tmp_path):
    code = (
        "import sys; from triage import registry; m, _ = registry.load_model(); "
        "m.predict(__import__('pandas').DataFrame({'text': ['请处理噪音']})); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_pickled_encoder_weights_are_refused(tiny_encoder, tmp_path):
    """A directory with only pytorch_model.bin (a pickle) must not be loaded."""
    import shutil

    from triage.backends import backend_class

    d = tmp_path / "pickled"
    shutil.copytree(tiny_encoder, d)
    for f in d.glob("*.safetensors"):
        f.unlink()
    (d / "pytorch_model.bin").write_bytes(b"not really a model")
    b = backend_class("transformer.v1")(encoder_dir=str(d), epochs=1)
    with pytest.raises(Exception) as e:
        b.fit(["你好", "再见"], {"x": ["a", "b"]})
    assert "safetensors" in str(e.value).lower() or "model.safetensors" in str(e.value)
