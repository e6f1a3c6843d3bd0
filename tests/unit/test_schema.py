"""schema.py: JSON Schema errors → located diagnostics that say the fix."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mlmake.core import schema
from mlmake.core.source import load_text
from tests.helpers import VALID, errors_of

MakeProject = Callable[[dict[str, str | bytes]], Path]
F = "mlproject.yaml"
HEAD = "version: 1\nproject: demo\n"


def check(text: str) -> list[str]:
    return [d.render() for d in schema.check(load_text(text, F))]


def one(text: str) -> str:
    [found] = check(text)
    return found


def test_valid_project_has_no_errors() -> None:
    assert check(VALID.replace('"${params.test_size}"', "0.25").replace('"${params.seed}"', "42")) == []


def test_unknown_key_with_did_you_mean(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("    key: customer_id", "    keys: customer_id")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:12:5: features.customer_features.keys: unknown key 'keys'
              keys: customer_id
              ^
          hint: did you mean 'key'?
        1 error found""")


def test_unknown_key_lists_the_allowed_ones() -> None:
    assert one(HEAD + "colour: blue\n") == textwrap.dedent("""\
        mlproject.yaml:3:1: colour: unknown key 'colour'
          colour: blue
          ^
          hint: allowed keys: version, project, description, params, environments, remote, datasets, \
features, models, steps, deploy, cards""")


def test_wrong_type(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace('seed: "${params.seed}"', "seed: six")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:19:53: models.churn.split.seed: expected an integer, got 'six'
              split: {test_size: "${params.test_size}", seed: six}
                                                              ^
        1 error found""")


def test_wrong_type_from_an_interpolated_param(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("seed: 42", "seed: six")})
    assert errors_of(root).splitlines()[0] == (
        "mlproject.yaml:19:53: models.churn.split.seed: expected an integer, got 'six'")


def test_bad_enum_with_did_you_mean(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("task: binary", "task: binry")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:18:11: models.churn.task: expected one of 'binary', 'multiclass', 'regression'; got 'binry'
              task: binry
                    ^
          hint: did you mean 'binary'?
        1 error found""")


def test_bad_enum_without_a_close_value() -> None:
    assert one(HEAD + "datasets:\n  a: {path: x.csv, format: xlsx}\n") == textwrap.dedent("""\
        mlproject.yaml:4:28: datasets.a.format: expected one of 'csv', 'parquet', 'ndjson'; got 'xlsx'
            a: {path: x.csv, format: xlsx}
                                     ^""")


def test_missing_required_key(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("    target: churned\n", "")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:15:3: models.churn: missing required key 'target'
            churn:
            ^
        1 error found""")


def test_missing_top_level_key() -> None:
    assert one("version: 1\n") == textwrap.dedent("""\
        mlproject.yaml:1:1: missing required key 'project'
          version: 1
          ^""")


def test_version_const_when_checked_by_the_schema() -> None:
    # load_project refuses other versions before the schema runs; editors see this one
    assert one("version: 2\nproject: demo\n") == textwrap.dedent("""\
        mlproject.yaml:1:10: version: this mlmake reads version 1 of the file, got 2
          version: 2
                   ^
          hint: upgrade mlmake, or write version: 1""")


def test_name_that_is_not_a_valid_name() -> None:
    assert one(HEAD + "datasets:\n  1bad: {path: x.csv}\n") == textwrap.dedent("""\
        mlproject.yaml:4:3: datasets: expected a name of letters, digits, '_' and '-' that does not start \
with a digit, got '1bad'
            1bad: {path: x.csv}
            ^""")


def test_project_name_pattern() -> None:
    assert one("version: 1\nproject: my project\n") == textwrap.dedent("""\
        mlproject.yaml:2:10: project: expected a name of letters, digits, '_' and '-' that does not start \
with a digit, got 'my project'
          project: my project
                   ^""")


def test_reference_name_pattern_in_a_list() -> None:
    assert one(HEAD + "features:\n  f: {from: [a, 9x], sql: x}\n") == textwrap.dedent("""\
        mlproject.yaml:4:17: features.f.from[1]: expected a name of letters, digits, '_' and '-' that does not \
start with a digit, got '9x'
            f: {from: [a, 9x], sql: x}
                          ^""")


def test_sql_and_python_together() -> None:
    assert one(HEAD + "features:\n  f: {from: a, sql: x, python: f.py:g}\n") == textwrap.dedent("""\
        mlproject.yaml:4:3: features.f: give only one of 'sql' or 'python'
            f: {from: a, sql: x, python: f.py:g}
            ^""")


def test_neither_sql_nor_python() -> None:
    assert one(HEAD + "features:\n  f: {from: a}\n") == textwrap.dedent("""\
        mlproject.yaml:4:3: features.f: missing one of 'sql' or 'python'
            f: {from: a}
            ^""")


def test_string_or_list_of_the_wrong_type() -> None:
    assert one(HEAD + "features:\n  f: {from: a, key: 3, sql: x}\n") == textwrap.dedent("""\
        mlproject.yaml:4:21: features.f.key: expected a string or a list, got 3
            f: {from: a, key: 3, sql: x}
                              ^""")


def test_python_hook_pattern() -> None:
    assert one(HEAD + "features:\n  f: {from: a, python: nope}\n") == textwrap.dedent("""\
        mlproject.yaml:4:24: features.f.python: expected FILE.py:FUNCTION, got 'nope'
            f: {from: a, python: nope}
                                 ^""")


def test_bounds() -> None:
    text = HEAD + "models:\n  m: {features: a, target: y, task: binary, split: {test_size: 1.5}}\n"
    assert one(text).splitlines()[0] == "mlproject.yaml:4:64: models.m.split.test_size: must be < 1, got 1.5"
    text = text.replace("1.5", "0")
    assert one(text).splitlines()[0] == "mlproject.yaml:4:64: models.m.split.test_size: must be > 0, got 0"


def test_gate_pattern() -> None:
    text = HEAD + "models:\n  m: {features: a, target: y, task: binary, gates: {auc: high}}\n"
    assert one(text).splitlines()[0] == (
        "mlproject.yaml:4:58: models.m.gates.auc: "
        "expected a comparison such as '>= 0.8' or '>= baseline - 0.01', got 'high'")


def test_empty_check() -> None:
    assert one(HEAD + "datasets:\n  a: {path: x.csv, checks: [{}]}\n").splitlines()[0] == (
        "mlproject.yaml:4:29: datasets.a.checks[0]: must have at least 1 key(s)")


def test_repeated_metric() -> None:
    text = HEAD + "models:\n  m: {features: a, target: y, task: binary, metrics: [auc, auc]}\n"
    assert one(text).splitlines()[0] == "mlproject.yaml:4:54: models.m.metrics: must not repeat an item"


def test_empty_path() -> None:
    assert one(HEAD + "datasets:\n  a: {path: ''}\n").splitlines()[0] == (
        "mlproject.yaml:4:13: datasets.a.path: must have at least 1 character(s)")


def test_section_of_the_wrong_type() -> None:
    assert one(HEAD + "models: [a]\n").splitlines()[0] == "mlproject.yaml:3:9: models: expected a mapping, got a list"


def test_bool_is_not_an_integer() -> None:
    text = HEAD + "models:\n  m: {features: a, target: y, task: binary, split: {seed: true}}\n"
    assert one(text).splitlines()[0] == "mlproject.yaml:4:59: models.m.split.seed: expected an integer, got true"


def test_errors_come_in_file_order() -> None:
    text = HEAD + textwrap.dedent("""\
        models:
          m:
            metric: [auc]
            features: a
            target: y
            task: binry
        datasets:
          a: {path: x.csv, format: xlsx}
        colour: blue
        """)
    assert [r.splitlines()[0] for r in check(text)] == [
        "mlproject.yaml:5:5: models.m.metric: unknown key 'metric'",
        "mlproject.yaml:8:11: models.m.task: expected one of 'binary', 'multiclass', 'regression'; got 'binry'",
        "mlproject.yaml:10:28: datasets.a.format: expected one of 'csv', 'parquet', 'ndjson'; got 'xlsx'",
        "mlproject.yaml:11:1: colour: unknown key 'colour'",
    ]


def test_published_schema_allows_interpolation_but_the_checker_does_not() -> None:
    data = {"version": 1, "project": "p", "models": {"m": {"features": "a", "target": "y", "task": "binary",
                                                          "split": {"seed": "${params.seed}"}}}}
    assert Draft202012Validator(schema.published_schema()).is_valid(data)
    assert [d.message for d in schema.check(load_text(repr(data), F))] == [
        "expected an integer, got '${params.seed}'"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("steps:\n  s: {cmd: []}\n", "steps.s.cmd: must have at least 1 item(s)"),
     ("steps:\n  s: {cmd: ''}\n", "steps.s.cmd: must have at least 1 character(s)"),
     ("features:\n  f: {from: 9x, sql: x}\n",
      "features.f.from: expected a name of letters, digits, '_' and '-' that does not start with a digit, got '9x'")],
    ids=["empty cmd list", "empty cmd string", "bad name in from"],
)
def test_choice_of_types_reports_the_inner_problem(text: str, message: str) -> None:
    assert one(HEAD + text).splitlines()[0].split(": ", 1)[1] == message


@pytest.mark.parametrize(("value", "got"), [("", "null"), ("3", "3"), ("abc", "'abc'"), ("[sql]", "a list")])
def test_item_that_is_not_a_mapping(value: str, got: str) -> None:
    found = schema.check(load_text(HEAD + f"features:\n  f: {value}\n", F))
    assert [f"{d.path}: {d.message}" for d in found] == [f"features.f: expected a mapping, got {got}"]


def test_empty_value_is_located_on_its_own_line() -> None:
    text = HEAD + "models:\n  m:\n    features:\n    target: y\n    task: binary\n"
    lines = one(text).splitlines()
    assert lines[0].startswith("mlproject.yaml:5:")
    assert lines[0].endswith(": models.m.features: expected a string, got null")
    assert lines[1] == "      features:"
