"""Model backends behind one interface (:class:`triage.backends.base.Backend`).

Backends are looked up by a versioned name (``tfidf-linear.v1``).  The transformers backend is
imported lazily so that torch is only imported when it is asked for.
"""

from __future__ import annotations

from importlib import import_module

from .base import Backend, Evidence

#: backend name -> "module:Class" (imported on demand)
BACKENDS: dict[str, str] = {
    "tfidf-linear.v1": "triage.backends.tfidf_linear:TfidfLinearBackend",
    "transformer.v1": "triage.backends.transformer:TransformerBackend",
}


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"未知的模型后端 “{name}”，可用：{', '.join(BACKENDS)}") from None
    module, cls = target.split(":")
    return getattr(import_module(module), cls)


__all__ = ["BACKENDS", "Backend", "Evidence", "backend_class"]
