import json

import pytest

from _corpus import SMALL_FEATURES, corpus
from triage import registry
from triage.evaluate import evaluate_file
from triage.schema import SchemaError
from triage.train import parse_label_specs, train_version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "corpus.csv"
    corpus(600, 21).to_csv(p, index=False, encoding="utf-8-sig")
    return p


def test_parse_label_specs():
    assert parse_label_specs(["department=责任单位", "risk"]) == {"department": "责任单位", "risk": "risk"}
    assert set(parse_label_specs(None)) == {"track", "route", "department", "risk"}


def test_train_writes_version_and_reproduces_metrics(corpus_csv, tmp_path):
    params = {"backend_params": SMALL_FEATURES}
    d1, m1 = train_version(corpus_csv, out=tmp_path, version="a", seed=3, model_params=params, log=lambda s: None)
    d2, m2 = train_version(corpus_csv, out=tmp_path, version="b", seed=3, model_params=params, log=lambda s: None)
    assert m1["heads"] == m2["heads"]  # same data, same seed, same metrics
    manifest = json.loads((d1 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["data"]["sha256"] == registry.sha256_file(corpus_csv)
    assert manifest["training"]["seed"] == 3
    for head in ("track", "department", "risk", "route"):
        assert 0 <= manifest["metrics"]["heads"][head]["macro_f1"] <= 1
        assert (d1 / "report" / f"confusion_{head}.png").stat().st_size > 1000
        assert (d1 / "report" / f"reliability_{head}.png").is_file()


def test_custom_head_from_any_column(corpus_csv, tmp_path):
    d, m = train_version(
        corpus_csv, out=tmp_path, version="ch", label_columns={"channel_head": "channel"}, model_params={"backend_params": SMALL_FEATURES}, log=lambda s: None
    )
    model, manifest = registry.load_model(d)
    assert set(model.heads_) == {"channel_head"}
    out = model.predict(corpus(20, 4))
    assert "channel_head" in out.columns


def test_unknown_label_in_training_data_names_row_and_column(tmp_path):
    f = corpus(50, 2).copy()
    f.loc[7, "department"] = "外星事务局"
    p = tmp_path / "bad.csv"
    f.to_csv(p, index=False)
    with pytest.raises(SchemaError) as e:
        train_version(p, out=tmp_path, log=lambda s: None)
    msg = str(e.value)
    assert "第 9 行" in msg and "department" in msg and "外星事务局" in msg


def test_evaluate_reports_unknown_labels_as_skips(corpus_csv, tmp_path):
    d, _ = train_version(corpus_csv, out=tmp_path, version="e", model_params={"backend_params": SMALL_FEATURES}, log=lambda s: None)
    f = corpus(80, 8).drop(columns=["risk"])
    f.loc[3, "department"] = "已撤销的局"
    p = tmp_path / "eval.csv"
    f.to_csv(p, index=False)
    metrics = evaluate_file(d, p, out=tmp_path / "rep", log=lambda s: None)
    assert "risk" not in metrics["heads"]  # no risk column: head left out, not an error
    assert metrics["heads"]["department"]["n"] == 79
    assert metrics["skipped"]["department"] == {"unknown_labels": ["已撤销的局"], "rows": 1}
    assert (tmp_path / "rep" / "metrics.json").is_file()
