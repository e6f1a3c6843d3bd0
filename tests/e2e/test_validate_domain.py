"""`mlmake validate` knows the domain: -P names, xgboost params, metrics and gates against the
task, and data contracts that contradict themselves; each error located, exit 1."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import VALID

MakeProject = Callable[[dict[str, str | bytes]], Path]
RunCli = Callable[..., Result]
F = "mlproject.yaml"
OK = "mlproject.yaml is valid: 4 nodes (1 datasets, 1 features, 1 models, 1 steps)\n"


def refused(run_cli: RunCli, root: Path, *args: str) -> str:
    result = run_cli(root, "validate", *args)
    assert (result.exit_code, result.stdout) == (1, ""), result.output
    return result.stderr


def test_an_unknown_param_on_the_command_line(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID})
    assert refused(run_cli, root, "-P", "sed=7") == (
        "-P sed=7: params.sed: unknown param 'sed'\n  hint: did you mean 'seed'?\n1 error found\n")
    assert refused(run_cli, root, "-P", "rowz=5000") == (
        "-P rowz=5000: params.rowz: unknown param 'rowz'\n  hint: known params: seed, test_size\n1 error found\n")
    ok = run_cli(root, "validate", "-P", "seed=7", "-P", "models.churn.params.max_depth=8")
    assert (ok.exit_code, ok.stdout, ok.stderr) == (0, OK, "")


def test_an_override_of_a_model_param_is_typed_too(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID})
    assert refused(run_cli, root, "-P", "models.churn.params.max_dept=8") == textwrap.dedent("""\
        -P models.churn.params.max_dept=8: models.churn.params.max_dept: unknown xgboost parameter 'max_dept'
          hint: did you mean 'max_depth'?
        1 error found
        """)


@pytest.mark.parametrize(("params", "message"), [
    ("{max_dept: 3}", "mlproject.yaml:20:14: models.churn.params.max_dept: unknown xgboost parameter 'max_dept'\n"
                      "      params: {max_dept: 3}\n"
                      "               ^\n"
                      "  hint: did you mean 'max_depth'?\n"),
    ("{num_boost_round: many}", "mlproject.yaml:20:31: models.churn.params.num_boost_round: expected an integer, "
                                "got 'many'\n"
                                "      params: {num_boost_round: many}\n"
                                "                                ^\n"),
    ("{eta: 2}", "mlproject.yaml:20:19: models.churn.params.eta: must be <= 1, got 2\n"
                 "      params: {eta: 2}\n"
                 "                    ^\n"),
    ("{subsample: 0}", "mlproject.yaml:20:25: models.churn.params.subsample: must be > 0, got 0\n"
                       "      params: {subsample: 0}\n"
                       "                          ^\n"),
    ("{tree_method: gpu}", "mlproject.yaml:20:27: models.churn.params.tree_method: expected one of 'auto', "
                           "'exact', 'approx', 'hist'; got 'gpu'\n"
                           "      params: {tree_method: gpu}\n"
                           "                            ^\n"),
    ("{grow: lossguide}", "mlproject.yaml:20:14: models.churn.params.grow: unknown xgboost parameter 'grow'\n"
                          "      params: {grow: lossguide}\n"
                          "               ^\n"
                          "  hint: another xgboost parameter goes under params.extra, as written\n"),
    ("{nthread: true}", "mlproject.yaml:20:23: models.churn.params.nthread: expected an integer, got true\n"
                        "      params: {nthread: true}\n"
                        "                        ^\n"),
], ids=["misspelt", "not a number", "eta above 1", "subsample 0", "enum", "unknown", "boolean"])
def test_xgboost_params_are_typed(make_project: MakeProject, run_cli: RunCli, params: str, message: str) -> None:
    root = make_project({F: VALID.replace("params: {max_depth: 6}", f"params: {params}")})
    assert refused(run_cli, root) == message + "1 error found\n"


def test_params_extra_passes_any_other_xgboost_parameter(make_project: MakeProject, run_cli: RunCli) -> None:
    text = VALID.replace("params: {max_depth: 6}", "params: {max_depth: 6, extra: {max_cat_threshold: 8, "
                                                   "monotone_constraints: '(1,0)'}}")
    result = run_cli(make_project({F: text}), "validate")
    assert (result.exit_code, result.stdout, result.stderr) == (0, OK, "")


def test_params_extra_may_not_hide_a_typed_parameter(make_project: MakeProject, run_cli: RunCli) -> None:
    text = VALID.replace("params: {max_depth: 6}", "params: {extra: {max_depth: many}}")
    assert refused(run_cli, make_project({F: text})) == textwrap.dedent("""\
        mlproject.yaml:20:22: models.churn.params.extra.max_depth: 'max_depth' has its own key, checked by mlmake
              params: {extra: {max_depth: many}}
                               ^
          hint: write it as params.max_depth
        1 error found
        """)


def test_an_impossible_split_seed(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID})
    # the error is where the param is used
    assert refused(run_cli, root, "-P", "seed=-1") == textwrap.dedent("""\
        mlproject.yaml:19:53: models.churn.split.seed: must be >= 0, got -1
              split: {test_size: "${params.test_size}", seed: "${params.seed}"}
                                                              ^
        1 error found
        """)


def with_model_keys(text: str, keys: str) -> str:
    """The project with `keys` (YAML lines) added to models.churn, as its line 21 on."""
    return text.replace("    params: {max_depth: 6}\n", "    params: {max_depth: 6}\n" + keys)


REGRESSION = VALID.replace("task: binary", "task: regression")


@pytest.mark.parametrize(("text", "message"), [
    (with_model_keys(REGRESSION, "    metrics: [auc, rmse]\n"),
     "mlproject.yaml:21:15: models.churn.metrics[0]: 'auc' is not a metric of a regression model\n"
     "      metrics: [auc, rmse]\n"
     "                ^\n"
     "  hint: a regression model computes rmse, mae, r2\n"),
    (with_model_keys(REGRESSION, "    gates: {auc: '>= 0.8'}\n"),
     "mlproject.yaml:21:13: models.churn.gates.auc: a gate on 'auc', which a regression model does not compute\n"
     "      gates: {auc: '>= 0.8'}\n"
     "              ^\n"
     "  hint: gate one of rmse, mae, r2\n"),
    (with_model_keys(VALID, "    metrics: [auc]\n    gates: {accuracy: '>= 0.8'}\n"),
     "mlproject.yaml:22:13: models.churn.gates.accuracy: a gate on 'accuracy', which this model does not compute "
     "(metrics: auc)\n"
     "      gates: {accuracy: '>= 0.8'}\n"
     "              ^\n"
     "  hint: add 'accuracy' to metrics\n"),
    (with_model_keys(VALID, "    gates: {acuracy: '>= 0.8'}\n"),
     "mlproject.yaml:21:13: models.churn.gates.acuracy: a gate on 'acuracy', which a binary model does not compute\n"
     "      gates: {acuracy: '>= 0.8'}\n"
     "              ^\n"
     "  hint: did you mean 'accuracy'?\n"),
], ids=["auc on regression", "gate on auc on regression", "gate not computed", "gate misspelt"])
def test_metrics_and_gates_fit_the_task(make_project: MakeProject, run_cli: RunCli, text: str, message: str) -> None:
    assert refused(run_cli, make_project({F: text})) == message + "1 error found\n"


def test_a_gate_when_no_metric_named_fits_the_task_names_those_that_do(make_project: MakeProject,
                                                                       run_cli: RunCli) -> None:
    text = with_model_keys(REGRESSION, "    metrics: [auc]\n    gates: {auc: '>= 0.8'}\n")
    assert refused(run_cli, make_project({F: text})).splitlines()[-3:] == [
        "              ^",
        "  hint: a regression model computes rmse, mae, r2",
        "2 errors found",
    ]


def located(line: int, source: str, token: str, key: str, message: str, hint: str) -> str:
    """The rendered error at the first `token` of the source line."""
    col = source.index(token) + 1
    return f"mlproject.yaml:{line}:{col}: {key}: {message}\n  {source}\n  {' ' * (col - 1)}^\n  hint: {hint}\n"


@pytest.mark.parametrize(("column", "token", "key", "message", "hint"), [
    ("{type: int64, min: 3000, max: 2600}", "2600", "max", "max 2600 is below min 3000: no value can hold both",
     "swap them, or fix one"),
    ("{type: bool, allowed: [basic]}", "basic", "allowed[0]",
     "the string 'basic' is not true or false, so the bool column can never hold it", "list true and false only"),
    ("{type: int64, allowed: [1, 2.5]}", "2.5", "allowed[1]",
     "2.5 is not an integer, so the int64 column can never hold it", "list integers only"),
    ("{type: str, allowed: [true]}", "true", "allowed[0]",
     "the boolean true is not a string, so the str column can never hold it", "list strings only"),
    ("{type: str, max: 3}", "3", "max", "a max needs a numeric column, not str",
     "remove it, or give the column a number type"),
], ids=["min above max", "bool allowed strings", "int allowed float", "str allowed bool", "max on str"])
def test_contradictory_contracts(make_project: MakeProject, run_cli: RunCli, column: str, token: str, key: str,
                                 message: str, hint: str) -> None:
    path = "    path: data/customers.csv\n"
    text = VALID.replace(path, f"{path}    schema:\n      c: {column}\n")
    source = f"      c: {column}"
    expected = located(10, source, token, f"datasets.customers.schema.c.{key}", message, hint)
    assert refused(run_cli, make_project({F: text})) == expected + "1 error found\n"


@pytest.mark.parametrize(("text", "message"), [
    (with_model_keys(VALID, "    gates: {auc.min_slice: '>= 0.7'}\n"),
     "mlproject.yaml:21:13: models.churn.gates.auc.min_slice: a gate over slices ('auc.min_slice') on a model "
     "without slices\n"
     "      gates: {auc.min_slice: '>= 0.7'}\n"
     "              ^\n"
     "  hint: name the columns to slice by: slices: [COLUMN]\n"),
    (with_model_keys(VALID, "    metrics: [auc]\n    slices: [plan]\n    gates: {f1.slice_gap: '<= 0.05'}\n"),
     "mlproject.yaml:23:13: models.churn.gates.f1.slice_gap: a gate on 'f1', which this model does not compute "
     "(metrics: auc)\n"
     "      gates: {f1.slice_gap: '<= 0.05'}\n"
     "              ^\n"
     "  hint: add 'f1' to metrics\n"),
], ids=["no slices", "metric not computed"])
def test_a_fairness_gate_needs_slices_and_a_computed_metric(make_project: MakeProject, run_cli: RunCli, text: str,
                                                            message: str) -> None:
    assert refused(run_cli, make_project({F: text})) == message + "1 error found\n"


def test_fairness_gates_on_a_sliced_model_are_valid(make_project: MakeProject, run_cli: RunCli) -> None:
    text = with_model_keys(VALID, "    slices: [plan]\n    gates: {auc.min_slice: '>= 0.7', auc.slice_gap: '<= 0.05',"
                                  " logloss.max_slice: '<= 0.6'}\n")
    result = run_cli(make_project({F: text}), "validate")
    assert (result.exit_code, result.stdout, result.stderr) == (0, OK, "")
