"""The reference plugin's JSON model files (examples/plugins/mlmake-sklearn): a fitted
pipeline saved as JSON and rebuilt by setting its fitted attributes predicts exactly what
the fitted one does; a file naming anything outside the supported set is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlmake.core.errors import NodeError
from mlmake.core.kind import ItemCheck
from mlmake.core.source import load_text
from mlmake.ml.design import Input, Target
from mlmake.ml.supervised import Data

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "mlmake-sklearn"
sys.path.insert(0, str(PLUGIN))

from mlmake_sklearn import KIND  # noqa: E402
from mlmake_sklearn.predictor import ESTIMATOR_FILE, load, save  # noqa: E402
from mlmake_sklearn.recipe import fit  # noqa: E402
from mlmake_sklearn.state import dump_estimator, load_estimator  # noqa: E402

INPUTS = [Input("size", "float64"), Input("colour", "str", ("blue", "green", "red")), Input("n", "int64")]


def data(task: str, n: int = 120, seed: int = 3) -> Data:
    """A design matrix with missing values and category codes, and a target for `task`."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 3, n), rng.integers(0, 9, n)]).astype(np.float32)
    x[::7, 0] = np.nan
    x[::11, 1] = np.nan
    score = np.nan_to_num(x[:, 0]) + x[:, 2] / 4 - (x[:, 1] == 2)
    classes: tuple[Any, ...] = ()
    if task == "regression":
        y = score.astype(np.float64)
    elif task == "binary":
        y, classes = (score > np.median(score)).astype(np.int64), ("no", "yes")
    else:
        y, classes = np.digitize(score, np.quantile(score, [0.33, 0.66])).astype(np.int64), ("a", "b", "c")
    rows = np.arange(n)
    return Data(None, [], Target("y", "str", classes), INPUTS, x, y, rows[rows % 4 != 0], rows[rows % 4 == 0])


def signature(task: str, d: Data) -> dict[str, Any]:
    out: dict[str, Any] = {"task": task, "inputs": [i.as_json() for i in INPUTS], "format": "sklearn",
                           "files": [ESTIMATOR_FILE]}
    if d.target.classes:
        out["classes"] = list(d.target.classes)
    return out


@pytest.mark.parametrize(("estimator", "task", "params"), [
    ("LogisticRegression", "binary", {"C": 0.5, "max_iter": 200}),
    ("LogisticRegression", "multiclass", {}),
    ("LinearRegression", "regression", {}),
    ("Ridge", "regression", {"alpha": 2.0}),
])
def test_a_saved_pipeline_predicts_what_the_fitted_one_does(tmp_path: Path, estimator: str, task: str,
                                                            params: dict[str, Any]) -> None:
    d = data(task)
    fitted = fit({"estimator": estimator, "task": task, "params": params, "split": {"seed": 5}}, d, "")
    save(fitted, str(tmp_path), {"scikit-learn": "test"})
    loaded = load(str(tmp_path), signature(task, d))
    x = d.x[d.test]
    expected = fitted.predict(x)
    assert np.array_equal(loaded.predict(x), expected)
    shape = {"binary": (len(x),), "multiclass": (len(x), 3), "regression": (len(x),)}[task]
    assert expected.shape == shape
    assert [type(s).__name__ for s in loaded.steps] == ["SimpleImputer", "StandardScaler", estimator]
    assert (tmp_path / ESTIMATOR_FILE).read_bytes().isascii()


def test_an_unknown_category_and_a_missing_value_score_like_the_fitted_pipeline(tmp_path: Path) -> None:
    d = data("binary")
    fitted = fit({"estimator": "LogisticRegression", "task": "binary", "params": {}}, d, "")
    save(fitted, str(tmp_path), {})
    rows = np.array([[np.nan, np.nan, np.nan], [0.5, 7, 3]], dtype=np.float32)  # code 7: no such category
    assert np.array_equal(load(str(tmp_path), signature("binary", d)).predict(rows), fitted.predict(rows))


def test_a_class_outside_the_supported_set_is_never_imported() -> None:
    with pytest.raises(NodeError) as caught:
        load_estimator({"class": "Popen", "params": {"args": ["true"]}})
    assert str(caught.value) == ("a saved estimator names class 'Popen', which is not one of LinearRegression, "
                                 "LogisticRegression, Ridge, SimpleImputer, StandardScaler")


def test_only_numeric_arrays_are_read_back() -> None:
    from sklearn.preprocessing import StandardScaler

    saved = dump_estimator(StandardScaler().fit(np.eye(3)))
    saved["fitted"]["mean_"]["dtype"] = "|O"
    with pytest.raises(NodeError) as caught:
        load_estimator(json.loads(json.dumps(saved)))
    assert str(caught.value) == "not a numeric dtype: '|O'"


def checked(model: str) -> list[str]:
    """The rendered problems the kind's check finds in a models item written as `model`."""
    doc = load_text(f"models:\n  base:\n{model}", "mlproject.yaml")
    return [d.render() for d in KIND.check(ItemCheck(doc, "models", "base", doc.data["models"]["base"], Path(".")))]


def test_an_estimator_outside_the_set_is_a_validate_error_with_did_you_mean() -> None:
    assert checked("    task: binary\n    estimator: LogisticRegresion\n") == [
        "mlproject.yaml:4:16: models.base.estimator: 'LogisticRegresion' is not an estimator mlmake-sklearn "
        "saves as JSON; choose from LogisticRegression, LinearRegression, Ridge\n"
        "      estimator: LogisticRegresion\n"
        "                 ^\n"
        "  hint: did you mean 'LogisticRegression'?"]


def test_an_estimator_that_does_not_fit_the_task_or_a_parameter_it_lacks_is_a_validate_error() -> None:
    assert checked("    task: binary\n    estimator: Ridge\n    params: {C: 1, alpa: 1}\n") == [
        "mlproject.yaml:4:16: models.base.estimator: Ridge does not fit a binary model; use LogisticRegression\n"
        "      estimator: Ridge\n"
        "                 ^",
        "mlproject.yaml:5:14: models.base.params.C: Ridge takes no parameter 'C'; it takes alpha, fit_intercept, "
        "max_iter, tol, solver, positive\n"
        "      params: {C: 1, alpa: 1}\n"
        "               ^",
        "mlproject.yaml:5:20: models.base.params.alpa: Ridge takes no parameter 'alpa'; it takes alpha, "
        "fit_intercept, max_iter, tol, solver, positive\n"
        "      params: {C: 1, alpa: 1}\n"
        "                     ^\n"
        "  hint: did you mean 'alpha'?",
    ]


def test_metrics_and_gates_are_checked_as_the_model_kind_checks_them() -> None:
    assert checked("    task: regression\n    estimator: Ridge\n    metrics: [rmse, auc]\n"
                   "    gates: {r2: '>= 0.5'}\n") == [
        "mlproject.yaml:5:21: models.base.metrics[1]: 'auc' is not a metric of a regression model\n"
        "      metrics: [rmse, auc]\n"
        "                      ^\n"
        "  hint: a regression model computes rmse, mae, r2",
        "mlproject.yaml:6:13: models.base.gates.r2: a gate on 'r2', which this model does not compute "
        "(metrics: rmse)\n"
        "      gates: {r2: '>= 0.5'}\n"
        "              ^\n"
        "  hint: add 'r2' to metrics",
    ]


def test_a_saved_file_sets_only_fitted_attributes() -> None:
    from sklearn.preprocessing import StandardScaler

    saved = dump_estimator(StandardScaler().fit(np.eye(3)))
    saved["fitted"]["__class__"] = None
    with pytest.raises(NodeError) as caught:
        load_estimator(saved)
    assert str(caught.value) == "a saved StandardScaler sets '__class__', which is not a fitted attribute"


def test_a_damaged_estimator_file_says_to_rebuild(tmp_path: Path) -> None:
    d = data("regression")
    save(fit({"estimator": "Ridge", "task": "regression", "params": {}}, d, ""), str(tmp_path), {})
    saved = json.loads((tmp_path / ESTIMATOR_FILE).read_text())
    saved["steps"][2]["fitted"]["coef_"]["shape"] = [2, 2]
    (tmp_path / ESTIMATOR_FILE).write_text(json.dumps(saved))
    with pytest.raises(NodeError) as caught:
        load(str(tmp_path), signature("regression", d))
    assert str(caught.value) == (f"{tmp_path / ESTIMATOR_FILE} is damaged (ValueError: cannot reshape array of "
                                 "size 5 into shape (2,2)); rebuild the model")
