"""The error-analysis notebook runs end to end on synthetic data (so it never rots)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_error_analysis_notebook_runs(tmp_path, monkeypatch):
    from triage import registry

    try:
        registry.load_model()
    except registry.ModelDirectoryError as exc:
        pytest.fail(f"bundled champion model missing: {exc}")
    nb = nbformat.read(ROOT / "notebooks" / "error_analysis.ipynb", as_version=4)
    monkeypatch.setenv("TRIAGE_NB_ROWS", "400")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "missed 涉法涉诉" in outputs
    assert (tmp_path / "notebook_report" / "metrics.json").is_file()
