"""models.NAME: training on synthetic data, metrics, slices, gates, outputs and determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from mlmake.core.errors import NodeError
from mlmake.core.kind import Result, Task
from mlmake.kinds import model
from mlmake.ml.design import design_matrix, feature_types, inputs_from_signature, split_rows
from mlmake.ml.metrics import compute, slice_metrics

N = 400
TABLE = "build/features/customers"


def synthetic(n: int = N, seed: int = 7) -> pl.DataFrame:
    """Customers whose churn, segment and spend depend on x1, x2 and the plan (a string column)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "pro", "max"], size=n)
    churn_logit = 2.0 * x1 + 2.0 * (plan == "pro") - 1.0
    segment = np.array(["a", "b", "c"])[np.argmax(np.c_[x1, x2, -x1 - x2] + 0.3 * rng.normal(size=(n, 3)), axis=1)]
    return pl.DataFrame({
        "customer_id": rng.permutation(n), "x1": x1, "x2": x2, "plan": plan,
        "churned": rng.random(n) < 1 / (1 + np.exp(-churn_logit)),
        "segment": segment, "spend": 3.0 * x1 + 2.0 * (plan == "pro") + 0.3 * rng.normal(size=n),
    })


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    folder = root / TABLE
    folder.mkdir(parents=True)
    synthetic().write_parquet(folder / "data.parquet")
    (folder / "schema.json").write_text(json.dumps({"key": ["customer_id"]}))
    return root


def config(task: str, target: str, **over: Any) -> dict[str, Any]:
    drop = [c for c in ("churned", "segment", "spend") if c != target]
    base = {"features": "customers", "target": target, "task": task, "drop": drop,
            "split": {"test_size": 0.2, "seed": 0, "stratify": False},
            "params": {"max_depth": 3, "eta": 0.3, "num_boost_round": 20}, "metrics": [], "gates": {}, "slices": []}
    return base | over


def train(root: Path, cfg: dict[str, Any], out: Path, threads: int = 1, log: str = "",
          baseline: dict[str, float] | None = None) -> Result:
    out.mkdir(parents=True)
    task = Task("models.churn", "model", str(root), cfg, {"build/models/churn": str(out)},
                {"features.customers": [TABLE]}, {"features.customers": "features"}, threads, log, baseline or {})
    return model.KIND.run(task)


def read(out: Path, name: str) -> Any:
    return json.loads((out / name).read_text())


def test_binary_model_writes_every_output(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = train(project, config("binary", "churned"), out)
    assert sorted(result.metrics) == ["accuracy", "auc", "f1", "logloss", "precision", "recall"]
    assert 0.8 < result.metrics["auc"] <= 1.0
    assert 0.0 < result.metrics["logloss"] < 0.6
    summary = read(out, "metrics.json")
    assert (summary["n_train"], summary["n_test"], summary["best_iteration"]) == (320, 80, 19)
    assert summary["metrics"] == result.metrics
    signature = read(out, "signature.json")
    assert signature["inputs"] == [{"name": "x1", "type": "float64"}, {"name": "x2", "type": "float64"},
                                   {"name": "plan", "type": "str", "categories": ["basic", "max", "pro"]}]
    assert (signature["classes"], signature["key"], signature["target"]) == (
        [False, True], ["customer_id"], {"name": "churned", "type": "bool"})
    predictions = pl.read_parquet(out / "predictions.parquet")
    assert predictions.columns == ["customer_id", "churned", "prediction", "probability"]
    assert predictions.height == 80 and predictions["customer_id"].is_sorted()
    assert [r["feature"] for r in read(out, "importance.json")["importance"]][0] == "x1"
    assert signature["positive_class"] is True
    booster = xgb.Booster(model_file=str(out / "model.json"))
    assert booster.feature_types == ["q", "q", "c"]


def test_serving_rebuilds_the_predictions_from_model_json_and_the_signature(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(project, config("binary", "churned"), out)
    inputs = inputs_from_signature(read(out, "signature.json"))
    held = pl.read_parquet(out / "predictions.parquet")
    rows = synthetic().join(held.select("customer_id"), on="customer_id").sort("customer_id")
    rows = rows.with_columns(pl.when(pl.col("plan") == "max").then(pl.lit("gold")).otherwise(pl.col("plan"))
                             .alias("plan"))  # a category never seen in training is treated as missing
    booster = xgb.Booster(model_file=str(out / "model.json"))
    matrix = xgb.DMatrix(design_matrix(rows, inputs), feature_names=[i.name for i in inputs],
                         feature_types=feature_types(inputs), enable_categorical=True)
    served = booster.predict(matrix)
    unseen = (rows["plan"] == "gold").to_numpy()
    assert np.allclose(served[~unseen], held["probability"].to_numpy()[~unseen], atol=1e-6)


def test_the_string_column_is_used_natively_as_a_category(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(project, config("binary", "churned", drop=["segment", "spend", "x1", "x2"]), out)
    tree = json.loads((out / "model.json").read_text())["learner"]["gradient_booster"]["model"]["trees"][0]
    assert tree["categories_nodes"], "the first tree splits on the plan category"
    assert read(out, "importance.json")["importance"][0]["feature"] == "plan"


def test_multiclass_model(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    metrics = ["mlogloss", "accuracy", "f1", "precision", "recall", "auc"]
    result = train(project, config("multiclass", "segment", metrics=metrics), out)
    assert sorted(result.metrics) == sorted(metrics)
    assert result.metrics["accuracy"] > 0.7 and result.metrics["auc"] > 0.85
    assert result.metrics["mlogloss"] < 0.8
    assert read(out, "signature.json")["classes"] == ["a", "b", "c"]
    predictions = pl.read_parquet(out / "predictions.parquet")
    assert predictions.columns == ["customer_id", "segment", "prediction", "probability_a", "probability_b",
                                   "probability_c"]
    sums = predictions.select(pl.sum_horizontal("probability_a", "probability_b", "probability_c")).to_series()
    assert np.allclose(sums.to_numpy(), 1.0, atol=1e-5)


def test_regression_model(project: Path, tmp_path: Path) -> None:
    result = train(project, config("regression", "spend"), tmp_path / "m")
    assert sorted(result.metrics) == ["mae", "r2", "rmse"]
    assert result.metrics["r2"] > 0.85 and result.metrics["rmse"] < 1.2 and result.metrics["mae"] < 1.0


def test_two_trainings_give_byte_identical_models(project: Path, tmp_path: Path) -> None:
    cfg = config("binary", "churned", params={"max_depth": 3, "eta": 0.3, "num_boost_round": 10, "subsample": 0.8,
                                              "colsample_bytree": 0.8})
    train(project, cfg, tmp_path / "a", threads=1)
    train(project, cfg, tmp_path / "b", threads=2)
    for name in ("model.json", "metrics.json", "signature.json", "importance.json", "predictions.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_slices_report_metrics_per_value(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(project, config("binary", "churned", slices=["plan"], metrics=["auc", "accuracy"]), out)
    slices = read(out, "metrics.json")["slices"]["plan"]
    assert sorted(slices) == ["basic", "max", "pro"]
    assert sum(s["rows"] for s in slices.values()) == 80
    assert all(set(s) == {"rows", "auc", "accuracy"} for s in slices.values())


def test_a_slice_skips_a_metric_it_cannot_define() -> None:
    y = np.array([1, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.4])
    out = slice_metrics("binary", ["auc", "accuracy"], y, p, ["x", "x", "y", "y"])
    assert out == {"x": {"rows": 2, "accuracy": 1.0}, "y": {"rows": 2, "auc": 1.0, "accuracy": 0.5}}


def test_the_recipe_does_not_judge_its_gates(project: Path, tmp_path: Path) -> None:
    # gates judge metrics; they are not a training input: the build judges them on the metrics
    # returned, and no verdict enters the outputs (a gate edit must not change a byte)
    out = tmp_path / "m"
    result = train(project, config("binary", "churned", gates={"auc": ">= 0.9999", "logloss": "<0.01"}), out)
    assert "gates" not in read(out, "metrics.json")
    assert set(result.metrics) >= {"auc", "logloss"}
    train(project, config("binary", "churned"), tmp_path / "n")
    assert tree_bytes(out) == tree_bytes(tmp_path / "n")


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_gate_on_a_metric_not_computed_is_refused_before_training(project: Path, tmp_path: Path) -> None:
    with pytest.raises(NodeError) as info:
        train(project, config("binary", "churned", metrics=["logloss"], gates={"auc": ">= 0.8"}), tmp_path / "m")
    assert str(info.value) == "gate on 'auc': the metric is not computed (metrics: logloss); add it to metrics"
    assert not (tmp_path / "m/model.json").exists()


def test_early_stopping_and_the_training_log(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    params = {"max_depth": 6, "eta": 0.5, "num_boost_round": 200, "early_stopping_rounds": 3}
    train(project, config("regression", "spend", params=params), tmp_path / "m", log=str(log))
    best = read(tmp_path / "m", "metrics.json")["best_iteration"]
    assert best < 100
    assert xgb.Booster(model_file=str(tmp_path / "m/model.json")).num_boosted_rounds() == best + 1
    lines = log.read_text().splitlines()
    assert lines[0] == f"training 200 rounds with nthread 1 on {N - N // 5} rows"
    assert lines[1].startswith("[0] train-rmse: ") and "test-rmse: " in lines[1]
    assert f"early stopping: best round {best}" in lines


def test_a_declared_nthread_is_kept_and_the_default_is_the_builders_share(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    train(project, config("binary", "churned", params={"num_boost_round": 20, "nthread": 1}), tmp_path / "a",
          threads=2, log=str(log))
    assert log.read_text().splitlines()[0].endswith("with nthread 1 on 320 rows")
    log.unlink()
    train(project, config("binary", "churned"), tmp_path / "b", threads=2, log=str(log))
    lines = log.read_text().splitlines()
    assert lines[0].endswith("with nthread 2 on 320 rows")
    assert [line.split()[0] for line in lines[1:4]] == ["[0]", "[10]", "[19]"]
    assert "train-logloss" in lines[1] and "train-logloss" not in lines[2] and "train-logloss" in lines[3]


def test_stratified_split_keeps_the_class_proportions() -> None:
    strata = np.r_[np.ones(50, dtype=int), np.zeros(450, dtype=int)]
    train_rows, test_rows = split_rows(500, 0.2, 3, strata)
    assert strata[test_rows].sum() == 10 and len(test_rows) == 100
    assert len(np.intersect1d(train_rows, test_rows)) == 0 and len(train_rows) + len(test_rows) == 500
    again = split_rows(500, 0.2, 3, strata)
    assert np.array_equal(again[1], test_rows) and not np.array_equal(split_rows(500, 0.2, 4, strata)[1], test_rows)


def test_stratify_through_the_model(project: Path, tmp_path: Path) -> None:
    cfg = config("binary", "churned", split={"test_size": 0.25, "seed": 1, "stratify": True})
    train(project, cfg, tmp_path / "m")
    share = synthetic()["churned"].mean()
    held = pl.read_parquet(tmp_path / "m/predictions.parquet")["churned"].mean()
    assert isinstance(share, float) and isinstance(held, float)
    assert abs(held - share) <= 1 / 100


@pytest.mark.parametrize(("over", "message"), [
    ({"target": "churn"}, "target 'churn' is not a column of customers; its columns are ['customer_id', 'x1', 'x2', "
                          "'plan', 'churned', 'segment', 'spend'] (did you mean 'churned'?)"),
    ({"target": "segment", "drop": ["churned", "spend"]},
     "a binary target needs exactly 2 values; 'segment' has 3: ['a', 'b', 'c']; use task: multiclass"),
    ({"metrics": ["auc", "rmse"]}, "metric rmse does not apply to a binary model; choose from auc, logloss, mlogloss, "
                                   "accuracy, f1, precision, recall"),
    ({"drop": ["segment", "spend", "age"], "slices": ["region"]},
     "drop: 'age' is not a column of customers; slices: 'region' is not a column of customers"),
    ({"params": {"objective": "reg:squarederror"}},
     "params.objective 'reg:squarederror' does not fit a binary model; use binary:logistic (or leave it out)"),
    ({"params": {"num_boost_round": "many"}}, "params.num_boost_round must be a positive integer, got 'many'"),
    ({"params": {"max_depth": -2, "num_boost_round": 2}}, "xgboost rejected the training: "),
    ({"params": {"nthread": 0}}, "params.nthread must be a positive integer, got 0"),
])
def test_configuration_mistakes_are_node_errors(project: Path, tmp_path: Path, over: dict[str, Any],
                                                message: str) -> None:
    with pytest.raises(NodeError) as info:
        train(project, config("binary", "churned") | over, tmp_path / "m")
    assert str(info.value).startswith(message) if message.endswith(": ") else str(info.value) == message


def test_binary_metrics_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.6, 0.8, 0.3, 0.2])
    got = compute("binary", ["auc", "accuracy", "precision", "recall", "f1", "logloss"], y, p)
    # 9 positive/negative pairs: 7 ranked right, one tie (0.6, 0.6) counted half
    assert got["auc"] == pytest.approx(7.5 / 9)
    assert (got["accuracy"], got["precision"], got["recall"]) == (pytest.approx(4 / 6), 2 / 3, 2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    expected = -np.mean(np.log([0.9, 0.4, 0.6, 0.8, 0.3, 0.8]))
    assert got["logloss"] == pytest.approx(expected)


def test_multiclass_and_regression_metrics_by_hand() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    got = compute("multiclass", ["accuracy", "precision", "recall", "f1", "mlogloss"], y, proba)
    assert got["accuracy"] == 0.75
    assert got["precision"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert got["recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert got["mlogloss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.3, 0.8])))
    reg = compute("regression", ["rmse", "mae", "r2"], np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert reg == pytest.approx({"rmse": np.sqrt(4 / 3), "mae": 2 / 3, "r2": 1 - 4 / 2})
    assert "r2" not in compute("regression", ["r2"], np.array([2.0, 2.0]), np.array([1.0, 3.0]))


@pytest.mark.parametrize(("engine", "split", "config_split"), [
    (None, {}, {"test_size": 0.2, "seed": 0, "stratify": False}),
    ("dask", {}, {"test_size": 0.2, "seed": 0, "stratify": False, "by": "hash"}),
    ("dask", {"stratify": True}, {"test_size": 0.2, "seed": 0, "stratify": True, "by": "random"}),
    ("dask", {"by": "random"}, {"test_size": 0.2, "seed": 0, "stratify": False, "by": "random"}),
])
def test_the_split_engine_dask_uses_is_in_the_fingerprint(engine: str | None, split: dict[str, Any],
                                                         config_split: dict[str, Any]) -> None:
    """engine: dask splits by hash unless told otherwise; the config says so, so a dask model
    trained with another split (before partition-wise training) is stale, never called fresh."""
    from mlmake.core.spec import node_config
    from mlmake.kinds.model.item import parse

    declared: dict[str, Any] = {"features": "customers", "target": "churned", "task": "binary", "split": split}
    if engine:
        declared["engine"] = engine
    assert node_config(parse("m", None, declared))["split"] == config_split
