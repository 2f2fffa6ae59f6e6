"""triage.heap: freed memory is kept for the next chunk during batch work, released after."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from triage import heap

# Allocates and frees 48 MiB of arrays four times, counting the minor page faults of each round,
# in a fresh interpreter: glibc's defaults there, whatever the score tests already set in this one.
_CHURN = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from triage.heap import batch_heap

    def rounds():
        out = []
        for _ in range(4):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            arrays = [np.ones(1 << 20) for _ in range(6)]  # 6 arrays of 8 MiB, written
            del arrays
            out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        return out

    if sys.argv[1] == "batch":
        with batch_heap() as ok:
            print(json.dumps([ok, rounds()]))
    else:
        print(json.dumps([None, rounds()]))
    """
)


def _churn(mode: str) -> tuple[bool | None, list[int]]:
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True).stdout
    ok, rounds = json.loads(out)
    return ok, rounds


@pytest.mark.skipif(not heap.available(), reason="the C library is not glibc")
def test_batch_heap_reuses_freed_arrays_instead_of_faulting_them_in_again():
    _, plain = _churn("plain")
    ok, batch = _churn("batch")
    assert ok is True
    # glibc's defaults hand the arrays back and fault them in again every round ...
    assert min(plain[1:]) > plain[0] / 2, plain
    # ... within batch_heap only the first round pays
    assert max(batch[1:]) < batch[0] / 20, batch


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """The keep/release calls batch_heap makes, recorded instead of made."""
    seen: list[str] = []
    monkeypatch.setattr(heap, "keep_freed_memory", lambda: seen.append("keep") or True)
    monkeypatch.setattr(heap, "release_freed_memory", lambda: seen.append("release") or True)
    return seen


def test_nested_blocks_release_only_at_the_outermost_end(calls):
    with heap.batch_heap():
        with heap.batch_heap():
            assert calls == ["keep"]
        assert calls == ["keep"]
    assert calls == ["keep", "release"]
    assert heap._depth == 0


def test_release_happens_when_the_block_raises(calls):
    with pytest.raises(RuntimeError):
        with heap.batch_heap():
            raise RuntimeError("chunk failed")
    assert calls == ["keep", "release"]
    assert heap._depth == 0


def test_without_glibc_nothing_is_tuned_and_it_says_so(monkeypatch):
    monkeypatch.setattr(heap, "_libc", lambda: None)
    assert heap.available() is False
    assert heap.keep_freed_memory() is False
    assert heap.release_freed_memory() is False
    with heap.batch_heap() as ok:
        assert ok is False
    assert heap._depth == 0


@pytest.mark.skipif(not heap.available(), reason="the C library is not glibc")
def test_glibc_accepts_the_thresholds():
    # mallopt returns 0 for a value it refuses (e.g. an mmap threshold above 32 MiB on 64-bit);
    # checked in a fresh interpreter
    code = "from triage import heap; print(heap.keep_freed_memory(), heap.release_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
