"""spec.py: load_project end to end, the dataclasses it builds, and path checks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlmake.core.errors import MlmakeError, Span, SpecError
from mlmake.core.spec import Remote, is_address, load_project, node_config, path_problem
from mlmake.kinds.dataset.item import Check, Column
from mlmake.kinds.model.item import Split
from tests.helpers import VALID, errors_of

MakeProject = Callable[[dict[str, str | bytes]], Path]
F = "mlproject.yaml"
HEAD = "version: 1\nproject: demo\n"

FULL = HEAD + textwrap.dedent("""\
    description: everything at once
    remote: {url: s3://bucket/x, options: {region: eu-west-1}}
    environments:
      dev: {params: {seed: 1}, remote: {url: /tmp/remote}}
    params: {seed: 42}
    datasets:
      customers:
        path: data/customers.csv
        description: raw customers
        schema:
          customer_id: {type: int64, unique: true, nullable: false}
          plan: {type: str, allowed: [basic, pro]}
          age: {type: int64, min: 0, max: 120}
        checks:
          - rows: ">= 10"
      events: {path: data/events.jsonl}
      snapshot: {path: data/snap.pq}
      raw: {path: data/raw}
      forced: {path: data/x.txt, format: csv}
    features:
      f:
        from: [customers, events]
        key: [customer_id]
        python: features/build.py:make
    models:
      m:
        features: f
        target: churned
        task: binary
        drop: [age]
        params: {max_depth: 6}
        metrics: [auc]
        gates: {auc: ">= 0.5"}
        slices: [plan]
        description: not fingerprinted
    steps:
      shell: {cmd: "python scripts/r.py --name 'two words' 3", deps: [scripts/r.py], outs: [build/r.txt]}
      listed: {cmd: [python, 3, true, 0.5]}
    deploy:
      api: {model: m, kind: http}
      nightly: {model: m, kind: batch, input: customers, output: build/scores.parquet}
    """)


def test_full_project_loads_into_dataclasses(make_project: MakeProject) -> None:
    root = make_project({F: FULL})
    p = load_project(root)
    assert (p.root, p.file, p.version, p.project, p.description) == (root, F, 1, "demo", "everything at once")
    assert p.params == {"seed": 42}
    assert p.remote == Remote("s3://bucket/x", {"region": "eu-west-1"})
    assert p.environments["dev"].params == {"seed": 1}
    assert p.environments["dev"].remote == Remote("/tmp/remote")
    ds = p.section("datasets")["customers"]
    assert (ds.name, ds.path, ds.format, ds.description) == ("customers", "data/customers.csv", "csv", "raw customers")
    assert ds.schema == {
        "customer_id": Column("int64", nullable=False, unique=True),
        "plan": Column("str", allowed=("basic", "pro")),
        "age": Column("int64", min=0, max=120),
    }
    assert ds.checks == (Check(">= 10"),)
    f = p.section("features")["f"]
    assert (f.inputs, f.key, f.sql, f.python) == (("customers", "events"), ("customer_id",), None,
                                                  "features/build.py:make")
    m = p.section("models")["m"]
    assert (m.features, m.target, m.task, m.drop, m.split) == ("f", "churned", "binary", ("age",), Split())
    assert (m.params, m.metrics, m.gates, m.slices) == ({"max_depth": 6}, ("auc",), {"auc": ">= 0.5"}, ("plan",))
    assert p.section("deploy")["nightly"].input == "customers" and p.kinds["deploy.api"] == "http"


@pytest.mark.parametrize(
    ("name", "fmt"), [("customers", "csv"), ("events", "ndjson"), ("snapshot", "parquet"), ("raw", "csv"),
                      ("forced", "csv")],
)
def test_format_comes_from_the_extension(make_project: MakeProject, name: str, fmt: str) -> None:
    assert load_project(make_project({F: FULL})).section("datasets")[name].format == fmt


def test_cmd_string_is_split_shell_style(make_project: MakeProject) -> None:
    steps = load_project(make_project({F: FULL})).section("steps")
    assert steps["shell"].cmd == ("python", "scripts/r.py", "--name", "two words", "3")
    assert steps["listed"].cmd == ("python", "3", "true", "0.5")


def test_single_names_become_tuples(make_project: MakeProject) -> None:
    f = load_project(make_project({F: VALID})).section("features")["customer_features"]
    assert (f.inputs, f.key) == (("customers",), ("customer_id",))


def test_defaults(make_project: MakeProject) -> None:
    p = load_project(make_project({F: HEAD}))
    assert (p.description, p.params, p.environments, p.remote) == ("", {}, {}, None)  # None: the machine's default
    assert [p.section(s) for s in ("datasets", "features", "models", "steps", "deploy")] == [{}, {}, {}, {}, {}]


def test_items_carry_the_span_of_their_name(make_project: MakeProject) -> None:
    p = load_project(make_project({F: VALID}))
    assert p.section("datasets")["customers"].span == Span(F, 7, 3)
    assert p.section("features")["customer_features"].span == Span(F, 10, 3)
    assert p.section("models")["churn"].span == Span(F, 15, 3)
    assert p.section("steps")["report"].span == Span(F, 22, 3)


def test_interpolated_values_reach_the_dataclasses(make_project: MakeProject) -> None:
    m = load_project(make_project({F: VALID})).section("models")["churn"]
    assert m.split == Split(test_size=0.25, seed=42, stratify=False)


def test_node_config_uses_file_keys_and_skips_descriptions(make_project: MakeProject) -> None:
    p = load_project(make_project({F: FULL}))
    # unset optional keys (sql: None here) stay out
    assert node_config(p.section("features")["f"]) == {
        "from": ["customers", "events"], "key": ["customer_id"], "python": "features/build.py:make"}
    config = node_config(p.section("models")["m"])
    assert "description" not in config and "name" not in config and "span" not in config
    assert config["split"] == {"test_size": 0.2, "seed": 0, "stratify": False}
    assert node_config(p.section("datasets")["customers"])["schema"]["plan"]["allowed"] == ["basic", "pro"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("models.churn", True), ("datasets.x", True), ("deploy.api", True), ("steps.s", True), ("features.f", True),
     ("models", False), ("data/x.csv", False), ("features/build.py", False), ("models.sub/x", False),
     ("params.seed", False), ("scripts.report", False)],
)
def test_is_address(text: str, expected: bool) -> None:
    assert is_address(text) is expected


@pytest.mark.parametrize("text", ["features.py", "models.py", "steps.py"])
def test_python_file_named_like_a_section_is_a_file(text: str) -> None:
    assert is_address(text) is False


@pytest.mark.parametrize(
    ("path", "problem"),
    [("data/x.csv", ""), ("./data/x.csv", ""), ("data/../x.csv", ""), ("..data/x", ""),
     ("../x.csv", "the path '../x.csv' leaves the project"),
     ("data/../../x.csv", "the path 'data/../../x.csv' leaves the project"),
     ("..", "the path '..' leaves the project"),
     ("/etc/passwd", "the path '/etc/passwd' must be relative to the project"),
     ("~/x.csv", "the path '~/x.csv' must be relative to the project"),
     (".git/config", "the path '.git/config' is inside .git/, which mlmake manages"),
     ("./.mlmake/cache", "the path './.mlmake/cache' is inside .mlmake/, which mlmake manages"),
     (".dvc/config", "the path '.dvc/config' is inside .dvc/, which mlmake manages")],
)
def test_path_problem(path: str, problem: str) -> None:
    assert path_problem(path) == problem


# --- errors through load_project --------------------------------------------------


def test_path_that_leaves_the_project(make_project: MakeProject) -> None:
    root = make_project({F: VALID.replace("data/customers.csv", "../x.csv")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:8:11: datasets.customers.path: the path '../x.csv' leaves the project
              path: ../x.csv
                    ^
          hint: paths are relative to the project folder
        1 error found""")


def test_absolute_path(make_project: MakeProject) -> None:
    root = make_project({F: VALID.replace("data/customers.csv", "/etc/passwd")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:8:11: datasets.customers.path: the path '/etc/passwd' must be relative to the project
              path: /etc/passwd
                    ^
          hint: paths are relative to the project folder
        1 error found""")


def test_every_kind_of_path_is_checked_in_one_pass(make_project: MakeProject) -> None:
    text = HEAD + textwrap.dedent("""\
        datasets:
          a: {path: x.csv}
        features:
          f: {from: a, python: ../hooks.py:make}
        models:
          m: {features: f, target: y, task: binary}
        steps:
          s:
            cmd: echo
            deps: [/etc/passwd, models.m, ok.txt]
            outs: [.git/hooks/pre-commit]
        deploy:
          d: {model: m, kind: batch, input: a, output: ../../scores.parquet}
        """)
    assert errors_of(make_project({F: text})) == textwrap.dedent("""\
        mlproject.yaml:6:24: features.f.python: the path '../hooks.py' leaves the project
            f: {from: a, python: ../hooks.py:make}
                                 ^
          hint: paths are relative to the project folder
        mlproject.yaml:12:12: steps.s.deps[0]: the path '/etc/passwd' must be relative to the project
              deps: [/etc/passwd, models.m, ok.txt]
                     ^
          hint: paths are relative to the project folder
        mlproject.yaml:13:12: steps.s.outs[0]: the path '.git/hooks/pre-commit' is inside .git/, which mlmake manages
              outs: [.git/hooks/pre-commit]
                     ^
          hint: paths are relative to the project folder
        mlproject.yaml:15:48: deploy.d.output: the path '../../scores.parquet' leaves the project
            d: {model: m, kind: batch, input: a, output: ../../scores.parquet}
                                                         ^
          hint: paths are relative to the project folder
        4 errors found""")


def test_unknown_version_is_reported_alone(make_project: MakeProject) -> None:
    text = VALID.replace("version: 1", "version: 2").replace("task: binary", "task: binry") + "colour: blue\n"
    assert errors_of(make_project({F: text})) == textwrap.dedent("""\
        mlproject.yaml:1:10: version: this mlmake reads version 1 of the file, got 2
          version: 2
                   ^
          hint: write `version: 1`, or upgrade mlmake
        1 error found""")


def test_version_as_text_is_unknown(make_project: MakeProject) -> None:
    assert errors_of(make_project({F: "version: '1'\nproject: demo\n"})).splitlines()[0] == (
        "mlproject.yaml:1:10: version: this mlmake reads version 1 of the file, got '1'")


def test_missing_version(make_project: MakeProject) -> None:
    assert errors_of(make_project({F: "project: demo\n"})) == textwrap.dedent("""\
        mlproject.yaml:1:1: version: missing required key 'version'
          project: demo
          ^
          hint: write `version: 1`, or upgrade mlmake
        1 error found""")


def test_top_level_must_be_a_mapping(make_project: MakeProject) -> None:
    assert errors_of(make_project({F: "- a\n- b\n"})) == textwrap.dedent("""\
        mlproject.yaml:1:1: expected a mapping at the top of the file
          - a
          ^
          hint: start with `version: 1` and `project: NAME`
        1 error found""")


@pytest.mark.parametrize("text", ["", "# nothing yet\n"])
def test_empty_file_names_the_file(make_project: MakeProject, text: str) -> None:
    assert errors_of(make_project({F: text})).startswith("mlproject.yaml:1:1: expected a mapping at the top")


def test_document_of_only_a_marker_names_the_file(make_project: MakeProject) -> None:
    assert errors_of(make_project({F: "---\n"})).startswith("mlproject.yaml:2:1: expected a mapping at the top")


def test_no_project_file(tmp_path: Path) -> None:
    with pytest.raises(MlmakeError) as info:
        load_project(tmp_path)
    assert info.value.render() == (
        f"error: no mlproject.yaml in {tmp_path} (run `mlmake init` to create one, or pass -C DIR)")


def test_file_that_is_not_utf8(make_project: MakeProject) -> None:
    root = make_project({F: b"version: 1\nproject: \xff\xfe\n"})
    with pytest.raises(SpecError) as info:
        load_project(root)
    # located by line and column, not by byte offset
    assert info.value.render().startswith("mlproject.yaml:2:10: the file is not valid UTF-8 (byte 0xff)\n")


def test_several_errors_in_one_pass_in_file_order(make_project: MakeProject) -> None:
    text = HEAD + textwrap.dedent("""\
        colour: blue
        datasets:
          customers:
            path: data/customers.csv
            format: xlsx
        models:
          m:
            features: customers
            target: y
            task: binary
            split: {seed: six}
            metric: [auc]
        """)
    assert errors_of(make_project({F: text})) == textwrap.dedent("""\
        mlproject.yaml:3:1: colour: unknown key 'colour'
          colour: blue
          ^
          hint: allowed keys: version, project, description, params, environments, remote, datasets, features, \
models, steps, deploy, cards
        mlproject.yaml:7:13: datasets.customers.format: expected one of 'csv', 'parquet', 'ndjson'; got 'xlsx'
              format: xlsx
                      ^
        mlproject.yaml:13:19: models.m.split.seed: expected an integer, got 'six'
              split: {seed: six}
                            ^
        mlproject.yaml:14:5: models.m.metric: unknown key 'metric'
              metric: [auc]
              ^
          hint: did you mean 'metrics'?
        4 errors found""")


def test_cmd_with_an_unclosed_quote(make_project: MakeProject) -> None:
    root = make_project({F: HEAD + "steps:\n  s: {cmd: 'echo \"unclosed'}\n"})
    assert errors_of(root).splitlines()[0].startswith("mlproject.yaml:4:12: steps.s.cmd: ")


@pytest.mark.parametrize("out", [".", "''", "./"])
def test_output_cannot_be_the_whole_project(make_project: MakeProject, out: str) -> None:
    with pytest.raises(SpecError):
        load_project(make_project({F: HEAD + f"steps:\n  s: {{cmd: echo, outs: [{out}]}}\n"}))
