"""resolve.py: environment overlays, -P overrides and ${params.x} interpolation."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlmake.core.errors import Span, SpecError
from mlmake.core.resolve import Override, parse_override, resolve
from mlmake.core.source import load_text
from tests.helpers import VALID, errors_of, load

MakeProject = Callable[[dict[str, str | bytes]], Path]
F = "mlproject.yaml"

# params of every type, and a model whose params echo them
TYPED = """\
version: 1
project: demo
params:
  depth: 6
  eta: 0.1
  strat: true
  cols: [a, b]
  nested: {x: 3}
  nothing: null
  name: churn
environments:
  dev: {params: {depth: 3}}
  prod: {remote: {url: s3://bucket/mlmake}}
datasets:
  customers: {path: "data/${params.name}.csv"}
models:
  m:
    features: customers
    target: y
    task: binary
    drop: "${params.cols}"
    split: {seed: "${params.depth}", stratify: "${params.strat}", test_size: "${params.eta}"}
    params:
      max_depth: "${params.depth}"
      eta: "${params.eta}"
      extra:
        nested: "${params.nested.x}"
        spaced: "${ params.depth }"
        none: "${params.nothing}"
        tag: "d${params.depth}-${params.strat}-${params.eta}-${params.nothing}-${params.cols}"
        home: "$${HOME}"
        literal: "$${params.depth}"
        mixed: "${params.depth}/$${x}"
"""


def resolved(text: str, env: str | None = None, overrides: tuple[str, ...] = ()) -> tuple[Any, list[str]]:
    doc, errors = resolve(load_text(text, F), env, tuple(parse_override(o) for o in overrides))
    return doc.data, [d.render() for d in errors]


# --- parse_override --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("seed=7", ("params", "seed"), 7),
        ("eta=0.5", ("params", "eta"), 0.5),
        ("flag=true", ("params", "flag"), True),
        ("cols=[a, b]", ("params", "cols"), ["a", "b"]),
        ("name=churn", ("params", "name"), "churn"),
        ("name=", ("params", "name"), ""),
        ("expr=a=b", ("params", "expr"), "a=b"),
        ("params.seed=7", ("params", "seed"), 7),
        ("models.churn.params.max_depth=8", ("models", "churn", "params", "max_depth"), 8),
        ("remote.url=s3://b/x", ("remote", "url"), "s3://b/x"),
        (" seed =7", ("params", "seed"), 7),
        ("bad=[1", ("params", "bad"), "[1"),  # not YAML: kept as text
        ("x=!!python/object/apply:os.system [echo]", ("params", "x"), "!!python/object/apply:os.system [echo]"),
    ],
)
def test_parse_override(text: str, path: tuple[str, ...], value: Any) -> None:
    assert parse_override(text) == Override(path, value, text)


@pytest.mark.parametrize("text", ["seed", "=7", " =7", ""])
def test_parse_override_needs_key_and_value(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_override(text)
    assert info.value.render() == f"-P {text}: expected KEY=VALUE\n  hint: for example -P seed=7\n1 error found"
    assert info.value.diagnostics[0].span == Span(f"-P {text}", 0, 0)


# --- interpolation ----------------------------------------------------------------


def test_whole_value_reference_keeps_the_type() -> None:
    data, errors = resolved(TYPED)
    assert errors == []
    model = data["models"]["m"]
    assert model["split"] == {"seed": 6, "stratify": True, "test_size": 0.1}
    assert model["drop"] == ["a", "b"]
    params = {**model["params"], **model["params"]["extra"]}
    assert (params["max_depth"], params["eta"], params["nested"], params["spaced"], params["none"]) == (
        6, 0.1, 3, 6, None)
    assert type(params["max_depth"]) is int and type(model["split"]["stratify"]) is bool


def test_embedded_references_become_text() -> None:
    data, _ = resolved(TYPED)
    assert data["datasets"]["customers"]["path"] == "data/churn.csv"
    assert data["models"]["m"]["params"]["extra"]["tag"] == "d6-true-0.1--['a', 'b']"


def test_double_dollar_escapes_a_reference() -> None:
    data, errors = resolved(TYPED)
    params = data["models"]["m"]["params"]["extra"]
    assert (params["home"], params["literal"], params["mixed"]) == ("${HOME}", "${params.depth}", "6/${x}")
    assert errors == []


def test_params_and_environments_are_not_interpolated() -> None:
    data, errors = resolved("params: {a: 1, b: '${params.a}'}\nenvironments: {dev: {params: {c: '${x}'}}}\n")
    assert errors == []
    assert data["params"] == {"a": 1, "b": "${params.a}"}


def test_resolve_leaves_the_source_document_alone() -> None:
    doc = load_text(TYPED, F)
    before = repr(doc.data)
    resolve(doc, "dev", (parse_override("depth=9"),))
    assert repr(doc.data) == before


def test_resolve_of_a_non_mapping_is_a_no_op() -> None:
    doc = load_text("- a\n", F)
    assert resolve(doc, "dev") == (doc, [])


def test_missing_param_with_did_you_mean(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("${params.seed}", "${params.sed}")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:19:53: models.churn.split.seed: '${params.sed}' refers to a missing param 'sed'
              split: {test_size: "${params.test_size}", seed: "${params.sed}"}
                                                              ^
          hint: did you mean 'seed'?
        1 error found""")


def test_missing_param_without_a_close_name(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("data/customers.csv", "data/${params.zzz}.csv")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:8:11: datasets.customers.path: '${params.zzz}' refers to a missing param 'zzz'
              path: data/${params.zzz}.csv
                    ^
          hint: declare it under params:
        1 error found""")


def test_missing_nested_param() -> None:
    _, errors = resolved(TYPED.replace("${params.nested.x}", "${params.nested.y}"))
    assert errors == [textwrap.dedent("""\
        mlproject.yaml:27:17: models.m.params.extra.nested: '${params.nested.y}' refers to a missing param 'nested.y'
                  nested: "${params.nested.y}"
                          ^
          hint: declare it under params:""")]


def test_only_params_references_are_supported() -> None:
    _, errors = resolved(TYPED.replace("${params.eta}\"\n", "${env.HOME}\"\n"))
    assert errors == [textwrap.dedent("""\
        mlproject.yaml:25:12: models.m.params.eta: cannot interpolate '${env.HOME}'
                eta: "${env.HOME}"
                     ^
          hint: only ${params.NAME} references are supported""")]


def test_missing_param_and_its_type_error_are_reported_once(make_project: MakeProject) -> None:
    # the unresolved "${params.sed}" is not also an "expected an integer" error
    root = make_project({"mlproject.yaml": VALID.replace("${params.seed}", "${params.sed}")})
    assert errors_of(root).endswith("\n1 error found")


# --- environments and -P ----------------------------------------------------------


def test_env_overlay_replaces_params() -> None:
    data, errors = resolved(TYPED, "dev")
    assert errors == []
    assert data["params"]["depth"] == 3 and data["params"]["eta"] == 0.1
    assert data["models"]["m"]["params"]["max_depth"] == 3


def test_env_overlay_replaces_the_remote() -> None:
    data, _ = resolved(TYPED, "prod")
    assert data["remote"] == {"url": "s3://bucket/mlmake"}


def test_env_overlay_applies_through_load_project(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": TYPED})
    project, _ = load(root, "prod")
    assert project.remote.url == "s3://bucket/mlmake"
    project, _ = load(root, "dev")
    assert project.section("models")["m"].params["max_depth"] == 3


def test_precedence_p_over_env_over_base() -> None:
    base, _ = resolved(TYPED)
    env, _ = resolved(TYPED, "dev")
    both, _ = resolved(TYPED, "dev", ("depth=9",))
    assert [d["models"]["m"]["params"]["max_depth"] for d in (base, env, both)] == [6, 3, 9]


def test_a_param_override_must_name_a_declared_param() -> None:
    # a misspelt -P would be recorded with the run and change nothing
    _, errors = resolved("params: {rows: 1}\nmodels: {m: {x: '${params.rows}'}}\n", None, ("rowz=5",))
    assert errors == ["-P rowz=5: params.rowz: unknown param 'rowz'\n  hint: did you mean 'rows'?"]
    _, errors = resolved("models: {m: {x: 1}}\n", None, ("new=5",))
    assert errors == ["-P new=5: params.new: unknown param 'new'\n  hint: declare it under params: in the project file"]


def test_full_path_override_wins_over_interpolation() -> None:
    data, errors = resolved(TYPED, "dev", ("models.m.params.max_depth=8", "depth=9"))
    assert errors == []
    assert data["models"]["m"]["params"]["max_depth"] == 8
    assert data["models"]["m"]["split"]["seed"] == 9


def test_full_path_override_through_load_project(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID})
    project, _ = load(root, None, ("models.churn.params.max_depth=8", "seed=7"))
    assert project.section("models")["churn"].params == {"max_depth": 8}
    assert project.section("models")["churn"].split.seed == 7


def test_later_override_wins() -> None:
    data, _ = resolved(TYPED, None, ("depth=1", "depth=2"))
    assert data["params"]["depth"] == 2


def test_override_of_a_missing_key_with_did_you_mean() -> None:
    _, errors = resolved(TYPED, None, ("models.mm.params.x=1",))
    assert errors == ["-P models.mm.params.x=1: models.mm: no such key 'mm' to override\n  hint: did you mean 'm'?"]


def test_override_of_a_missing_key_without_a_close_name() -> None:
    _, errors = resolved(TYPED, None, ("datasets.zzz.path=x.csv",))
    assert errors == ["-P datasets.zzz.path=x.csv: datasets.zzz: no such key 'zzz' to override"]


def test_override_inside_a_scalar() -> None:
    _, errors = resolved(TYPED, None, ("models.m.target.x=1",))
    assert errors == [
        "-P models.m.target.x=1: models.m.target.x: cannot override inside a value that is not a mapping"]


def test_override_of_a_param_inside_a_non_mapping_param() -> None:
    _, errors = resolved(TYPED, None, ("cols.x=1",))
    assert errors == ["-P cols.x=1: params.cols.x: cannot override inside a value that is not a mapping"]


def test_override_with_a_wrong_type_is_located_at_the_override(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID})
    assert errors_of(root, None, ("models.churn.task=binry",)) == textwrap.dedent("""\
        -P models.churn.task=binry: models.churn.task: expected one of 'binary', 'multiclass', 'regression'; got 'binry'
          hint: did you mean 'binary'?
        1 error found""")


def test_unknown_env_with_did_you_mean(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": TYPED})
    assert errors_of(root, "prd") == textwrap.dedent("""\
        --env prd: environments: unknown environment 'prd'
          hint: did you mean 'prod'?
        1 error found""")


def test_unknown_env_lists_the_known_ones(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": TYPED})
    assert errors_of(root, "staging") == textwrap.dedent("""\
        --env staging: environments: unknown environment 'staging'
          hint: known: dev, prod
        1 error found""")


def test_unknown_env_when_there_are_none(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID})
    assert errors_of(root, "dev") == textwrap.dedent("""\
        --env dev: environments: unknown environment 'dev'
          hint: the file declares no environments
        1 error found""")


def test_env_and_override_errors_come_first_then_the_file_in_order(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": VALID.replace("${params.seed}", "${params.sed}")})
    assert errors_of(root, "dev", ("models.chrn.x=1",)) == textwrap.dedent("""\
        --env dev: environments: unknown environment 'dev'
          hint: the file declares no environments
        -P models.chrn.x=1: models.chrn: no such key 'chrn' to override
          hint: did you mean 'churn'?
        mlproject.yaml:19:53: models.churn.split.seed: '${params.sed}' refers to a missing param 'sed'
              split: {test_size: "${params.test_size}", seed: "${params.sed}"}
                                                              ^
          hint: did you mean 'seed'?
        3 errors found""")


def test_env_that_is_not_a_mapping() -> None:
    _, errors = resolved("environments: {dev: 3}\n", "dev")
    assert not any("did you mean 'dev'" in e for e in errors)


def test_overlay_errors_point_at_the_overlay(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": "version: 1\nproject: demo\nremote: {url: x}\n"
                         "environments: {prod: {remote: {url: 3}}}\n"})
    with pytest.raises(SpecError) as info:
        load(root, "prod")
    assert {(d.span.line, d.span.col) for d in info.value.diagnostics if d.span} == {(4, 37)}


def test_a_string_cmd_is_split_before_its_params_are_filled_in() -> None:
    text = ("params: {n: 3, none: null, s: 'a b'}\n"
            "steps: {s: {cmd: 'run ${params.n} ${params.none} \"x ${params.s}\" ${params.s}'}}\n")
    data, errors = resolved(text)
    assert errors == []
    assert data["steps"]["s"]["cmd"] == ["run", "3", "", "x a b", "a b"]
