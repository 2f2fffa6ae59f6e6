"""Shared bits of the benchmark scripts: locating ../shared/data and saying so when it is absent."""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        print(
            f"找不到基准数据 {path}（{what}）。\n"
            f"Benchmark data not found at {path}. Pass the folder that holds teddy2020/ as the first argument, "
            "e.g. `python bench/transfer.py ../shared/data`.",
            file=sys.stderr,
        )
        sys.exit(2)
    return path
